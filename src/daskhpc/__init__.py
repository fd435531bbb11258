"""daskhpc: Dask on an HPC allocation in one command."""

__version__ = "0.1.0"
