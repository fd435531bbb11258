"""Options -> the ordered steps of an install. Pure: what is on disk comes in as a State, so the
plan can be printed (--dry-run), tested, and applied step by step (install/apply.py). The
steps are the types of install/steps/ plus the backend's own tool steps."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from daskhpc import client_config, paths
from daskhpc.install import generated
from daskhpc.install.backends.base import Tools
from daskhpc.install.options import InstallOptions
from daskhpc.install.steps.base import Step
from daskhpc.install.steps.env import BuildEnv, ReinstallPackage
from daskhpc.install.steps.files import SITE_PACKAGES, AddRcLine, RegisterKernel, WriteFile
from daskhpc.install.steps.tls import ClientTls, SharedClientTls
from daskhpc.manifest import EnvRecord


@dataclass(frozen=True)
class State:
    """What setup found before planning."""

    env: Optional[EnvRecord]  # the manifest's record of the current build
    env_complete: bool  # that build exists and finished
    tools: Tools  # what the backend builds with (missing ones: its tool steps)
    venv_available: bool  # the bootstrap Python can make a venv with pip (to fetch tools)


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def inputs_digest(options: InstallOptions) -> str:
    """What the environment is built from: a change means a rebuild."""
    return _digest(*options.backend.rebuild_inputs(options))


def package_digest(repo: Path) -> str:
    """daskhpc's own code: a change means reinstalling only the package."""
    files = [*sorted((repo / "src" / "daskhpc").rglob("*.py")), repo / "pyproject.toml"]
    return _digest(*(str(path.relative_to(repo)).encode() + path.read_bytes() for path in files))


def env_is_current(options: InstallOptions, state: State, inputs: str) -> bool:
    return (not options.update and state.env is not None and state.env_complete
            and state.env.inputs_sha256 == inputs and state.env.link == str(options.env_link))


def make_plan(options: InstallOptions, state: State, wrapper_template: str) -> list[Step]:
    inputs = inputs_digest(options)
    package = package_digest(options.repo)
    steps: list[Step] = []
    backend = options.backend
    if env_is_current(options, state, inputs):
        if state.env is not None and state.env.package_sha256 != package:
            steps.append(ReinstallPackage("reinstall daskhpc into the environment (code changed)",
                                          package_sha256=package))
    else:
        steps.extend(backend.tool_steps(options, state.tools))
        steps.append(BuildEnv(f"build the environment ({backend.describe(options)}) and switch "
                              f"{options.env_link} to it when complete",
                              inputs_sha256=inputs, package_sha256=package))
    steps.extend(_env_config_steps(options))
    # Kernels read the client certificates at start through current-tls: it must resolve even
    # before the user's first cluster. A user install makes the user's placeholder; users of a
    # system install never run setup, so their kernels link to one shared by the environment.
    if options.system:
        shared = options.env_link.joinpath(*client_config.SHARED_PLACEHOLDER)
        steps.append(SharedClientTls("make placeholder client certificates that every user's "
                                     "kernel can read", str(shared)))
    else:
        steps.append(ClientTls("make placeholder client certificates for kernels",
                               str(paths.current_tls_link())))
    steps.append(RegisterKernel(f"register the Jupyter kernel {options.display_name!r} in "
                                f"{options.kernel_dir}", str(options.kernel_dir),
                                generated.kernel_json(options.repo, options.env_link,
                                                      options.display_name)))
    for command, program in generated.wrapper_names().items():
        path = options.bin_dir / program
        text = generated.wrapper_text(wrapper_template, command, options.env_python)
        steps.append(WriteFile(f"write the wrapper {path}", str(path), text, 0o755))
    if options.rc_file is not None:
        steps.append(AddRcLine(f"add {options.bin_dir} to PATH in {options.rc_file}",
                               str(options.rc_file), generated.rc_line(options.bin_dir)))
    if options.modulefiles_dir is not None:
        steps.extend(_modulefile_steps(options))
    return steps


def _env_config_steps(options: InstallOptions) -> list[Step]:
    """Config inside the environment; paths go through the env link (the current build)."""
    etc = options.env_link / "etc"
    return [
        WriteFile("write dask defaults into the environment",
                  str(etc / "dask" / "daskhpc.yaml"), generated.dask_config_text()),
        WriteFile("write the Jupyter proxy allow-list hook",
                  str(etc / "jupyter" / "jupyter_server_config.py"),
                  generated.JUPYTER_SERVER_CONFIG),
        WriteFile("write the Dask client hook (.pth)",
                  f"{SITE_PACKAGES}daskhpc_client_config.pth", generated.CLIENT_HOOK_LINE),
    ]


def _modulefile_steps(options: InstallOptions) -> list[Step]:
    assert options.modulefiles_dir is not None
    folder = options.modulefiles_dir / "daskhpc"
    data = options.kernel_dir.parent.parent
    prefix = options.env_link.parent
    arguments = (options.bin_dir, data, prefix, options.module_version)
    lua = folder / f"{options.module_version}.lua"
    tcl = folder / options.module_version
    return [
        WriteFile(f"write the Lmod modulefile {lua}", str(lua),
                  generated.lmod_modulefile(*arguments)),
        WriteFile(f"write the Environment Modules modulefile {tcl}", str(tcl),
                  generated.tcl_modulefile(*arguments)),
    ]
