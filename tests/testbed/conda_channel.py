"""A real conda channel on disk (file://), built from what this machine has, in a few seconds.

- `python`: the machine's shared CPython (pyenv, built --enable-shared) repacked as a conda
  package: the binary gets an rpath of $ORIGIN/../lib (patchelf), the text files naming the old
  prefix are marked as placeholders, so the installer rewrites them for the new prefix.
- `pip`: ensurepip's own wheel, converted by whl2conda.
- `hello-daskhpc`: a tiny noarch:python package written directly with conda-package-handling.
Indexed with rattler.index. Compiled conda-forge packages cannot join (their libraries expect
conda-forge's libc++, openssl, python_abi...): this channel proves the mechanics, not the stack.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Optional

HELLO_VERSION = "1.0"
SKIPPED_DIRS = {"site-packages", "test", "tests", "idlelib", "tkinter", "turtledemo",
                "config-3.11-x86_64-linux-gnu", "lib2to3"}


def _skipped(folder: str, names: list[str]) -> list[str]:
    """Tests and tools nobody imports, and the optimised bytecode; the plain bytecode stays,
    as in conda-forge's python (this machine never writes it: PYTHONDONTWRITEBYTECODE)."""
    return [name for name in names if name in SKIPPED_DIRS or ".opt-" in name]


def unusable_reason() -> Optional[str]:
    """Why this machine cannot build the channel's python package, or None."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return f"{sys.base_prefix} is not built --enable-shared (no libpython to repack)"
    if shutil.which("patchelf") is None and not Path(sys.executable).with_name(
            "patchelf").exists():
        return "patchelf is not installed (tests/requirements.txt has the PyPI wheel)"
    try:
        import conda_package_handling  # noqa: F401
        import rattler  # noqa: F401
    except ImportError as error:
        return f"{error.name} is not installed (tests/requirements.txt)"
    return None


def _patchelf() -> str:
    own = Path(sys.executable).with_name("patchelf")
    return str(own) if own.exists() else "patchelf"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pack(stage: Path, index: dict, out_dir: Path, placeholder: Optional[str] = None) -> Path:
    """Write info/index.json and info/paths.json for the files in stage, then the .conda."""
    import conda_package_handling.api as cph

    entries = []
    for path in sorted(p for p in stage.rglob("*") if not p.is_dir()):
        relative = str(path.relative_to(stage))
        if relative.startswith("info/"):
            continue
        if path.is_symlink():
            entries.append({"_path": relative, "path_type": "softlink",
                            "sha256": hashlib.sha256(os.readlink(path).encode()).hexdigest(),
                            "size_in_bytes": 0})
            continue
        entry = {"_path": relative, "path_type": "hardlink", "sha256": _sha256(path),
                 "size_in_bytes": path.stat().st_size}
        data = path.read_bytes()
        if placeholder and placeholder.encode() in data and b"\0" not in data:
            entry.update(prefix_placeholder=placeholder, file_mode="text")
        entries.append(entry)
    info = stage / "info"
    info.mkdir(exist_ok=True)
    (info / "index.json").write_text(json.dumps(index, indent=1))
    (info / "paths.json").write_text(json.dumps({"paths": entries, "paths_version": 1}))
    files = [str(p.relative_to(stage)) for p in stage.rglob("*") if not p.is_dir()]
    name = f"{index['name']}-{index['version']}-{index['build']}.conda"
    out_dir.mkdir(parents=True, exist_ok=True)
    cph.create(str(stage), files, name, out_folder=str(out_dir), compression_level=1)
    return out_dir / name


def _python_package(work: Path, channel: Path) -> Path:
    base = Path(sys.base_prefix)
    major_minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stage = work / "python"
    (stage / "bin").mkdir(parents=True)
    (stage / "lib").mkdir()
    binary = stage / "bin" / f"python{major_minor}"
    shutil.copy2(base / "bin" / f"python{major_minor}", binary)
    for library in base.glob(f"lib/libpython{major_minor}*.so*"):
        if not library.is_symlink():
            shutil.copy2(library, stage / "lib" / library.name)
    shutil.copytree(base / "lib" / f"python{major_minor}", stage / "lib" / f"python{major_minor}",
                    ignore=_skipped)
    (stage / "lib" / f"python{major_minor}" / "site-packages").mkdir()
    shutil.copytree(base / "include", stage / "include")
    subprocess.run([_patchelf(), "--set-rpath", "$ORIGIN/../lib", str(binary)], check=True)
    for alias in ("python", "python3"):
        (stage / "bin" / alias).symlink_to(binary.name)
    version = ".".join(map(str, sys.version_info[:3]))
    index = {"name": "python", "version": version, "build": "h0_repack", "build_number": 0,
             "depends": [], "subdir": "linux-64", "platform": "linux", "arch": "x86_64",
             "license": "PSF-2.0", "timestamp": 1700000000000}
    return _pack(stage, index, channel / "linux-64", placeholder=str(base))


def _hello_package(work: Path, channel: Path) -> Path:
    stage = work / "hello"
    module = stage / "site-packages" / "hello_daskhpc"
    module.mkdir(parents=True)
    (module / "__init__.py").write_text('GREETING = "hello from a conda package"\n')
    (stage / "info").mkdir()
    (stage / "info" / "link.json").write_text(
        json.dumps({"noarch": {"type": "python"}, "package_metadata_version": 1}))
    index = {"name": "hello-daskhpc", "version": HELLO_VERSION, "build": "py_0",
             "build_number": 0, "depends": ["python >=3.9"], "subdir": "noarch",
             "noarch": "python", "license": "MIT", "timestamp": 1700000000000}
    return _pack(stage, index, channel / "noarch")


def _pip_package(work: Path, channel: Path) -> None:
    bundled = Path(sys.base_prefix).glob("lib/python3*/ensurepip/_bundled/pip-*.whl")
    wheel = next(iter(bundled))
    whl2conda = Path(sys.executable).with_name("whl2conda")
    subprocess.run([str(whl2conda), "convert", str(wheel), "--out-dir", str(channel / "noarch"),
                    "--format", "conda", "--quiet", "--overwrite"], check=True, cwd=work,
                   stdout=subprocess.DEVNULL)


def build_channel(root: Path) -> Path:
    """Make the channel under root/channel and return its directory."""
    import rattler.index

    channel = root / "channel"
    work = root / "stage"
    _python_package(work, channel)
    _hello_package(work, channel)
    _pip_package(work, channel)
    shutil.rmtree(work)
    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False,
                                       force=True))
    return channel
