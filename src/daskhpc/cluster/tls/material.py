"""TLS material: CAs, certificates signed by them, and the private files that hold them.

Everything here is mechanism; which CA signs what, for how long, and when it is renewed is
daskhpc.cluster.tls.user's. A directory of TLS files (TLSFiles) holds the CA certificate its
owner trusts (`ca.pem`) and one certificate and key per role (scheduler, worker, client).

Remote nodes read the same directories over the shared filesystem; only paths travel on
command lines (`ps` shows them to everyone), never key material.
"""

from __future__ import annotations

import datetime
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from daskhpc.client_config import CA_FILE
from daskhpc.client_config import cert_file_names as _file_names
from daskhpc.errors import DaskhpcError
from daskhpc.files import write_private

if TYPE_CHECKING:
    from cryptography import x509
    from distributed import Security

ROLES = ("scheduler", "worker", "client")
CA_KEY_FILE = "ca-key.pem"
# Nodes' clocks differ a little; a certificate must not be "not yet valid" on any of them.
CLOCK_SKEW = datetime.timedelta(minutes=10)
# How long the certificates of a standalone CA (placeholders, trials, tests) are valid.
STANDALONE_VALIDITY = datetime.timedelta(days=30)


def cert_file_names(role: str) -> tuple[str, str]:
    """(certificate, private key) file names of a role inside a TLS directory."""
    _check_role(role)
    return _file_names(role)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown TLS role {role!r}; expected one of {', '.join(ROLES)}")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@dataclass(frozen=True)
class TLSFiles:
    """A directory of TLS files: where they are and how each component is told about them."""

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


@dataclass(frozen=True)
class Authority:
    """A CA in memory: its certificate and its private key (an EC key of cryptography's)."""

    cert: x509.Certificate
    key: Any

    @property
    def not_after(self) -> datetime.datetime:
        return self.cert.not_valid_after_utc

    def cert_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.cert.public_bytes(serialization.Encoding.PEM)


def new_authority(name: str, not_after: datetime.datetime) -> Authority:
    """A fresh CA (EC P-256) named `name`, valid from now (less the clock skew) to not_after."""
    # Imported here so that importing this module (for paths and cli_args) stays cheap.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"{name} {_random_hex(4)}")
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now() - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


def save_authority(authority: Authority, directory: Path) -> None:
    """Write the CA's key and certificate into `directory` (made 0700), each 0600 from the
    start. The key first: a certificate on disk always has its key beside it."""
    make_private_directory(directory)
    write_private(directory / CA_KEY_FILE, _key_pem(authority.key))
    write_private(directory / CA_FILE, authority.cert_pem())


def load_authority(directory: Path) -> Optional[Authority]:
    """The CA saved in `directory`, or None when there is none (or it is unreadable, or its
    certificate and key do not belong together). Refuses a CA others could have read."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key_path, cert_path = directory / CA_KEY_FILE, directory / CA_FILE
    if not (key_path.is_file() and cert_path.is_file()):
        return None
    _refuse_exposed([directory, key_path, cert_path],
                    f"remove {directory} (with no cluster of yours running) and start again: "
                    "a new CA is made")
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return None
    if cert.public_key() != key.public_key():
        return None
    return Authority(cert, key)


def issue(authority: Authority, directory: Path, roles: tuple[str, ...],
          not_after: datetime.datetime, label: str) -> TLSFiles:
    """A fresh key and a certificate signed by `authority` for each role, and the CA's
    certificate (what the holder trusts), in `directory` (made 0700; files 0600). `label`
    names what they are for (a cluster id) in the certificates, for whoever reads them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    make_private_directory(directory)
    write_private(directory / CA_FILE, authority.cert_pem())
    # Every role is both TLS server and client: workers listen for peers and the scheduler,
    # and everyone dials out; hostnames are not checked by distributed, the CA is.
    usages = x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    ca_ski = authority.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    for role in roles:
        key = ec.generate_private_key(ec.SECP256R1())
        common_name = f"daskhpc-{role}"
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, label),
            ]))
            .issuer_name(authority.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now() - CLOCK_SKEW)
            .not_valid_after(min(not_after, authority.not_after))  # never beyond its CA
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
            .sign(authority.key, hashes.SHA256())
        )
        cert_name, key_name = cert_file_names(role)
        write_private(directory / key_name, _key_pem(key))
        write_private(directory / cert_name, cert.public_bytes(_pem()))
    return TLSFiles(directory)


def create_standalone_tls(directory: Path, roles: tuple[str, ...] = ROLES) -> TLSFiles:
    """Certificates of a CA of their own whose key is never written: they trust only each
    other, and nobody can mint more (placeholders no cluster trusts, the doctor's trial)."""
    authority = new_authority("daskhpc standalone CA", now() + STANDALONE_VALIDITY)
    return issue(authority, directory, roles, authority.not_after, "standalone")


def not_valid_after(cert_path: Path) -> Optional[datetime.datetime]:
    """When the certificate in cert_path expires, or None if it cannot be read."""
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(cert_path.read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return None


def load_tls(directory: Path, role: str) -> TLSFiles:
    """A role's TLS files; refuses missing or exposed files, as ssh does."""
    tls = TLSFiles(directory)
    needed = [tls.ca_file, *tls.cert(role)]
    missing = [path.name for path in needed if not path.is_file()]
    if missing:
        raise DaskhpcError(
            f"TLS files missing in {directory}: {', '.join(missing)}; "
            "stop this cluster and start a new one (or it was started with --no-tls)"
        )
    _refuse_exposed([directory, *needed], "stop this cluster and start a new one")
    return tls


def _refuse_exposed(files: list[Path], remedy: str) -> None:
    for path in files:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise DaskhpcError(
                f"{path} is accessible to other users (mode {mode:o}), its keys may have been "
                f"read; {remedy}"
            )


def _pem() -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.PEM


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),  # dask's --tls-key takes no passphrase
    ))


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


def make_private_directory(directory: Path) -> None:
    """`directory` exists, is the user's own, and only they may enter it (0700)."""
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
