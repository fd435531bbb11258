"""A fresh Debian machine for install proofs: a debootstrapped image run under rootful podman.

The image is built from scratch (debootstrap --variant=minbase, then `podman import`) with what a
clean HPC login node would have: python3, python3-venv, ca-certificates, Lmod, and two
unprivileged users. It is cached in podman's storage under a tag that hashes the recipe, so a
machine builds it once and later sessions (and every test of a session) reuse it. Containers run
with the host's network, so the installer reaches PyPI the same way the host does.

Three fixes these machines need (see shared/testbed.md): runc instead of crun, explicit ulimits
within the host's hard limits, and the host's intercepting CA trusted inside the image.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import io
import json
import os
import resource
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

SUITE = "bookworm"
# What a clean login node offers before daskhpc: Python with venv, CA bundle, Lmod (issue 8),
# procps so testinfra and the tests can list processes.
PACKAGES = ("python3", "python3-venv", "ca-certificates", "lmod", "procps")
USERS = ("alice", "bob")  # unprivileged accounts baked into the image
INSTALL_TARGETS = ("/home", "/root", "/opt")  # where user and admin installs write
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
IMAGE_REPOSITORY = "localhost/daskhpc-testbed"
BUILD_LOCK = Path("/var/tmp/daskhpc-testbed-image.lock")  # one build at a time per machine
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Files of a checkout that are not part of the project a user would download.
NOT_SHIPPED = (".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "bench/.work")


# Runs inside the container (its python3): every path under the roots with type, mode, owner and
# content hash (or link target), so two snapshots show exactly what changed.
_TREE_SCRIPT = """
import hashlib, json, os, stat, sys
roots = json.loads(sys.argv[1])
def describe(path):
    info = os.lstat(path)
    text = f"{stat.filemode(info.st_mode)} {info.st_uid}:{info.st_gid}"
    if stat.S_ISLNK(info.st_mode):
        return f"{text} -> {os.readlink(path)}"
    if stat.S_ISREG(info.st_mode):
        with open(path, "rb") as stream:
            return f"{text} {hashlib.file_digest(stream, 'sha256').hexdigest()}"
    return text
tree = {}
for root in roots:
    if not os.path.lexists(root):
        continue
    tree[root] = describe(root)
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            tree[os.path.join(top, name)] = describe(os.path.join(top, name))
json.dump(tree, sys.stdout)
"""


def missing_requirements() -> Optional[str]:
    """Why a container bed cannot be built here, or None when it can."""
    if os.geteuid() != 0:
        return "container tests need root (rootful podman and debootstrap)"
    for tool, package in (("podman", "podman"), ("runc", "runc"), ("debootstrap", "debootstrap")):
        if shutil.which(tool) is None:
            return f"container tests need {tool!r} on PATH (apt-get install {package})"
    return None


def _host_cas() -> list[Path]:
    return sorted(HOST_CA_DIR.glob("*.crt")) if HOST_CA_DIR.is_dir() else []


def debian_mirror() -> str:
    """The host's own Debian mirror: the one the network here lets through."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return DEFAULT_MIRROR


def _recipe_hash() -> str:
    """Changes whenever anything that goes into the image changes (recipe, packages, host CAs)."""
    recipe = [inspect.getsource(_build_rootfs), SUITE, *PACKAGES, *USERS, debian_mirror()]
    digest = hashlib.sha256("\n".join(recipe).encode())
    for ca in _host_cas():
        digest.update(ca.read_bytes())
    return digest.hexdigest()[:16]


def write_containers_conf(path: Path) -> Path:
    """runc (crun fails on hybrid cgroups here) and ulimits the host's hard limits allow."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    path.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc=32768:32768"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
    )
    return path


def _podman_env(conf: Path) -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def _podman(args: Sequence[str], conf: Path, timeout: float = 120) -> None:
    result = subprocess.run(["podman", *args], env=_podman_env(conf), capture_output=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:2])} failed: "
                           f"{result.stderr.decode(errors='replace').strip()}")
    return result


def _run(argv: Sequence[str], timeout: float = 120) -> None:
    """Run a build step; when it fails, say which and show the end of what it printed."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "LANG": "C.UTF-8",
                                 "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-2000:]
        raise RuntimeError(f"building the container image: {' '.join(argv[:3])} exited "
                           f"{result.returncode}:\n{output}")


