"""Dashboard (under JupyterHub only): jupyter-server-proxy and our allow-list hook are in the
Jupyter server's environment (not just the kernel's), and no http proxy variable sends the
dashboard's traffic away from the nodes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from typing import Optional

import psutil

from daskhpc.doctor.context import Context
from daskhpc.doctor.findings import Finding, ok, problem, warning

CHECK = "dashboard"
# Run with the server's Python: is the proxy importable, and do its config files set our hook?
_SERVER_QUERY = """
import importlib.util, json, os
from pathlib import Path
try:
    from jupyter_core.paths import jupyter_config_path
    folders = jupyter_config_path()
except ImportError:
    folders = []
hook = any("daskhpc.proxy_allowlist" in p.read_text(errors="replace")
           for f in folders for p in Path(f).glob("jupyter_server_config.*") if p.is_file())
print(json.dumps({"proxy": importlib.util.find_spec("jupyter_server_proxy") is not None,
                  "hook": hook}))
"""


def server_python() -> Optional[str]:
    """The Python of the Jupyter server this kernel or terminal runs under, if it is an
    ancestor of this process."""
    for process in psutil.Process().parents():
        try:
            argv = process.cmdline()
            words = " ".join(argv)
            if "jupyter" in words and any(key in words for key in
                                          ("lab", "notebook", "server", "singleuser")):
                # argv[0] as started: a venv's python is a link that exe() would resolve away
                return argv[0] if os.path.isabs(argv[0]) else process.exe()
        except psutil.Error:
            continue
    return None


def _proxy_findings(context: Context) -> list[Finding]:
    environ = context.environ
    proxy = environ.get("http_proxy") or environ.get("HTTP_PROXY")
    if not proxy:
        return []
    exempt = (environ.get("no_proxy") or environ.get("NO_PROXY") or "").replace(" ", "")
    names = {name.lstrip(".") for name in exempt.split(",") if name}
    if "*" in names:
        return []
    missed = [host for host in context.hosts
              if not any(host == name or host.endswith("." + name) for name in names)]
    if not missed:
        return []
    return [warning(CHECK, f"http_proxy is set ({proxy}) and no_proxy does not name the node: "
                           "dashboard requests would go to the proxy",
                    "export no_proxy=\"$no_proxy,<the nodes named>\" before starting Jupyter",
                    missed)]


def check(context: Context) -> list[Finding]:
    if not context.environ.get("JUPYTERHUB_SERVICE_PREFIX"):
        return []
    found = _proxy_findings(context)
    python = server_python()
    if python is None:
        return found or [ok(CHECK, "under JupyterHub; the Jupyter server is not an ancestor of "
                                   "this process, so its environment was not checked")]
    try:
        answer = json.loads(subprocess.run([python, "-c", _SERVER_QUERY], capture_output=True,
                                           text=True, timeout=30).stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return found
    if not answer["proxy"]:
        here = ("it is in this one, the kernel's, where it does nothing"
                if importlib.util.find_spec("jupyter_server_proxy") else "nor in this one")
        found.append(problem(CHECK, f"jupyter-server-proxy is not in the Jupyter server's "
                                    f"environment ({python}); {here}",
                             f"{python} -m pip install jupyter-server-proxy, then restart your "
                             "server (File > Hub Control Panel)"))
    elif not answer["hook"]:
        found.append(warning(CHECK, "the Jupyter server's configuration does not use "
                                    "daskhpc.proxy_allowlist: dashboards on other nodes are "
                                    "refused by jupyter-server-proxy",
                             "add the allow-list lines from the README (Dashboard) to "
                             "~/.jupyter/jupyter_server_config.py and restart the server"))
    return found or [ok(CHECK, f"the Jupyter server ({python}) has jupyter-server-proxy and the "
                               "allow-list hook")]
