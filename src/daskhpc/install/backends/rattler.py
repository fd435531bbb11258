"""rattler backend: a real conda environment (conda-meta/, prefix replacement, the channel's own
python) made with py-rattler, the library under pixi, where no conda executable exists.

Two halves in one file. The installer (bootstrap Python, standard library) only computes the
commands. The work runs as `main()` in a Python that has py-rattler: the bootstrap Python when
it already has it, else a small venv of our own under the tools dir (py-rattler, PyYAML and uv
from PyPI, like the venv backend's uv). Steps of `create`:

1. the conda packages: exactly those of a conda-lock file (hashes checked on every download),
   or a solve of the environment file against the channels;
2. the PyPI part, with the environment's Python, always from the hashed envs/requirements.lock:
   all of it when the conda packages do not bring the stack (a file with only python and pip:
   "conda for Python, pip for the rest"), else only the file's pip section, pinned and hashed
   as the lock has them.

`lock` writes conda-lock's own v1 format (which `conda-lock install` and rattler read).

It stands in for `--backend conda` where no conda tool is found, and `auto` takes it when every
conda channel answers (a re-run keeps it without asking them again).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Optional, Union

from daskhpc import paths
from daskhpc.install import channels as channel_list
from daskhpc.install.backends import venv
from daskhpc.install.backends.base import (
    PYPI_LOCK,
    Backend,
    InstallToolVenv,
    Reason,
    Tools,
    site_packages,
    tool_venv_commands,
)
from daskhpc.install.steps.base import Context, Step

if TYPE_CHECKING:
    from daskhpc.install.options import InstallOptions

TOOLS_REQUIREMENTS = ("py-rattler==0.28.0", "PyYAML==6.0.3", "uv==0.13.8")
TOOLS_VENV = "rattler"
# Only the channel index and package downloads wait on the network: a dead mirror fails in
# this many seconds instead of hanging.
NETWORK_TIMEOUT_SECONDS = 60
STACK_MARKER = "dask"  # conda packages that include it bring the stack themselves
HINT = "the previous install is unchanged"


# -- installer side (standard library) ---------------------------------------------------------


def has_rattler(python_modules: tuple[str, ...] = ("rattler", "yaml")) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in python_modules)


def tools_python(tools_dir: Path) -> Path:
    return tools_dir / TOOLS_VENV / "bin" / "python"


def find_runner(tools_dir: Path) -> Optional[str]:
    """A Python that can import py-rattler: this one, else our tools venv, else None."""
    if has_rattler():
        return sys.executable
    own = tools_python(tools_dir)
    return str(own) if own.exists() else None


def find_uv(tools_dir: Path) -> Optional[str]:
    own = tools_dir / TOOLS_VENV / "bin" / "uv"
    return str(own) if own.exists() else None


def install_tools_commands(python: str, tools_dir: Path) -> list[list[str]]:
    return tool_venv_commands(python, tools_dir / TOOLS_VENV, TOOLS_REQUIREMENTS)


def is_conda_lock(path: Path) -> bool:
    return path.name.endswith("conda-lock.yml") or path.name.endswith("conda-lock.yaml")


def create_command(runner: str, repo: Path, build: Path, source: Path, channels: list[str],
                   cache: Path) -> list[str]:
    """The one command that makes a complete conda environment at build."""
    argv = [runner, "-c", _RUN_MAIN, str(repo / "src"), "create", "--prefix", str(build),
            "--source", str(source), "--pypi-lock", str(repo / "envs" / PYPI_LOCK),
            "--cache", str(cache)]
    for channel in channels:
        argv += ["--channel", channel]
    return argv


# `python -c`, not the file as a script: its folder on sys.path would shadow py-rattler. It ends
# with os._exit once its output is flushed: py-rattler's runtime threads can abort the
# interpreter's shutdown (seen here once: "Fatal Python error: PyGILState_Release",
# exit -6, after the error line), which would hide the error and fail a finished build.
_RUN_MAIN = ("import os, sys; sys.path.insert(0, sys.argv.pop(1)); "
             "from daskhpc.install.backends.rattler import main; code = main(sys.argv[1:]); "
             "sys.stdout.flush(); sys.stderr.flush(); os._exit(code)")


@dataclass(frozen=True)
class InstallRattlerTools(InstallToolVenv):
    kind: ClassVar[str] = "rattler-tools"
    folder: ClassVar[str] = TOOLS_VENV
    requirements: ClassVar[tuple[str, ...]] = TOOLS_REQUIREMENTS

    def apply(self, context: Context) -> None:
        bin_dir = self.install(context)
        context.tools = replace(context.tools, runner=str(bin_dir / "python"),
                                uv=context.tools.uv or str(bin_dir / "uv"))


@dataclass(frozen=True)
class Rattler(Backend):
    names = ("rattler",)
    stands_in_for = ("conda",)  # a conda environment where no conda tool is found
    probe_asks_network = True

    @classmethod
    def probe(cls, channels: Sequence[str], passed_over: Sequence[Reason]) -> Union[Backend,
                                                                                    Reason]:
        """Only when every channel answers, within PROBE_SECONDS each."""
        if not channels:
            return Reason("no conda channel configured",
                          "for a conda environment pass --backend conda --channel URL")
        failures = [(url, reason) for url in channels
                    if (reason := channel_list.probe(url)) is not None]
        if failures:
            url, reason = failures[0]
            return Reason(f"{url} did not answer within {channel_list.PROBE_SECONDS:.0f} s "
                          f"({reason})", "for a conda environment pass --backend conda "
                          "--channel URL of a reachable mirror")
        why = " and ".join(reason.why for reason in passed_over)
        return cls("rattler", note=f"auto: {why}; {', '.join(channels)} answered: a conda "
                   "environment through rattler")

    def find_tools(self, tools_dir: Path) -> Tools:
        return Tools(uv=venv.find_uv(tools_dir) or find_uv(tools_dir),
                     runner=find_runner(tools_dir))

    def tool_steps(self, options: InstallOptions, tools: Tools) -> list[Step]:
        if tools.runner is not None:
            return []
        return [InstallRattlerTools(f"install py-rattler and uv into {options.tools_dir} "
                                    "(from PyPI)")]

    def describe(self, options: InstallOptions) -> str:
        return (f"conda env by rattler from {options.source.name} "
                f"({', '.join(options.channels) or 'channels of the lock'})")

    def build_commands(self, context: Context, build: Path) -> list[list[str]]:
        options, runner = context.options, context.tools.runner
        assert runner is not None
        cache = paths.cache_dir() / "rattler"  # packages and channel indexes
        context.ensure_dir(cache.parent)
        context.manifest.record("tree", cache)
        return [create_command(runner, options.repo, build, options.source,
                               list(options.channels), cache)]

    def package_commands(self, context: Context, build: Path) -> list[list[str]]:
        """Bytecode for site-packages only: its python brings a compiled stdlib, and rattler
        compiles only its noarch packages, so the PyPI part needs it like a venv."""
        return [venv.package_command(context.tools.uv, build, context.options.repo),
                venv.compile_command(build, site_packages(build))]


# -- worker side (runs with py-rattler) --------------------------------------------------------


class Failure(Exception):
    """One line for the user: the installer shows the worker's last line."""


