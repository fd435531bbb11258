"""The container bed itself: a clean Debian machine with what the install proofs rely on."""

from __future__ import annotations

import subprocess

import pytest
import testinfra
from testbed.container import HOST_CA_DIR, USERS, Container, ContainerImage

pytestmark = pytest.mark.container


def test_fresh_machine_has_python_lmod_and_the_host_ca(fresh_container: Container) -> None:
    host = testinfra.get_host(fresh_container.hostspec())
    assert host.system_info.distribution == "debian"
    assert host.system_info.codename == "bookworm"
    for package in ("python3", "python3-venv", "ca-certificates", "lmod"):
        assert host.package(package).is_installed, package
    # HTTPS here goes through the host's CA: it must be in the container's bundle.
    for ca in HOST_CA_DIR.glob("*.crt"):
        assert host.file(f"/etc/ssl/certs/{ca.stem}.pem").exists, ca.name
    assert not host.package("python3-pip").is_installed, "a clean machine has no pip of its own"


@pytest.mark.parametrize("user", USERS)
def test_users_are_unprivileged_with_a_login_shell(fresh_container: Container, user: str) -> None:
    host = testinfra.get_host(fresh_container.hostspec(user))
    assert host.user().uid != 0
    assert host.user().home == f"/home/{user}"
    assert host.run("touch /usr/local/bin/x").rc != 0, f"{user} can write to /usr/local"
    assert fresh_container.exec("module --version", user=user).returncode == 0, "no Lmod"


def test_stop_removes_only_its_own_container(container_image: ContainerImage,
                                             fresh_container: Container) -> None:
    other = Container(container_image).start()
    assert other.name != fresh_container.name
    other.stop()
    exists = subprocess.run(["podman", "container", "exists", other.name])
    assert exists.returncode == 1, f"{other.name} still exists after stop()"
    assert fresh_container.exec("true").returncode == 0, "stop() touched another container"
