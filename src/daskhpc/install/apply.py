"""Carry out an install plan, recording every created item in the manifest as it goes.

Crash safety: the environment is built in a fresh directory under <env>.builds/ and the env
link (the only path wrappers and the kernel use) is switched to it with one atomic rename once
the build is complete. A build is recorded in the manifest before it starts, so a killed run
leaves nothing unrecorded, and the next run discards it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

from daskhpc import client_config, paths
from daskhpc.errors import DaskhpcError
from daskhpc.files import swap_link, write_atomic
from daskhpc.install import generated
from daskhpc.install.backends import conda, rattler, venv
from daskhpc.install.options import InstallOptions
from daskhpc.install.plan import State, Step, inputs_digest, package_digest
from daskhpc.install.runner import Log, child_environment
from daskhpc.manifest import EnvRecord, Manifest

BUILD_MARKER = ".daskhpc-build.json"  # written last: its presence means the build is complete
RETRY_HINT = "the previous install is unchanged; fix the cause and run setup-dask.sh again"

ENSURE_CLIENT_TLS = "from daskhpc.cluster.tls.current import ensure_current; ensure_current()"
MAKE_TLS_IN = ("import sys, pathlib; from daskhpc.cluster.tls.material import create_cluster_tls; "
               "create_cluster_tls(pathlib.Path(sys.argv[1]))")


def build_is_complete(build: Path) -> bool:
    return (build / BUILD_MARKER).exists()


def site_packages(prefix: Path) -> Path:
    found = sorted(prefix.glob("lib/python3*/site-packages"))
    if not found:
        raise DaskhpcError(f"no site-packages under {prefix}; rebuild with setup-dask.sh --update")
    return found[-1]


def resolve_step_path(step: Step, env_link: Path) -> Path:
    if step.path.startswith("{site-packages}/"):
        return site_packages(env_link) / step.path.split("/", 1)[1]
    return Path(step.path)


def is_inside_env(step: Step, env_link: Path) -> bool:
    return step.kind in ("file", "shared-client-tls") and (
        step.path.startswith("{site-packages}/") or Path(step.path).is_relative_to(env_link))


def make_shared_read_only(root: Path) -> None:
    """--system: everyone may read (and run), only the owner may write."""
    for folder, directories, files in os.walk(root):
        for name in [*directories, *files]:
            path = Path(folder, name)
            if path.is_symlink():
                continue
            mode = path.stat().st_mode & 0o7777
            executable = path.is_dir() or mode & 0o100
            path.chmod((mode | 0o444 | (0o111 if executable else 0)) & ~0o022)
    root.chmod(0o755)


class Installer:
    def __init__(self, options: InstallOptions, manifest: Manifest, state: State) -> None:
        self.options = options
        self.manifest = manifest
        self.uv = state.uv
        self.rattler_runner = state.rattler_runner
        self.current_build = Path(state.env.build) if state.env and state.env_complete else None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.log = Log(options.log_dir / f"setup-{stamp}-{os.getpid()}.log", self._log_opened)
        self.changed = False

    # -- bookkeeping -----------------------------------------------------------------------

    def _log_opened(self, path: Path) -> None:
        self.ensure_dir(path.parent)
        self.manifest.record("file", path)

    def ensure_dir(self, path: Path) -> None:
        """mkdir -p, recording each directory it creates (so remove takes exactly those)."""
        missing = []
        for candidate in [path, *path.parents]:
            if candidate.exists():
                break
            missing.append(candidate)
        for directory in reversed(missing):
            self.manifest.record("dir", directory)
            directory.mkdir(exist_ok=True)
            if self.options.system:
                directory.chmod(0o755)

    def command_environment(self) -> dict[str, str]:
        if self.options.cache_is_ours:
            self.ensure_dir(self.options.cache_dir.parent)
            self.manifest.record("tree", self.options.cache_dir)
        # pip (fetching uv, or the last-resort build) caches next to uv: one recorded place.
        return child_environment({"UV_CACHE_DIR": str(self.options.cache_dir),
                                  "PIP_CACHE_DIR": str(self.options.cache_dir / "pip")})

    def run(self, argv: list[str], what: str, **extra_env: str) -> str:
        return self.log.run(argv, what, RETRY_HINT, {**self.command_environment(), **extra_env})

    # -- checks ----------------------------------------------------------------------------

    def is_current(self, step: Step) -> bool:
        """True when the step would change nothing (dry-run shows it, apply skips it)."""
        if step.kind == "file":
            try:
                path = resolve_step_path(step, self.options.env_link)
                return (path.read_text() == step.content
                        and path.stat().st_mode & 0o777 == step.mode)
            except (OSError, DaskhpcError):
                return False
        if step.kind == "kernel":
            try:
                spec = json.loads((Path(step.path) / "kernel.json").read_text())
            except (OSError, ValueError):
                return False
            return bool(spec == json.loads(step.content))
        if step.kind == "client-tls":
            return Path(step.path).exists()
        if step.kind == "shared-client-tls":
            return (Path(step.path) / client_config.CA_FILE).exists()
        if step.kind == "rc-line":
            try:
                return step.content in Path(step.path).read_text().splitlines()
            except OSError:
                return False
        return False

    # -- the steps -------------------------------------------------------------------------

    def pending(self, steps: list[Step]) -> list[Step]:
        """The steps that change something. Files inside the env are judged by the current
        build, so when a new build is coming they are all pending: it has none of them yet."""
        rebuilding = any(step.kind == "env" for step in steps)
        return [step for step in steps
                if (rebuilding and is_inside_env(step, self.options.env_link))
                or not self.is_current(step)]

    def apply(self, steps: list[Step]) -> None:
        self.ensure_dir(self.manifest.path.parent)  # recorded before the manifest lands in it
        self.discard_unfinished_builds()
        pending = self.pending(steps)
        for number, step in enumerate(pending, 1):
            print(f"[{number}/{len(pending)}] {step.summary}", flush=True)
            started = time.monotonic()
            getattr(self, "_step_" + step.kind.replace("-", "_"))(step)
            self.changed = True
            if time.monotonic() - started > 2:
                print(f"      done in {time.monotonic() - started:.1f} s", flush=True)
        self.log.close()

    def discard_unfinished_builds(self) -> None:
        """Builds other than the current one: half-built by a killed run, or superseded."""
        for item in list(self.manifest.items):
            if item.kind != "env-build" or Path(item.path) == self.current_build:
                continue
            shutil.rmtree(item.path, ignore_errors=True)
            self.manifest.forget("env-build", item.path)
        for item in list(self.manifest.items):
            if item.kind == "file" and Path(item.path).name.startswith(".daskhpc-switch-"):
                Path(item.path).unlink(missing_ok=True)
                self.manifest.forget("file", item.path)

    def _step_uv(self, step: Step) -> None:
        tools = self.options.tools_dir
        self.ensure_dir(tools)
        self.manifest.record("tree", tools / "uv")
        try:
            for argv in venv.install_uv_commands(sys.executable, tools):
                self.run(argv, "installing uv from PyPI")
        except DaskhpcError as error:  # pip can still build the env, only slower
            print(f"warning: {error}\n      continuing with pip (slower)", flush=True)
            return
        self.uv = str(venv.uv_in_tools_dir(tools))

    def _step_rattler_tools(self, step: Step) -> None:
        tools = self.options.tools_dir
        self.ensure_dir(tools)
        self.manifest.record("tree", tools / rattler.TOOLS_VENV)
        for argv in rattler.install_tools_commands(sys.executable, tools):
            self.run(argv, "installing py-rattler from PyPI")
        self.rattler_runner = str(rattler.tools_python(tools))
        self.uv = self.uv or rattler.find_uv(tools)

    def _build_commands(self, build: Path) -> list[list[str]]:
        options = self.options
        backend = options.backend
        if backend.name == "rattler":
            assert self.rattler_runner is not None
            self.ensure_dir(options.rattler_cache.parent)
            self.manifest.record("tree", options.rattler_cache)
            return [rattler.create_command(self.rattler_runner, options.repo, build,
                                           options.source, list(options.channels),
                                           options.rattler_cache)]
        if backend.name == "venv":
            lock = options.repo / "envs" / "requirements.lock"
            if self.uv is None:
                return venv.build_commands_pip(options.python, build, lock)
            return venv.build_commands_uv(self.uv, options.python, build, lock)
        assert backend.tool is not None
        return conda.build_commands(backend.name, backend.tool, build, options.source,
                                    conda.find_conda_lock(), options.channels)

    def _package_commands(self, build: Path) -> list[list[str]]:
        """daskhpc into the env, then bytecode (conda compiles at install time itself; rattler
        only its noarch packages, so the PyPI part needs it like a venv)."""
        if self.options.backend.name == "rattler":  # its python brings a compiled stdlib
            return [venv.package_command(self.uv, build, self.options.repo),
                    venv.compile_command(build, site_packages(build))]
        if self.options.backend.name == "venv":
            return [venv.package_command(self.uv, build, self.options.repo),
                    venv.compile_command(build)]
        return [conda.package_command(build, self.options.repo)]

    def _step_env(self, step: Step) -> None:
        options = self.options
        inputs = inputs_digest(options)
        build = options.builds_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{inputs[:8]}"
        self.ensure_dir(options.builds_dir)
        self.manifest.record("env-build", build)  # before it exists: a kill leaves it listed
        try:
            for argv in self._build_commands(build):
                self.run(argv, "building the environment")
            for argv in self._package_commands(build):
                self.run(argv, "installing daskhpc into the environment")
            (build / BUILD_MARKER).write_text(json.dumps({"inputs_sha256": inputs}) + "\n")
            if options.system:
                make_shared_read_only(build)
        except BaseException:  # failed or interrupted: the half-built env goes, the old stays
            shutil.rmtree(build, ignore_errors=True)
            self.manifest.forget("env-build", build)
            raise
        self._switch_link(build)
        previous, self.current_build = self.current_build, build
        self.manifest.set_env(EnvRecord(str(options.env_link), str(build), options.backend.name,
                                        inputs, package_digest(options.repo)))
        if previous is not None and previous != build:
            shutil.rmtree(previous, ignore_errors=True)
            self.manifest.forget("env-build", previous)

    def _switch_link(self, build: Path) -> None:
        link = self.options.env_link
        self.ensure_dir(link.parent)
        self.manifest.record("env-link", link)
        temporary = link.with_name(f".daskhpc-switch-{link.name}-{os.getpid()}")
        self.manifest.record("file", temporary)
        swap_link(link, build, temporary)  # users see the old build or the new, never half
        self.manifest.forget("file", temporary)

    def _step_package(self, step: Step) -> None:
        assert self.current_build is not None and self.manifest.env is not None
        for argv in self._package_commands(self.current_build):
            self.run(argv, "installing daskhpc into the environment")
        if self.options.system:
            make_shared_read_only(site_packages(self.current_build))
        record = self.manifest.env
        self.manifest.set_env(EnvRecord(record.link, record.build, record.backend,
                                        record.inputs_sha256, package_digest(self.options.repo)))

    def _step_file(self, step: Step) -> None:
        path = resolve_step_path(step, self.options.env_link)
        if is_inside_env(step, self.options.env_link):  # goes with the env: not recorded
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            self.ensure_dir(path.parent)
            self.manifest.record("file", path)
        write_atomic(path, step.content, step.mode)

    def _step_client_tls(self, step: Step) -> None:
        self.ensure_dir(Path(step.path).parent)
        self.manifest.record("tree", paths.placeholder_tls_dir())
        self.manifest.record("file", step.path)
        self.run([str(self.options.env_python), "-c", ENSURE_CLIENT_TLS],
                 "making placeholder client certificates")

    def _step_shared_client_tls(self, step: Step) -> None:
        # Inside the environment (goes with it): not recorded. Its key opens nothing: no
        # cluster trusts this CA, so every user may read it.
        self.run([str(self.options.env_python), "-c", MAKE_TLS_IN, step.path],
                 "making shared placeholder client certificates")
        make_shared_read_only(Path(step.path))

    def _step_kernel(self, step: Step) -> None:
        kernel_dir = Path(step.path)
        self.ensure_dir(kernel_dir.parent)
        self.manifest.record("tree", kernel_dir)
        temporary = kernel_dir.with_name(f".{kernel_dir.name}.daskhpc-tmp")
        self.manifest.record("tree", temporary)
        shutil.rmtree(temporary, ignore_errors=True)
        # The template's other files (the logo) as they are, kernel.json filled in.
        shutil.copytree(self.options.repo.joinpath(*generated.KERNEL_TEMPLATE), temporary)
        (temporary / "kernel.json").write_text(step.content)
        if self.options.system:
            make_shared_read_only(temporary)
        shutil.rmtree(kernel_dir, ignore_errors=True)  # ours (checked before starting)
        os.rename(temporary, kernel_dir)
        self.manifest.forget("tree", temporary)

    def _step_rc_line(self, step: Step) -> None:
        path = Path(step.path)
        existing: Optional[str] = path.read_text() if path.exists() else None
        self.manifest.record("rc-line", path, step.content)
        if existing is None:
            self.manifest.record("file-if-empty", path)
        separator = "" if not existing or existing.endswith("\n") else "\n"
        with path.open("a") as stream:
            stream.write(f"{separator}{step.content}\n")