def _environment_file(path: Path) -> tuple[list[str], list[str]]:
    """Conda specs and pip-section requirements of an environment.yml."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise Failure(f"cannot read {path}: {str(error).splitlines()[0]}") from None
    conda: list[str] = []
    pip: list[str] = []
    for item in data.get("dependencies") or []:
        if isinstance(item, dict):
            pip.extend(str(requirement) for requirement in item.get("pip") or [])
        else:
            conda.append(str(item))
    if not conda:
        raise Failure(f"{path} lists no conda dependencies (it needs at least python and pip)")
    return conda, pip


def _client(timeout: int) -> Any:
    import rattler

    # The system store: sites reach their mirrors (and the internet) through their own CA.
    config = rattler.Config.from_toml('tls-root-certs = "system"')
    return rattler.Client.from_config(config, timeout=timeout)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    causes = [line[len("Caused by:"):].strip() for line in lines if line.startswith("Caused by:")]
    head = lines[0] if lines else type(error).__name__
    return f"{head} ({causes[-1]})" if causes else head


async def _solve(specs: list[str], channels: list[str], platform: str, cache: Path,
                 timeout: int) -> list[Any]:
    import rattler
    from rattler.exceptions import GatewayError, SolverError

    if not channels:
        raise Failure("no conda channel given: pass --channel URL (a conda-forge mirror)")
    gateway = rattler.Gateway(cache_dir=cache / "repodata", client=_client(timeout))
    try:
        return await rattler.solve([rattler.Channel(url) for url in channels], specs,
                                   gateway=gateway, platforms=[platform, "noarch"],
                                   virtual_packages=rattler.VirtualPackage.detect())
    except GatewayError as error:
        raise Failure(f"channel unreachable: {_first_line(error)}; tried {', '.join(channels)}; "
                      "pass --channel URL of a reachable channel or mirror") from None
    except SolverError as error:
        raise Failure(f"cannot solve {', '.join(specs)} from {', '.join(channels)}: "
                      f"{_first_line(error)}") from None
    except Exception as error:  # rattler's other errors (bad specs, ...) are the user's input
        raise Failure(f"{_first_line(error)}") from None


def _locked_records(lock: Path, platform: str) -> list[Any]:
    import rattler

    try:
        environment = rattler.LockFile.from_path(lock).default_environment()
    except Exception as error:
        raise Failure(f"cannot read {lock}: {_first_line(error)}") from None
    records = environment.conda_repodata_records().get(platform) if environment else None
    if not records:
        raise Failure(f"{lock} has no packages for {platform}; re-lock with envs/conda-lock.sh "
                      f"--platform {platform}")
    return records


def _check_local_hashes(records: list[Any]) -> None:
    """rattler checks the hash of what it downloads, not of file:// packages it reads in
    place: check those here, so a lock means the same bytes from a mirror on disk."""
    import hashlib
    from urllib.parse import unquote, urlparse

    for record in records:
        url = urlparse(record.url)
        if url.scheme != "file":
            continue
        expected = record.sha256.hex() if record.sha256 is not None else None
        if expected is None and record.md5 is None:
            continue
        try:
            data = Path(unquote(url.path)).read_bytes()
        except OSError as error:
            raise Failure(f"cannot read {record.url}: {error.strerror}") from None
        actual = hashlib.sha256(data).hexdigest() if expected else hashlib.md5(data).hexdigest()
        if actual != (expected or record.md5.hex()):
            raise Failure(f"hash mismatch for {record.url}: the lock says "
                          f"{expected or record.md5.hex()}, the file has {actual}")


def _pinned(lock: Path, names: set[str]) -> list[str]:
    """The blocks (`name==version \\` and its hashes) of requirements.lock for these names."""
    blocks, keep = [], False
    for line in lock.read_text().splitlines():
        if line and not line[0].isspace():
            keep = _normalize(line.split("==", 1)[0]) in names
        if keep and not line.lstrip().startswith("#"):
            blocks.append(line)
    return blocks


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _pip_install(prefix: Path, requirements: Path) -> None:
    import subprocess

    python = prefix / "bin" / "python"
    uv = Path(sys.executable).with_name("uv")
    if uv.exists():
        argv = [str(uv), "pip", "install", "--python", str(python), "--require-hashes",
                "--no-deps", "-r", str(requirements)]
    else:
        argv = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--require-hashes", "--no-deps", "-r", str(requirements)]
    print("running: " + " ".join(argv), flush=True)
    code = subprocess.run(argv, stdin=subprocess.DEVNULL).returncode
    if code != 0:
        raise Failure(f"installing the PyPI part from {requirements} failed (exit {code})")


def _install_pypi(prefix: Path, records: list[Any], pip_section: list[str], lock: Path) -> None:
    """The hashed PyPI lock: whole when conda did not bring the stack, else the pip section.
    --no-deps: the lock is complete, so nothing is resolved and conda's packages stay."""
    import tempfile

    conda_names = {record.name.normalized for record in records}
    if STACK_MARKER in conda_names:
        wanted = {_normalize(requirement.split("=")[0].split(">")[0].split("<")[0])
                  for requirement in pip_section}
        if not wanted:
            return
        lines = _pinned(lock, wanted)
        missing = wanted - {_normalize(line.split("==", 1)[0]) for line in lines
                            if not line[0].isspace()}
        if missing:
            raise Failure(f"{', '.join(sorted(missing))} (pip section) is not in {lock}; "
                          "add it to envs/environment.yml and run envs/lock.sh")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as stream:
            stream.write("\n".join(lines) + "\n")
        try:
            _pip_install(prefix, Path(stream.name))
        finally:
            Path(stream.name).unlink()
        return
    _pip_install(prefix, lock)


