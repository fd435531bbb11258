"""Fixtures for the install proofs: a fresh Debian container per test module (issues 7 and 8)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from testbed.container import (
    Container,
    ContainerImage,
    ensure_image,
    missing_requirements,
    write_containers_conf,
)


@pytest.fixture(scope="session")
def container_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerImage]:
    """The bed's image: built on the first use on this machine, then reused from podman."""
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    conf = write_containers_conf(tmp_path_factory.mktemp("podman") / "containers.conf")
    with pytest.MonkeyPatch.context() as patch:
        # testinfra's podman backend runs a plain `podman exec`: same runtime and limits.
        patch.setenv("CONTAINERS_CONF", str(conf))
        yield ContainerImage(tag=ensure_image(conf), conf=conf)


@pytest.fixture(scope="module")
def fresh_container(container_image: ContainerImage) -> Iterator[Container]:
    """A clean machine for one test module; removed (only this container) afterwards."""
    container = Container(container_image).start()
    try:
        yield container
    finally:
        container.stop()
