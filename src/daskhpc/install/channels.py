"""Which conda channels an environment comes from, as URLs, and whether they answer.

Order (the first that names channels wins): `--channel URL` (repeatable), the site's `.condarc`
(`channels`, resolved through its `channel_alias` and `custom_channels`), then the environment
file's `channels:`. Standard library only: it runs in the bootstrap Python, before any
environment exists, so the few keys needed are read from the YAML forms conda itself writes
(block lists, flow lists, `key: value` mappings) rather than through a YAML library.
"""

from __future__ import annotations

import os
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Union

DEFAULT_ALIAS = "https://conda.anaconda.org"
PROBE_SECONDS = 5.0

Value = Union[str, list[str], dict[str, str]]


def _scalar(text: str) -> str:
    text = text.split(" #", 1)[0].strip()
    return text[1:-1] if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"" else text


def read_top_level(text: str) -> dict[str, Value]:
    """Top-level keys whose value is a scalar, a list of scalars or a mapping of scalars."""
    result: dict[str, Value] = {}
    key: Optional[str] = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace() and ":" in line:
            key, _, rest = line.partition(":")
            key, rest = key.strip(), rest.strip()
            if rest.startswith("["):
                result[key] = [_scalar(part) for part in rest.strip("[]").split(",")
                               if part.strip()]
            elif rest:
                result[key] = _scalar(rest)
            continue
        stripped = line.strip()
        if key is None:
            continue
        if stripped.startswith("- "):
            items = result.setdefault(key, [])
            if isinstance(items, list):
                items.append(_scalar(stripped[2:]))
        elif ":" in stripped and line.startswith("  ") and not line.startswith("    "):
            mapping = result.setdefault(key, {})
            if isinstance(mapping, dict):
                name, _, value = stripped.partition(":")
                mapping[name.strip()] = _scalar(value)
    return result


def condarc_files() -> list[Path]:
    """The .condarc files conda reads, lowest precedence first."""
    home = Path(os.path.expanduser("~"))
    candidates = [Path("/etc/conda/.condarc"), Path("/etc/conda/condarc"),
                  *sorted(Path("/etc/conda/condarc.d").glob("*.yml")),
                  Path("/var/lib/conda/.condarc"), home / ".config/conda/.condarc",
                  home / ".conda/.condarc", home / ".condarc"]
    if os.environ.get("CONDARC"):
        candidates.append(Path(os.environ["CONDARC"]))
    return [path for path in candidates if path.is_file()]


def read_condarc() -> dict[str, Value]:
    merged: dict[str, Value] = {}
    for path in condarc_files():
        merged.update(read_top_level(path.read_text(errors="replace")))
    return merged


def channel_url(name: str, alias: str, custom: dict[str, str]) -> str:
    """A channel name or URL as conda resolves it: URLs stay, custom_channels map a name to
    its server, anything else hangs below the channel_alias."""
    if "://" in name:
        return name.rstrip("/")
    if name.startswith("/"):
        return "file://" + name.rstrip("/")
    if name in custom:
        return f"{custom[name].rstrip('/')}/{name}"
    return f"{alias.rstrip('/')}/{name}"


def resolve(given: list[str], environment_file: Optional[Path]) -> tuple[list[str], str]:
    """The channel URLs and where they came from (for the plan and error lines)."""
    condarc = read_condarc()
    alias = condarc.get("channel_alias")
    custom = condarc.get("custom_channels")
    alias_text = alias if isinstance(alias, str) and alias else DEFAULT_ALIAS
    custom_map = custom if isinstance(custom, dict) else {}
    names: list[str] = []
    source = ""
    condarc_channels = condarc.get("channels")
    if given:
        names, source = list(given), "--channel"
    elif isinstance(condarc_channels, list) and condarc_channels:
        names, source = condarc_channels, ".condarc"
    elif environment_file is not None and environment_file.suffix in (".yml", ".yaml"):
        from_file = read_top_level(environment_file.read_text()).get("channels")
        if isinstance(from_file, list):
            names, source = from_file, str(environment_file)
    defaults = condarc.get("default_channels")
    urls: list[str] = []
    for name in names:
        if name == "nodefaults":
            continue
        expanded = (defaults if isinstance(defaults, list) else []) if name == "defaults" \
            else [name]
        urls.extend(channel_url(item, alias_text, custom_map) for item in expanded)
    return urls, source or "default"


def probe(url: str, timeout: float = PROBE_SECONDS) -> Optional[str]:
    """None when the channel answers (its noarch index exists), else why not, in a few words.
    HTTPS uses the system CA store, like the installer itself. The wait is bounded as a whole:
    a socket timeout does not cover a name lookup that hangs, so the request runs in a thread
    that is left behind (daemon) if it has not answered in time."""
    index = f"{url}/noarch/repodata.json"
    if url.startswith("file://"):
        return None if Path(index[len("file://"):]).is_file() else f"no {index}"
    answer: list[Optional[str]] = []
    thread = threading.Thread(target=lambda: answer.append(_ask(index, timeout)), daemon=True)
    thread.start()
    thread.join(timeout)
    return answer[0] if answer else "no answer"


def _ask(index: str, timeout: float) -> Optional[str]:
    request = urllib.request.Request(index, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout,
                                    context=ssl.create_default_context()):
            return None
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"{reason}" if str(reason) else type(error).__name__
