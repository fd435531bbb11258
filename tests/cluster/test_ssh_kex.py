"""The ssh launcher's key exchange: curve25519 first only where OpenSSH would pick sntrup761,
whose key generation costs the starting node about 75 ms of CPU per node (bench/README.md).
Runs the real ssh client's `-G` (prints the effective configuration, connects nowhere)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from daskhpc.cluster.launchers.ssh import FAST_KEX, kex_options

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client")


def effective(*command: str) -> list[str]:
    out = subprocess.run([*command, "-G", "node.example"], capture_output=True, text=True,
                         check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("kexalgorithms "))
    return line.split(" ", 1)[1].split(",")


def test_curve25519_moves_first_only_where_sntrup761_leads():
    default = effective("ssh")
    options = kex_options(("ssh",), "node.example")
    if default[0].startswith("sntrup761"):
        reordered = [FAST_KEX, *(name for name in default if name != FAST_KEX)]
        assert options == ("-o", "KexAlgorithms=" + ",".join(reordered))
        assert effective("ssh", *options)[0] == FAST_KEX
    else:  # OpenSSH before 9.0 or from 9.9 (mlkem768): its own choice is kept
        assert options == ()


@pytest.mark.parametrize("chosen", ["curve25519-sha256",
                                    "sntrup761x25519-sha512@openssh.com",
                                    "ecdh-sha2-nistp256,sntrup761x25519-sha512@openssh.com"])
def test_a_configured_key_exchange_is_kept(chosen: str):
    """A site's or user's own list wins; one without curve25519 gets nothing added."""
    assert kex_options(("ssh", "-o", f"KexAlgorithms={chosen}"), "node.example") == ()


def test_no_options_when_the_client_cannot_say():
    assert kex_options(("/nonexistent/ssh",), "node.example") == ()