async def _create(arguments: Any) -> None:
    import rattler

    platform = str(rattler.Platform.current())
    cache = Path(arguments.cache)
    source = Path(arguments.source)
    pip_section: list[str] = []
    if is_conda_lock(source):
        records = _locked_records(source, platform)
        print(f"installing {len(records)} locked conda packages from {source}", flush=True)
    else:
        specs, pip_section = _environment_file(source)
        records = await _solve(specs, arguments.channel, platform, cache,
                               NETWORK_TIMEOUT_SECONDS)
        print(f"solved {len(records)} conda packages from {', '.join(arguments.channel)}",
              flush=True)
    _check_local_hashes(records)
    try:
        await rattler.install(records, target_prefix=arguments.prefix,
                              cache_dir=cache / "pkgs", show_progress=False,
                              client=_client(NETWORK_TIMEOUT_SECONDS))
    except Exception as error:
        raise Failure(f"installing the conda packages failed: {_first_line(error)}") from None
    if not (Path(arguments.prefix) / "bin" / "python").exists():
        raise Failure(f"{source} gives no python: add python (and pip) to it")
    _install_pypi(Path(arguments.prefix), records, pip_section, Path(arguments.pypi_lock))


def lock_document(records_by_platform: dict[str, list[Any]], channels: list[str],
                  source: str) -> dict[str, Any]:
    """conda-lock's v1 lock file (its pydantic model `Lockfile`), conda packages only."""
    import hashlib
    import json

    packages = []
    content_hash = {}
    for platform, records in sorted(records_by_platform.items()):
        entries = []
        for record in sorted(records, key=lambda r: r.name.normalized):
            depends = {}
            for spec in record.depends:
                name, _, constraint = spec.partition(" ")
                depends[name] = constraint.strip()
            hashes = {"md5": record.md5.hex()}
            if record.sha256 is not None:
                hashes["sha256"] = record.sha256.hex()
            entries.append({
                "name": record.name.normalized, "version": str(record.version),
                "manager": "conda", "platform": platform, "dependencies": depends,
                "url": record.url, "hash": hashes, "category": "main", "optional": False,
            })
        content_hash[platform] = hashlib.sha256(
            json.dumps(entries, sort_keys=True).encode()).hexdigest()
        packages.extend(entries)
    return {
        "version": 1,
        "metadata": {"content_hash": content_hash,
                     "channels": [{"url": url, "used_env_vars": []} for url in channels],
                     "platforms": sorted(records_by_platform), "sources": [source]},
        "package": packages,
    }


