"""Command line: parse the arguments into the command's options object (daskhpc.options) and
hand it to the command's module. Nothing else.

Standard library only, and command modules are imported lazily: `setup` runs in the bootstrap
Python before any environment exists, and `--help` must stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Callable, NoReturn, Optional, Sequence

from daskhpc import __version__, options
from daskhpc.errors import DaskhpcError

# command -> module with `run(options) -> int`, taking that command's options object
COMMAND_MODULES = {
    "setup": "daskhpc.install.setup_command",
    "remove": "daskhpc.install.remove_command",
    "start": "daskhpc.cluster.commands.start",
    "stop": "daskhpc.cluster.commands.stop",
    "status": "daskhpc.cluster.commands.status",
    "doctor": "daskhpc.doctor.command",
}

# command -> how its parsed arguments become its options (defaults are filled there, not here)
OPTIONS: dict[str, Callable[..., Any]] = {
    "setup": options.SetupOptions,
    "remove": options.RemoveOptions,
    "start": options.StartOptions.from_config,
    "stop": options.StopOptions,
    "status": options.StatusOptions,
    "doctor": options.DoctorOptions.from_config,
}


class _OneLineParser(argparse.ArgumentParser):
    """Bad input gets one line saying what is wrong and where to look, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _argument_type(check: Callable[[object], Any]) -> Callable[[str], Any]:
    """An options check as an argparse type (its reason becomes argparse's one-line error)."""

    def parse(text: str) -> Any:
        try:
            return check(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


_positive_int = _argument_type(options.positive_int)
_non_negative_int = _argument_type(options.non_negative_int)
_positive_float = _argument_type(options.positive_float)


def _add_setup_arguments(parser: argparse.ArgumentParser) -> None:
    from daskhpc.install.backends import backend_choices  # here: the other commands skip it

    parser.add_argument(
        "--backend",
        choices=backend_choices(),
        help="how to build the environment: conda (through micromamba, mamba or conda when "
        "found, else rattler), venv; default auto: a conda tool if found, else rattler if the "
        "conda channels answer, else venv",
    )
    parser.add_argument(
        "--channel", action="append", metavar="URL",
        help="conda channel (repeatable; file:// or https:// mirrors); default: the site's "
        ".condarc, else the environment file's channels",
    )
    parser.add_argument(
        "--environment", metavar="FILE",
        help="conda backends: an environment.yml or conda-lock.yml instead of "
        "envs/conda-lock.yml (when present) or envs/environment.yml",
    )
    parser.add_argument(
        "--prefix",
        help="environment path (default: ~/.local/share/daskhpc/env); with --system: the "
        "install root (default: /opt/daskhpc/<version>)",
    )
    parser.add_argument("--name", help="conda backends: a named environment instead of --prefix")
    parser.add_argument(
        "--python", help="venv backend: the Python (>= 3.11) to build on (default: this one)"
    )
    parser.add_argument("--bin-dir", help="where to put the wrappers (default: ~/bin)")
    parser.add_argument(
        "--kernel-name", help="kernel id (default: dask; with --system: dask-<version>)"
    )
    parser.add_argument(
        "--display-name",
        help='kernel name shown in Jupyter (default: "Python (Dask)"; with --system: '
        '"Python (Dask <version>)")',
    )
    parser.add_argument(
        "--system", action="store_true", help="install for all users (admin; see README)"
    )
    parser.add_argument("--kernel-dir", help="with --system: Jupyter data dir for the kernel")
    parser.add_argument("--modulefiles-dir", help="with --system: write Lmod/Tcl modulefiles here")
    parser.add_argument(
        "--add-to-path", action="store_true", help="add the bin dir to PATH in ~/.bashrc"
    )
    parser.add_argument("--update", action="store_true", help="rebuild from the current lock")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask, assume yes")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")


def _add_remove_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep-env", action="store_true", help="keep the environment itself")
    parser.add_argument("--system", action="store_true", help="remove a --system install")
    parser.add_argument("--prefix", help="with --system: the prefix given at install")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask, assume yes")
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would go, change nothing"
    )


def _start_default(name: str) -> str:
    """How --help names a start default: the shipped value and the dask config key."""
    from daskhpc import config  # not at the top: setup's bootstrap has no YAML reader

    value = config.shipped_defaults()["daskhpc"]["start"][name]
    return f"default: {value}; dask config daskhpc.start.{name}"


