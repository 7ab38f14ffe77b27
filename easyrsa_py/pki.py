"""The on-disk layout of an easy-rsa PKI, and loading its CA.

Paths follow easy-rsa 3.2.7. Folders that only older versions made
(3.1's `renewed/certs_by_serial` and friends) are named here too so the
commands can find and keep them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PublicKeyTypes,
)

from easyrsa_py.certificate import CertificateFile, read_certificate
from easyrsa_py.errors import (
    CANotFound,
    CryptoMismatch,
    FileFormatError,
    PassphraseError,
    PKINotFound,
)
from easyrsa_py.passphrase import prompt_passphrase, read_passphrase

logger = logging.getLogger(__name__)

_NEXT_STEP = "Run 'easyrsa' without a command for usage and command help."


@dataclass(frozen=True)
class PKILayout:
    """Paths of one PKI folder."""

    root: Path

    @property
    def index(self) -> Path:
        return self.root / "index.txt"

    @property
    def index_attr(self) -> Path:
        return self.root / "index.txt.attr"

    @property
    def serial(self) -> Path:
        return self.root / "serial"

    @property
    def crl_pem(self) -> Path:
        return self.root / "crl.pem"

    @property
    def crl_der(self) -> Path:
        return self.root / "crl.der"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "private" / "ca.key"

    def issued_cert(self, name: str) -> Path:
        return self.root / "issued" / f"{name}.crt"

    def expired_cert(self, name: str) -> Path:
        return self.root / "expired" / f"{name}.crt"

    def renewed_cert(self, name: str) -> Path:
        return self.root / "renewed" / "issued" / f"{name}.crt"

    def private_key(self, name: str) -> Path:
        return self.root / "private" / f"{name}.key"

    def request(self, name: str) -> Path:
        return self.root / "reqs" / f"{name}.req"

    def inline_files(self, name: str) -> tuple[Path, Path]:
        return (
            self.root / "inline" / f"{name}.inline",
            self.root / "inline" / "private" / f"{name}.inline",
        )

    def pkcs_files(self, name: str) -> list[Path]:
        """PKCS exports of `name` that revocation deletes, as easy-rsa 3.2.7 does."""
        return [
            self.root / folder / f"{name}.{suffix}"
            for suffix in ("p12", "p7b", "p8", "p1")
            for folder in ("issued", "private")
        ]

    @property
    def revoked_dir(self) -> Path:
        return self.root / "revoked"

    def revoked_cert(self, serial_hex: str) -> Path:
        return self.revoked_dir / "certs_by_serial" / f"{serial_hex}.crt"

    def revoked_key(self, serial_hex: str) -> Path:
        return self.revoked_dir / "private_by_serial" / f"{serial_hex}.key"

    def revoked_request(self, serial_hex: str) -> Path:
        return self.revoked_dir / "reqs_by_serial" / f"{serial_hex}.req"


def require_pki(root: Path) -> PKILayout:
    """Return the layout of `root`, or raise PKINotFound as easy-rsa's checks do."""
    if not root.is_dir():
        raise PKINotFound(
            root,
            f"The PKI folder {root} does not exist. Set it with --pki, EASYRSA_PKI or "
            f"the vars file, or create one with 'init-pki'.\n{_NEXT_STEP}",
        )
    for folder in ("private", "reqs"):
        if not (root / folder).is_dir():
            raise PKINotFound(
                root / folder,
                f"The PKI {root} has no '{folder}' folder, so it is not an initialised PKI. "
                f"Create one with 'init-pki'.\n{_NEXT_STEP}",
            )
    return PKILayout(root)


def require_ca(layout: PKILayout) -> None:
    """Raise CANotFound unless the CA files and folders easy-rsa expects exist."""
    for relative in ("ca.crt", "private/ca.key", "index.txt", "serial"):
        path = layout.root / relative
        if not (path.is_file() or path.is_fifo()):
            raise CANotFound(
                path,
                f"The CA file {path} is missing. Create the CA with 'build-ca'.\n{_NEXT_STEP}",
            )
    for relative in ("issued", "certs_by_serial"):
        path = layout.root / relative
        if not path.is_dir():
            raise CANotFound(
                path,
                f"The CA folder {path} is missing. Create the CA with 'build-ca'.\n{_NEXT_STEP}",
            )