async def _lock(arguments: Any) -> None:
    import os

    import yaml

    source = Path(arguments.source)
    specs, pip_section = _environment_file(source)
    if pip_section:
        print(f"note: the pip section ({', '.join(pip_section)}) is not locked here: "
              "installs take it from envs/requirements.lock, hashed", flush=True)
    platforms = arguments.platform or ["linux-64"]
    by_platform = {}
    for platform in platforms:
        by_platform[platform] = await _solve(specs, arguments.channel, platform,
                                             Path(arguments.cache), NETWORK_TIMEOUT_SECONDS)
    output = Path(arguments.output)
    relative_source = os.path.relpath(source.resolve(), output.resolve().parent)
    document = lock_document(by_platform, arguments.channel, relative_source)
    header = ("# Generated by envs/conda-lock.sh (rattler's solver) in conda-lock's v1 format;\n"
              "# install with setup-dask.sh (rattler or conda-lock). Do not edit by hand.\n")
    output.write_text(header + yaml.safe_dump(document, sort_keys=False))
    print(f"wrote {output} ({sum(len(r) for r in by_platform.values())} packages, "
          f"{', '.join(platforms)})")


def main(argv: list[str]) -> int:
    import argparse
    import asyncio
    import os
    import tempfile

    parser = argparse.ArgumentParser(prog="daskhpc-rattler")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create")
    create.add_argument("--prefix", required=True)
    create.add_argument("--source", required=True, help="environment.yml or conda-lock.yml")
    create.add_argument("--pypi-lock", required=True)
    create.add_argument("--cache", required=True)
    create.add_argument("--channel", action="append", default=[])
    lock = commands.add_parser("lock")
    lock.add_argument("--source", required=True)
    lock.add_argument("--output", required=True)
    lock.add_argument("--channel", action="append", default=[])
    lock.add_argument("--platform", action="append", default=[])
    lock.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "daskhpc-rattler"))
    arguments = parser.parse_args(argv)
    try:
        asyncio.run(_create(arguments) if arguments.command == "create" else _lock(arguments))
    except Failure as failure:
        print(f"error: {failure}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":  # envs/conda-lock.sh
    sys.exit(main(sys.argv[1:]))
