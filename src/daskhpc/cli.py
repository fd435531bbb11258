"""Command line: parse the arguments and hand over to the command's module. Nothing else.

Standard library only, and command modules are imported lazily: `setup` runs in the bootstrap
Python before any environment exists, and `--help` must stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, NoReturn, Optional, Sequence

from daskhpc import __version__
from daskhpc.errors import DaskhpcError

# command -> module with `run(args: argparse.Namespace) -> int`
COMMAND_MODULES = {
    "setup": "daskhpc.install.setup_command",
    "remove": "daskhpc.install.remove_command",
    "start": "daskhpc.cluster.start",
    "stop": "daskhpc.cluster.stop",
    "status": "daskhpc.cluster.status",
    "doctor": "daskhpc.doctor.command",
}


class _OneLineParser(argparse.ArgumentParser):
    """Bad input gets one line saying what is wrong and where to look, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(convert: Callable[[str], float], minimum: float, inclusive: bool,
            noun: str, bound: str) -> Callable[[str], float]:
    """An argparse type: a number of the given kind, checked against its lower bound."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        # Written so that nan fails too: every comparison with nan is false.
        if not (value >= minimum if inclusive else value > minimum) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound}")
        return value

    return parse


_positive_int = _number(int, 1, True, "a whole number", "1 or more")
_non_negative_int = _number(int, 0, True, "a whole number", "0 or more")
_positive_float = _number(float, 0, False, "a number", "more than 0")


def _add_setup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=["auto", "conda", "micromamba", "mamba", "rattler", "venv"],
        default="auto",
        help="how to build the environment: conda (through micromamba, mamba or conda when "
        "found, else rattler), venv; default auto: a conda tool if found, else rattler if the "
        "conda channels answer, else venv",
    )
    parser.add_argument(
        "--channel", action="append", default=[], metavar="URL",
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


def _add_start_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--launcher",
        choices=["auto", "local", "ssh", "mpi", "srun"],
        default="auto",
        help="how to start workers on the nodes (default: auto, and says why)",
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
        "--timeout", type=_positive_float, default=120.0,
        help="seconds to wait for the workers (default: 120)",
    )
    parser.add_argument("--no-nanny", action="store_true", help="workers without a nanny process")
    parser.add_argument("--no-tls", action="store_true", help="plain tcp:// (debugging only)")
    parser.add_argument(
        "--jobs", type=_non_negative_int, default=0,
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
    parser = _OneLineParser(prog=PROGRAM_NAMES[command], description=summary)
    parser.add_argument("--version", action="version", version=f"daskhpc {__version__}")
    add_arguments(parser)
    return parser


def run_command(command: str, argv: Sequence[str]) -> int:
    args = build_parser(command).parse_args(list(argv))
    try:
        module = importlib.import_module(COMMAND_MODULES[command])
        return int(module.run(args))
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