def _build_rootfs(rootfs: Path) -> None:
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
          str(rootfs), debian_mirror()], timeout=900)
    for ca in _host_cas():
        shutil.copy2(ca, rootfs / "usr/local/share/ca-certificates" / ca.name)
    _run(["chroot", str(rootfs), "update-ca-certificates"])
    for user in USERS:
        _run(["chroot", str(rootfs), "useradd", "--create-home", "--shell", "/bin/bash", user])
    _run(["chroot", str(rootfs), "apt-get", "clean"])


def ensure_image(conf: Path) -> str:
    """The tag of the bed's image, built now unless podman already holds this recipe's image."""
    tag = f"{IMAGE_REPOSITORY}:{_recipe_hash()}"
    with BUILD_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel session waits, then reuses the image
        exists = subprocess.run(["podman", "image", "exists", tag], env=_podman_env(conf))
        if exists.returncode == 0:
            return tag
        # /var/tmp: debootstrap needs a filesystem without nodev/noexec, which /tmp may have.
        with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="daskhpc-rootfs-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            _build_rootfs(rootfs)
            archive = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."],
                                       stdout=subprocess.PIPE)
            try:
                subprocess.run(["podman", "import", "--change", "CMD=/bin/bash", "-", tag],
                               stdin=archive.stdout, check=True, capture_output=True,
                               env=_podman_env(conf), timeout=600)
            finally:
                if archive.stdout is not None:
                    archive.stdout.close()
                archive.wait()
        _remove_older_images(tag, conf)
    return tag


def _remove_older_images(current: str, conf: Path) -> None:
    """Images of earlier recipes (this bed's repository only): 240 MB each, never used again."""
    listed = subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}",
                             "--filter", f"reference={IMAGE_REPOSITORY}"],
                            env=_podman_env(conf), capture_output=True, text=True)
    for image in set(listed.stdout.split()) - {current}:
        # A container another session still runs keeps its image: podman refuses, that's fine.
        subprocess.run(["podman", "rmi", image], env=_podman_env(conf), capture_output=True)


def project_files(repo: Path) -> bytes:
    """The project as a user downloads it, as a tar archive (no .git, .venv or caches)."""
    buffer = io.BytesIO()

    def shipped(info: tarfile.TarInfo) -> Optional[tarfile.TarInfo]:
        parts = Path(info.name).parts
        relative = "/".join(parts[1:])
        if any(part in NOT_SHIPPED for part in parts) or relative in NOT_SHIPPED:
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(repo, arcname="daskhpc", filter=shipped)
    return buffer.getvalue()


@dataclass(frozen=True)
class ContainerImage:
    tag: str
    conf: Path  # containers.conf every podman call of the bed uses


