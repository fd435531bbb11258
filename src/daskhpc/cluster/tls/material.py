"""TLS for one cluster: a fresh CA and mutually authenticated certificates, private on disk.

Each cluster gets its own CA, so certificates of one cluster (or of another user) are refused by
every other cluster. The CA's private key is never written: once the three certificates are
signed nobody, not even the user, can mint more for this cluster.

Remote nodes read the same directory over the shared filesystem; only paths travel on command
lines (`ps` shows them to everyone), never key material.
"""

from __future__ import annotations

import datetime
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from daskhpc.client_config import CA_FILE
from daskhpc.client_config import cert_file_names as _file_names
from daskhpc.errors import DaskhpcError
from daskhpc.files import write_private

if TYPE_CHECKING:
    from cryptography import x509
    from distributed import Security

ROLES = ("scheduler", "worker", "client")

# Long enough for the longest batch allocations sites grant, short enough that a leaked
# certificate of a long-gone cluster is worthless soon (and its CA is gone with the cluster).
DEFAULT_VALIDITY = datetime.timedelta(days=30)
# Nodes' clocks differ a little; a certificate must not be "not yet valid" on any of them.
CLOCK_SKEW = datetime.timedelta(minutes=10)


def cert_file_names(role: str) -> tuple[str, str]:
    """(certificate, private key) file names of a role inside the cluster's TLS directory."""
    _check_role(role)
    return _file_names(role)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown TLS role {role!r}; expected one of {', '.join(ROLES)}")


@dataclass(frozen=True)
class ClusterTLS:
    """The TLS files of one cluster: where they are and how each component is told about them."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / CA_FILE

    def cert(self, role: str) -> tuple[Path, Path]:
        cert_name, key_name = cert_file_names(role)
        return self.directory / cert_name, self.directory / key_name

    def cli_args(self, role: str) -> list[str]:
        """Arguments for `dask scheduler` / `dask worker`: paths only, nothing secret."""
        cert_path, key_path = self.cert(role)
        return [
            "--tls-ca-file", str(self.ca_file),
            "--tls-cert", str(cert_path),
            "--tls-key", str(key_path),
        ]

    def security(self, role: str = "client") -> Security:
        """A distributed.Security for `role` that refuses anything but mutual TLS."""
        # Imported here: distributed takes ~0.4 s to import and most callers only need paths.
        from distributed import Security

        cert_path, key_path = self.cert(role)
        return Security(
            require_encryption=True,
            tls_ca_file=str(self.ca_file),
            **{f"tls_{role}_cert": str(cert_path), f"tls_{role}_key": str(key_path)},
        )


def create_cluster_tls(
    directory: Path, valid_for: datetime.timedelta = DEFAULT_VALIDITY
) -> ClusterTLS:
    """Make a fresh CA and scheduler/worker/client certificates in `directory` (made 0700)."""
    # Imported here so that importing this module (for paths and cli_args) stays cheap.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    _make_private_directory(directory)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - CLOCK_SKEW, now + valid_for
    cluster_tag = _random_hex(8)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"daskhpc CA {cluster_tag}")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_private(directory / CA_FILE, ca_cert.public_bytes(serialization.Encoding.PEM))

    # Every role is both TLS server and client: workers listen for peers and the scheduler,
    # and everyone dials out; hostnames are not checked by distributed, the CA is.
    usages = x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        common_name = f"daskhpc-{role}"
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, cluster_tag),
            ]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(usages, critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        cert_name, key_name = cert_file_names(role)
        write_private(
            directory / key_name,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),  # dask's --tls-key takes no passphrase
            ),
        )
        write_private(directory / cert_name, cert.public_bytes(serialization.Encoding.PEM))
    return ClusterTLS(directory)


def load_cluster_tls(directory: Path) -> ClusterTLS:
    """The TLS files of an existing cluster; refuses missing or exposed files, as ssh does."""
    tls = ClusterTLS(directory)
    needed = [tls.ca_file, *(path for role in ROLES for path in tls.cert(role))]
    missing = [path.name for path in needed if not path.is_file()]
    if missing:
        raise DaskhpcError(
            f"TLS files missing in {directory}: {', '.join(missing)}; "
            "stop this cluster and start a new one (or it was started with --no-tls)"
        )
    for path in (directory, *needed):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise DaskhpcError(
                f"{path} is accessible to other users (mode {mode:o}); "
                "stop this cluster and start a new one, its keys may have been read"
            )
    return tls


def _key_usage(ca: bool) -> x509.KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _make_private_directory(directory: Path) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        info = directory.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise DaskhpcError(
                f"{directory} exists but is not a directory of yours; remove it and retry"
            ) from None
    # mkdir's mode is filtered by the umask (which can only remove bits); make it exact.
    os.chmod(directory, 0o700)


def _random_hex(size: int) -> str:
    # os.urandom, as `secrets` does, without importing `secrets` (random, hashlib: ~20 ms) into
    # every node agent that only needs cli_args.
    return os.urandom(size).hex()
