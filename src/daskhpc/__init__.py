"""daskhpc: Dask on an HPC allocation in one command."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Lazily: `import daskhpc` runs at every interpreter start of the environment (the .pth
    # hook) and in the installer's bootstrap, neither of which may import distributed (nor
    # typing: ~10 ms at every start).
    if name in ("HPCCluster", "LabCluster"):
        from daskhpc.cluster import hpccluster

        return getattr(hpccluster, name)
    raise AttributeError(f"module 'daskhpc' has no attribute {name!r}")