def tree_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What differs between two file_tree() snapshots, one readable line per path."""
    lines = [f"+ {path}  {after[path]}" for path in sorted(after.keys() - before.keys())]
    lines += [f"- {path}  {before[path]}" for path in sorted(before.keys() - after.keys())]
    lines += [f"~ {path}  {before[path]} => {after[path]}"
              for path in sorted(before.keys() & after.keys()) if before[path] != after[path]]
    return lines


class Container:
    """One running container of the bed's image; removed (only it) on stop()."""

    def __init__(self, image: ContainerImage) -> None:
        self.image = image.tag
        self.conf = image.conf
        self.name = f"daskhpc-tb-{uuid.uuid4().hex[:10]}"
        self._started = False

    def start(self) -> Container:
        # --init reaps orphans like a real init; --network host: PyPI through the host's route.
        # Homes and /opt (where installs and uv's cache go) on tmpfs, seeded from the image:
        # deleting an env's ~60,000 files takes ~90 s on these machines' disks, under 1 s there.
        tmpfs = [arg for path in INSTALL_TARGETS
                 for arg in ("--tmpfs", f"{path}:rw,exec,nosuid,nodev,mode=755,size=4g")]
        _podman(["run", "-d", "--init", "--name", self.name, "--network", "host", *tmpfs,
                 *self._site_tls(), self.image, "sleep", "infinity"], self.conf)
        self._started = True
        return self

    @staticmethod
    def _site_tls() -> list[str]:
        """The host's own TLS setting for every process (SSL_CERT_FILE: how this machine makes
        tools trust its intercepting CA), mirrored so the container is configured like it."""
        bundle = os.environ.get("SSL_CERT_FILE")
        return ["--env", f"SSL_CERT_FILE={bundle}"] if bundle else []

    def stop(self) -> None:
        if self._started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                _podman(["rm", "--force", "--time", "0", self.name], self.conf)
            self._started = False

    def hostspec(self, user: Optional[str] = None) -> str:
        """testinfra's name for this container, as root or as user."""
        return f"podman://{user}@{self.name}" if user else f"podman://{self.name}"

    def exec(self, script: str, user: str = "root",
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a shell script as user in a login shell (profile, PATH, Lmod). Never raises."""
        argv = ["podman", "exec", "--user", user, "--workdir", self.home(user), self.name,
                "bash", "-lc", script]
        return subprocess.run(argv, env=_podman_env(self.conf), capture_output=True, text=True,
                              timeout=timeout)

    def check(self, script: str, user: str = "root", timeout: float = 600) -> str:
        """exec() that fails with the command's output when it does not succeed."""
        result = self.exec(script, user=user, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(
                f"in {self.name} as {user}: {script!r} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
            )
        return result.stdout

    @staticmethod
    def home(user: str) -> str:
        return "/root" if user == "root" else f"/home/{user}"

    def copy_project(self, repo: Path, user: str) -> str:
        """Unpack the project into user's home as user; returns the copy's path."""
        home = self.home(user)
        subprocess.run(["podman", "exec", "-i", "--user", user, self.name, "tar", "-x", "-C",
                        home], input=project_files(repo), env=_podman_env(self.conf),
                       check=True, capture_output=True, timeout=120)
        return f"{home}/daskhpc"

    def write_file(self, path: str, text: str, user: str = "root", mode: int = 0o644) -> None:
        """Create path (and its missing parents) with text, owned by user."""
        quoted = shlex.quote(path)
        self.check(f"mkdir -p \"$(dirname {quoted})\" && printf %s {shlex.quote(text)} > {quoted}"
                   f" && chmod {mode:o} {quoted}", user=user)

    def file_tree(self, roots: Sequence[str]) -> dict[str, str]:
        """Snapshot of everything under roots (read as root); compare two with tree_changes."""
        result = subprocess.run(
            ["podman", "exec", self.name, "python3", "-c", _TREE_SCRIPT, json.dumps(list(roots))],
            env=_podman_env(self.conf), capture_output=True, text=True, timeout=300, check=True,
        )
        return dict(json.loads(result.stdout))

    def client_computes(self, python: str, user: str) -> str:
        """The site notebooks' line on python as user: connect through the default scheduler
        file (by its full path, as they do), sum 0..100 on the cluster. Bounded by `timeout`,
        so a hanging client fails instead of stalling the run."""
        script = (
            "from dask.distributed import Client\n"
            f"client = Client(scheduler_file='{self.home(user)}/dask-scheduler.json', timeout=60)\n"
            "print(client.submit(sum, range(101)).result())\n"
            "client.close()\n"
        )
        output = self.check(f"timeout 120 {python} -c {shlex.quote(script)}", user=user,
                            timeout=180)
        return output.strip().splitlines()[-1] if output.strip() else ""

    def sys_prefix(self, python: str, user: str) -> str:
        """The environment an interpreter runs in (a venv's python is a link to the base one,
        so its resolved path says nothing)."""
        return self.check(f"{shlex.quote(python)} -c 'import sys; print(sys.prefix)'",
                          user=user).strip()
