"""The text of every small file setup writes: wrappers, config inside the env, the PATH line,
modulefiles. Pure functions of the options, so tests can check them and re-runs compare them."""

from __future__ import annotations

import json
from pathlib import Path

from daskhpc import __version__
from daskhpc.cli import PROGRAM_NAMES

WRAPPED_COMMANDS = ("start", "stop", "status", "doctor")
RC_MARKER = "# daskhpc: wrappers on PATH (remove-dask.sh removes this line)"


def wrapper_names() -> dict[str, str]:
    """command -> program name, e.g. start -> start-dask-cluster."""
    return {command: PROGRAM_NAMES[command] for command in WRAPPED_COMMANDS}


def wrapper_text(template: str, command: str, env_python: Path) -> str:
    if "'" in str(env_python):
        raise ValueError(f"environment path {env_python} contains a single quote")
    return (template.replace("@PROGRAM@", PROGRAM_NAMES[command])
            .replace("@COMMAND@", command)
            .replace("@PYTHON@", str(env_python)))


def rc_line(bin_dir: Path) -> str:
    return f'export PATH="{bin_dir}:$PATH"  {RC_MARKER}'


def dask_config_text() -> str:
    """<env>/etc/dask/daskhpc.yaml: defaults for everyone using this environment. The dashboard
    link for JupyterHub is set at run time by daskhpc.client_config (YAML cannot test whether
    JUPYTERHUB_SERVICE_PREFIX is set)."""
    return """\
# Installed by daskhpc setup-dask.sh inside this environment; removed with it.
labextension:
  # The JupyterLab Dask tab's "New" button: daskhpc.LabCluster, the cluster start-dask-cluster
  # starts (TLS, every node of the job; this machine alone outside a job) with a scheduler file
  # of its own. It lives as long as the Jupyter server or until closed from the tab. kwargs take
  # start-dask-cluster's options.
  factory:
    module: daskhpc
    class: LabCluster
    args: []
    kwargs: {}
  default:
    workers: null
    adapt: null
  initial: []
  browserDashboardCheck: false
"""


CLIENT_HOOK_LINE = "import daskhpc.client_config; daskhpc.client_config.apply()\n"

JUPYTER_SERVER_CONFIG = """\
# Installed by daskhpc setup-dask.sh: jupyter-server-proxy may reach exactly the nodes of the
# user's running Dask clusters (their dashboards), nothing else.
from daskhpc.proxy_allowlist import allowed

c.ServerProxy.host_allowlist = allowed  # noqa: F821 (c is given by Jupyter)
"""


KERNEL_TEMPLATE = ("kernels", "dask")  # in the checkout: kernel.json and the logo


def kernel_json(repo: Path, env_link: Path, display_name: str) -> str:
    """kernels/dask/kernel.json filled in: the env's Python by its stable path (the link, never
    a build) and the env's bin first on PATH (jupyter_client >= 7 expands ${PATH})."""
    template = repo.joinpath(*KERNEL_TEMPLATE, "kernel.json").read_text()
    for placeholder, value in (("@ENV@", str(env_link)), ("@DISPLAY_NAME@", display_name)):
        template = template.replace(placeholder, json.dumps(value)[1:-1])  # JSON-escaped
    return template


def lmod_modulefile(bin_dir: Path, jupyter_data_dir: Path, prefix: Path, version: str) -> str:
    return f"""\
-- daskhpc {version}: written by setup-dask.sh --system; remove-dask.sh removes it.
help([[Dask on the nodes of your allocation (daskhpc {__version__}, installed in {prefix}).
Commands: {', '.join(wrapper_names().values())}.
Jupyter kernel: the one named in {jupyter_data_dir}/kernels.]])
whatis("Name: daskhpc")
whatis("Version: {version}")
whatis("Description: Dask scheduler and workers across allocated nodes, Jupyter kernel")
prepend_path("PATH", "{bin_dir}")
prepend_path("JUPYTER_PATH", "{jupyter_data_dir}")
"""


def tcl_modulefile(bin_dir: Path, jupyter_data_dir: Path, prefix: Path, version: str) -> str:
    return f"""\
#%Module1.0
## daskhpc {version}: written by setup-dask.sh --system; remove-dask.sh removes it.
proc ModulesHelp {{ }} {{
    puts stderr "Dask on the nodes of your allocation (daskhpc {__version__}, in {prefix})."
    puts stderr "Commands: {', '.join(wrapper_names().values())}."
}}
module-whatis "daskhpc {version}: Dask scheduler and workers across allocated nodes"
conflict daskhpc
prepend-path PATH {{{bin_dir}}}
prepend-path JUPYTER_PATH {{{jupyter_data_dir}}}
"""
