"""Placeholder client certificates: kernels read TLS files through current-tls at start, so it
must resolve before the user's first cluster. No cluster trusts their CA: they open nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from daskhpc import client_config, paths
from daskhpc.files import make_shared_read_only
from daskhpc.install.steps.base import Context, Step

ENSURE_CLIENT_TLS = "from daskhpc.cluster.tls.current import ensure_current; ensure_current()"
MAKE_TLS_IN = ("import sys, pathlib; from daskhpc.cluster.tls.material import "
               "create_standalone_tls; "
               "create_standalone_tls(pathlib.Path(sys.argv[1]), ('client',))")


@dataclass(frozen=True)
class ClientTls(Step):
    """A user install: path is the user's current-tls link. Records the placeholder folder
    (tree) and the link (file)."""

    kind: ClassVar[str] = "client-tls"

    def is_current(self, context: Context) -> bool:
        return Path(self.path).exists()

    def apply(self, context: Context) -> None:
        context.ensure_dir(Path(self.path).parent)
        context.manifest.record("tree", paths.placeholder_tls_dir())
        context.manifest.record("file", self.path)
        context.run([str(context.options.env_python), "-c", ENSURE_CLIENT_TLS],
                    "making placeholder client certificates")


@dataclass(frozen=True)
class SharedClientTls(Step):
    """A --system install: one set inside the environment that every user's kernel reads.
    Records nothing: it goes with the environment."""

    kind: ClassVar[str] = "shared-client-tls"

    def inside_env(self, env_link: Path) -> bool:
        return Path(self.path).is_relative_to(env_link)

    def is_current(self, context: Context) -> bool:
        return (Path(self.path) / client_config.CA_FILE).exists()

    def apply(self, context: Context) -> None:
        context.run([str(context.options.env_python), "-c", MAKE_TLS_IN, self.path],
                    "making shared placeholder client certificates")
        make_shared_read_only(Path(self.path))