def load_ca_certificate(layout: PKILayout) -> CertificateFile:
    return read_certificate(layout.ca_cert)


def load_ca_key(
    layout: PKILayout, passin: str | None, certificate: CertificateFile
) -> CertificateIssuerPrivateKeyTypes:
    """Load private/ca.key, asking for its passphrase when it is encrypted.

    The key must match `certificate`, or CryptoMismatch is raised before
    anything is signed.
    """
    path = layout.ca_key
    data = path.read_bytes()
    password = read_passphrase(passin) if passin else None
    try:
        key = _parse_key(data, password)
    except TypeError:
        # The key is encrypted and no passphrase source was given, or the
        # key is not encrypted but one was: OpenSSL ignores the latter.
        if password is not None:
            key = _load_key(path, data, None)
        else:
            key = _load_key(path, data, prompt_passphrase(path))
    except ValueError:
        if password is None:
            raise FileFormatError(path, None, "not a valid PEM private key.") from None
        raise PassphraseError(
            f"The passphrase does not decrypt the CA key {path}. Check --passin or EASYRSA_PASSIN."
        ) from None
    _check_key_matches(key, certificate, path, layout.ca_cert)
    return key  # type: ignore[return-value]


def _parse_key(data: bytes, password: bytes | None) -> CertificateIssuerPrivateKeyTypes:
    # The RSA consistency check costs about 45 ms for a 2048-bit key, as
    # much as the rest of a revoke. It is skipped because nothing signed
    # with the CA key leaves easyrsa_py unverified: build_crl() checks every
    # CRL's signature with ca.crt, which also catches the faulty signatures
    # the check exists to prevent.
    return serialization.load_pem_private_key(  # type: ignore[return-value]
        data, password=password, unsafe_skip_rsa_key_validation=True
    )


# The starts of the messages cryptography 48 raises for a PKCS#8 or a
# traditional PEM key encrypted with a cipher it lacks, such as Camellia,
# ARIA or SM4, which OpenSSL 3.0 can write.
_UNKNOWN_CIPHER_MESSAGES = ("Unknown key encryption algorithm", "Key encrypted with unknown cipher")


def raise_if_unknown_cipher(path: Path, error: Exception) -> None:
    """Raise FileFormatError when `error` reports an unsupported key cipher rather than a wrong passphrase."""
    if str(error).startswith(_UNKNOWN_CIPHER_MESSAGES):
        raise FileFormatError(
            path,
            None,
            f"it is encrypted with a cipher that easyrsa_py cannot decrypt ({str(error).rstrip('.')}). "
            "Re-encrypt it with AES, for example with 'openssl pkey -aes256'.",
        ) from None


def _load_key(path: Path, data: bytes, password: bytes | None) -> CertificateIssuerPrivateKeyTypes:
    try:
        return _parse_key(data, password)
    except (TypeError, ValueError) as error:
        raise_if_unknown_cipher(path, error)
        raise PassphraseError(
            f"The passphrase does not decrypt the CA key {path}. Check --passin or EASYRSA_PASSIN."
        ) from None


def certificate_public_key(certificate: CertificateFile, path: Path) -> PublicKeyTypes:
    """Load the certificate's public key, raising FileFormatError when it cannot be read."""
    try:
        return certificate.public_key()
    except ValueError as error:
        raise FileFormatError(path, None, f"its public key cannot be read ({error}).") from None


def _check_key_matches(
    key: CertificateIssuerPrivateKeyTypes,
    certificate: CertificateFile,
    key_path: Path,
    cert_path: Path,
) -> None:
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    certificate_key = certificate_public_key(certificate, cert_path)
    if key.public_key().public_bytes(der, raw) != certificate_key.public_bytes(der, raw):
        raise CryptoMismatch(
            f"The CA key {key_path} does not match the CA certificate {cert_path}. "
            "Restore the key that belongs to this CA."
        )