def _add_start_arguments(parser: argparse.ArgumentParser) -> None:
    from daskhpc.cluster.launchers import LAUNCHERS

    parser.add_argument(
        "--launcher",
        choices=["auto", *LAUNCHERS],
        help=f"how to start workers on the nodes ({_start_default('launcher')}; auto says why)",
    )
    nodes = parser.add_mutually_exclusive_group()
    nodes.add_argument("--hostfile", help="file of node names, one per line (`host slots=N` ok)")
    nodes.add_argument("--hosts", help="node names: a,b,c or node[01-04]")
    parser.add_argument("--workers-per-node", type=_positive_int)
    parser.add_argument("--threads-per-worker", type=_positive_int)
    parser.add_argument(
        "--memory-limit", help="per worker, e.g. 4GiB (default: node memory / workers)"
    )
    parser.add_argument("--interface", help="network interface for all traffic, e.g. ib0")
    parser.add_argument("--scheduler-file", help="default: ~/dask-scheduler.json")
    parser.add_argument("--local-directory", help="node-local scratch for worker files")
    parser.add_argument(
        "--min-workers", type=_non_negative_int,
        help="continue when at least this many workers connect (default: all)",
    )
    parser.add_argument(
        "--timeout", type=_positive_float,
        help=f"seconds to wait for the workers ({_start_default('timeout')})",
    )
    parser.add_argument("--no-nanny", dest="nanny", action="store_const", const=False,
                        help="workers without a nanny process")
    parser.add_argument("--no-tls", dest="tls", action="store_const", const=False,
                        help="plain tcp:// (debugging only)")
    parser.add_argument(
        "--jobs", type=_non_negative_int,
        help="also submit this many batch jobs of workers that join the cluster",
    )


def _add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    _add_start_arguments(parser)  # the same options: it checks what that start would do
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _add_cluster_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cluster_id", nargs="?", help="which cluster (default: the latest)")


def _add_stop_arguments(parser: argparse.ArgumentParser) -> None:
    _add_cluster_choice(parser)
    parser.add_argument("--all", action="store_true", help="stop every cluster of yours")


def _add_status_arguments(parser: argparse.ArgumentParser) -> None:
    _add_cluster_choice(parser)
    parser.add_argument("--all", action="store_true", help="show every cluster of yours")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


_ARGUMENTS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "setup": ("create the Dask environment, kernel and wrappers", _add_setup_arguments),
    "remove": ("remove exactly what setup installed", _add_remove_arguments),
    "start": ("start a Dask cluster on the allocated nodes", _add_start_arguments),
    "stop": ("stop a cluster and every process it started", _add_stop_arguments),
    "status": ("show the running clusters", _add_status_arguments),
    "doctor": ("check, before starting, everything a start with these options needs",
               _add_doctor_arguments),
}

# Names under which the wrappers and the shell scripts present each command.
PROGRAM_NAMES = {
    "setup": "setup-dask.sh",
    "remove": "remove-dask.sh",
    "start": "start-dask-cluster",
    "stop": "stop-dask-cluster",
    "status": "dask-cluster-status",
    "doctor": "dask-cluster-doctor",
}


def build_parser(command: str) -> argparse.ArgumentParser:
    summary, add_arguments = _ARGUMENTS[command]
    # Absent options stay absent: their defaults live with the options (daskhpc.options).
    parser = _OneLineParser(prog=PROGRAM_NAMES[command], description=summary,
                            argument_default=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"daskhpc {__version__}")
    add_arguments(parser)
    return parser


def parse_options(command: str, argv: Sequence[str]) -> Any:
    """argv -> the command's options object."""
    arguments = build_parser(command).parse_args(list(argv))
    return OPTIONS[command](**vars(arguments))


def run_command(command: str, argv: Sequence[str]) -> int:
    try:
        parsed = parse_options(command, argv)
        module = importlib.import_module(COMMAND_MODULES[command])
        return int(module.run(parsed))
    except DaskhpcError as error:
        print(f"{PROGRAM_NAMES[command]}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROGRAM_NAMES[command]}: interrupted", file=sys.stderr)
        return 130


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m daskhpc COMMAND [options]`, what the wrappers and shell scripts call."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMAND_MODULES:
        names = ", ".join(COMMAND_MODULES)
        print(f"daskhpc: error: give a command, one of: {names}", file=sys.stderr)
        return 2
    return run_command(args[0], args[1:])


def start_main() -> int:
    return run_command("start", sys.argv[1:])


def stop_main() -> int:
    return run_command("stop", sys.argv[1:])


def status_main() -> int:
    return run_command("status", sys.argv[1:])


def doctor_main() -> int:
    return run_command("doctor", sys.argv[1:])
