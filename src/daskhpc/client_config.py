"""Dask client settings for every interpreter in the environment, so notebooks need no new code.

The environment's .pth file runs `import daskhpc.client_config; daskhpc.client_config.apply()` at
every interpreter start, hence: standard library only, `os` and `sys` only (pathlib alone costs
~10 ms), no file reads beyond one stat (a --system install's kernel may also make one symlink,
once per user), and never an exception.

Settings go into the environment as DASK_* variables, which dask reads when it is imported, and
only where the user set nothing: a user's own choice always wins.
"""

import os
import sys

# Not `typing.TYPE_CHECKING`: importing typing alone costs ~10 ms, at every interpreter start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import MutableMapping

# Layout of a TLS directory (a cluster's, the user's client certificates), written by
# daskhpc.cluster.tls.material (which imports these).
CA_FILE = "ca.pem"
# A --system install's placeholder certificates, inside the environment (sys.prefix).
SHARED_PLACEHOLDER = ("share", "daskhpc", "no-cluster-tls")


def cert_file_names(role: str) -> tuple[str, str]:
    """(certificate, private key) file names of a role: scheduler, worker or client."""
    return f"{role}.pem", f"{role}-key.pem"


DASHBOARD_LINK = "DASK_DISTRIBUTED__DASHBOARD__LINK"
TLS_CA = "DASK_DISTRIBUTED__COMM__TLS__CA_FILE"
TLS_CLIENT_CERT = "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT"
TLS_CLIENT_KEY = "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY"


def jupyterhub_dashboard_link(service_prefix: str) -> str:
    """Dashboard link template through the user's Jupyter server (jupyter-server-proxy).

    `{host}:{port}` rather than just `{port}`: the scheduler may run on another node, or listen
    only on the cluster interface, which `proxy/{port}` (localhost) would not reach. The proxy
    lets through exactly the nodes of the user's clusters (daskhpc.proxy_allowlist).
    """
    return f"{service_prefix.rstrip('/')}/proxy/{{host}}:{{port}}/status"


def current_tls_directory(environ: "MutableMapping[str, str]") -> str:
    """The current-tls link of daskhpc.paths.current_tls_link(), computed without pathlib."""
    state_dir = environ.get("DASKHPC_STATE_DIR")
    if state_dir:
        state_dir = os.path.expanduser(state_dir)
    else:
        xdg_state = environ.get("XDG_STATE_HOME")
        base = os.path.expanduser(xdg_state) if xdg_state else os.path.expanduser("~/.local/state")
        state_dir = os.path.join(base, "daskhpc")
    return os.path.join(state_dir, "current-tls")


def apply(environ: "MutableMapping[str, str]" = os.environ) -> None:
    """Point dask's dashboard link and client TLS at the user's client certificates."""
    try:  # noqa: SIM105 (contextlib.suppress: importing contextlib costs ~2 ms)
        _apply(environ)
    except Exception:
        # A failure here would break every Python start in the environment (pip, jupyter,
        # the workers themselves); a client without these defaults only loses convenience.
        pass


def _apply(environ: "MutableMapping[str, str]") -> None:
    service_prefix = environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if service_prefix and DASHBOARD_LINK not in environ:
        environ[DASHBOARD_LINK] = jupyterhub_dashboard_link(service_prefix)

    if any(name in environ for name in (TLS_CA, TLS_CLIENT_CERT, TLS_CLIENT_KEY)):
        return
    tls_directory = current_tls_directory(environ)
    # exists() follows the link: a link left by a cluster whose files are gone is ignored.
    if not os.path.exists(os.path.join(tls_directory, CA_FILE)) and not (
        _in_a_kernel() and _point_at_shared_placeholder(tls_directory)
    ):
        return
    cert_name, key_name = cert_file_names("client")
    # Only the CA and the client's pair: encryption is not *required*, so a LocalCluster on
    # tcp:// in the same notebook keeps working, while tls:// addresses get mutual TLS.
    environ[TLS_CA] = os.path.join(tls_directory, CA_FILE)
    environ[TLS_CLIENT_CERT] = os.path.join(tls_directory, cert_name)
    environ[TLS_CLIENT_KEY] = os.path.join(tls_directory, key_name)


def _in_a_kernel() -> bool:
    """A Jupyter kernel (`python [options] -m ipykernel_launcher ...`): the long-lived process
    that must follow clusters started after it. Other interpreters (the installer's, the
    admin's) must not write into their user's home."""
    argv = getattr(sys, "orig_argv", [])
    return any(flag == "-m" and module == "ipykernel_launcher"
               for flag, module in zip(argv, argv[1:]))


def _point_at_shared_placeholder(link: str) -> bool:
    """A --system install's kernel before its user's first cluster (the user never ran setup,
    which makes a user install's placeholder): point the user's current-tls link at the
    environment's shared placeholder, so that the settings name the link, which
    start-dask-cluster later points at the user's client certificates."""
    shared = os.path.join(sys.prefix, *SHARED_PLACEHOLDER)
    if not os.path.exists(os.path.join(shared, CA_FILE)):
        return False
    os.makedirs(os.path.dirname(link), mode=0o700, exist_ok=True)
    from daskhpc.files import swap_link

    swap_link(link, shared)
    return True
