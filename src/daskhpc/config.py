"""daskhpc's settings in Dask's config: the shipped defaults (daskhpc.yaml) under whatever sites
(/etc/dask/*.yaml), users (~/.config/dask/*.yaml) and DASK_DASKHPC__* variables set.

Cluster side only (start-dask-cluster and the Python API): it runs in the environment, where dask
and PyYAML are installed. setup runs in the bootstrap Python before any environment exists, so
its defaults are SetupOptions' own and it never reads this.

Importing dask costs the start command about 0.2 s on the path every worker waits on, so Dask's
config is asked through dask only when dask is loaded already or one of its sources mentions
daskhpc (a top-level `daskhpc:` key in one of the YAML files Dask reads, or a DASK_DASKHPC__
variable); otherwise the shipped file alone is the answer, read without dask.
"""

from __future__ import annotations

import functools
import os
import re
import site
import sys
from pathlib import Path
from typing import Any

from daskhpc.errors import DaskhpcError

DEFAULTS_FILE = Path(__file__).with_name("daskhpc.yaml")
_OUR_KEY = re.compile(r"^daskhpc\s*:", re.MULTILINE)
_ENV_PREFIX = "DASK_DASKHPC__"


def _dask_config_paths() -> list[Path]:
    """The places Dask reads YAML config from (dask.config.paths, in Dask's order)."""
    places = [os.environ.get("DASK_ROOT_CONFIG", "/etc/dask"),
              os.path.join(sys.prefix, "etc", "dask"),
              *[os.path.join(prefix, "etc", "dask") for prefix in site.PREFIXES],
              os.path.join(os.path.expanduser("~"), ".config", "dask")]
    if "DASK_CONFIG" in os.environ:
        places.append(os.environ["DASK_CONFIG"])
    return [Path(place) for place in dict.fromkeys(places)]


def _yaml_files(place: Path) -> list[Path]:
    if place.is_dir():
        return sorted(path for path in place.iterdir()
                      if path.suffix.lower() in (".yaml", ".yml", ".json"))
    return [place] if place.is_file() else []


def mentioned_in_dask_config() -> bool:
    """Whether any source of Dask's config may hold a daskhpc setting."""
    if any(name.upper().startswith(_ENV_PREFIX) for name in os.environ):
        return True
    if "DASK_INTERNAL_INHERIT_CONFIG" in os.environ:
        return True
    for place in _dask_config_paths():
        for path in _yaml_files(place):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if _OUR_KEY.search(text) or (path.suffix == ".json" and '"daskhpc"' in text):
                return True
    return False


@functools.cache
def shipped_defaults() -> dict[str, Any]:
    """daskhpc.yaml as a dict (read once; callers must not change it)."""
    import yaml

    data: dict[str, Any] = yaml.safe_load(DEFAULTS_FILE.read_text())
    return data


@functools.cache
def _merge_into_dask_config() -> None:
    """Our defaults under everything Dask read (once per process, as dask-jobqueue does)."""
    import dask.config

    dask.config.update_defaults(shipped_defaults())


def section(name: str) -> dict[str, Any]:
    """The `daskhpc.<name>` settings, keys with underscores (workers_per_node)."""
    defaults = shipped_defaults()
    # Where dask is loaded already (a notebook, the Python API) it is free to ask, and a
    # dask.config.set() around the call must count.
    if "dask" in sys.modules or mentioned_in_dask_config():
        import dask.config

        _merge_into_dask_config()
        found = dask.config.get(f"daskhpc.{name}")
    else:
        found = defaults["daskhpc"][name]
    if not isinstance(found, dict):
        raise DaskhpcError(f"dask config daskhpc.{name} must be a mapping of settings; "
                           "fix it in your dask config files (e.g. /etc/dask/*.yaml)")
    known = {key.replace("-", "_") for key in defaults["daskhpc"][name]}
    settings = {str(key).replace("-", "_"): value for key, value in found.items()}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise DaskhpcError(f"dask config daskhpc.{name}.{unknown[0].replace('_', '-')} is not a "
                           f"daskhpc setting (known: {', '.join(sorted(known))}); fix or remove "
                           "it in your dask config")
    return settings
