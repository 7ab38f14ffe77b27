"""verify-cert (and easy-rsa 3.1's `verify`): check that issued/NAME.crt was signed by ca.crt.

easy-rsa 3.2.7 runs `openssl verify -CAfile ca.crt issued/NAME.crt`,
prints its output, then a notice with the status GOOD or FAILED. It exits 1
on failure only in batch mode (--batch, or the word `batch` after the
name), so an interactive run always exits 0. The checks here are the ones
that `openssl verify` makes for a chain of one certificate and one trusted
CA, in its order, with its error numbers and texts (OpenSSL 3.0):

- the issuer is ca.crt: names match and authorityKeyIdentifier agrees (20);
- ca.crt is within its validity dates (9 or 10 at depth 1);
- the signature verifies with the CA's public key (7);
- the certificate is within its validity dates (9 or 10 at depth 0).

A certificate that is itself self-signed, and is not ca.crt, fails with 18.
An expired or self-signed certificate does not stop the checks, so one run
can report several errors, as `openssl verify` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from easyrsa_py.certificate import read_certificate
from easyrsa_py.errors import CertificateNotFound, FileFormatError, UsageError
from easyrsa_py.revoke import check_file_name_base

if TYPE_CHECKING:
    from cryptography import x509

    from easyrsa_py.commands import Context

logger = logging.getLogger(__name__)

# X509_V_ERR_* numbers and the texts that OpenSSL 3.0's X509_verify_cert_error_string returns.
CERT_SIGNATURE_FAILURE = (7, "certificate signature failure")
CERT_NOT_YET_VALID = (9, "certificate is not yet valid")
CERT_HAS_EXPIRED = (10, "certificate has expired")
DEPTH_ZERO_SELF_SIGNED = (18, "self-signed certificate")
UNABLE_TO_GET_ISSUER = (20, "unable to get local issuer certificate")
# The `openssl verify` command reports these and goes on checking.
CONTINUABLE = frozenset({CERT_HAS_EXPIRED[0], DEPTH_ZERO_SELF_SIGNED[0]})


@dataclass(frozen=True)
class VerifyFailure:
    """One failed check, as `openssl verify` reports it."""

    code: int
    text: str
    depth: int  # 0 for the certificate, 1 for the CA
    subject: str  # the failing certificate's subject, in OpenSSL's one-line form


def verify_cert(context: Context, arguments: list[str]) -> int:
    """Handle `verify-cert NAME [batch]` and return the exit code easy-rsa 3.2.7 uses."""
    if not arguments or not arguments[0]:
        raise UsageError(f"Missing certificate name: usage is '{context.command_name} NAME'.")
    name, *options = arguments
    check_file_name_base(name)
    batch = context.settings.batch
    for option in options:
        if option == "batch":
            batch = True
        else:
            context.console.warn(f"Ignoring unknown option '{option}' of '{context.command_name}'.")

    layout = context.layout
    path = layout.issued_cert(name)
    if not path.is_file():
        raise CertificateNotFound(path, f"No certificate at {path}. Check the name of the certificate in issued/.")
    failures = check_certificate(path, layout.ca_cert)
    _print_openssl_result(context, path, failures)
    status = "FAILED" if failures else "GOOD"
    # The two field labels are kept as easy-rsa prints them, because scripts match them.
    context.console.notice(f"  Certificate name:    {name}\n  Verification status: {status}")
    if failures and batch:
        return 1
    return 0


def _print_openssl_result(context: Context, path: Path, failures: list[VerifyFailure]) -> None:
    # easy-rsa prints what `openssl verify` prints: "PATH: OK" on stdout, or
    # each failure's subject and error on stderr. --silent-ssl hides only stdout.
    if not failures:
        if not context.settings.raw.get("EASYRSA_SILENT_SSL"):
            context.console.output(f"{path}: OK")
        return
    stderr = context.console.stderr
    for failure in failures:
        stderr.write(f"{failure.subject}\nerror {failure.code} at {failure.depth} depth lookup: {failure.text}\n")
    stderr.write(f"error {path}: verification failed\n")
    stderr.flush()


def check_certificate(path: Path, ca_path: Path, now: datetime | None = None) -> list[VerifyFailure]:
    """Return the failures `openssl verify` reports for `path` against `ca_path`, or [] when it passes.

    Like the `openssl verify` command, the checks go on after an expired
    certificate or a self-signed one, and stop at any other failure.
    Raises FileFormatError when either file is not a PEM certificate.
    """
    from cryptography import x509

    certificate = x509.load_der_x509_certificate(read_certificate(path).der)
    ca = x509.load_der_x509_certificate(read_certificate(ca_path).der)
    _check_names_parse(certificate, path)
    _check_names_parse(ca, ca_path)
    now = now or datetime.now(UTC)
    if certificate == ca:
        return _time_failures(ca, 0, now)
    if not _is_issued_by(certificate, ca):
        if certificate.issuer != certificate.subject:
            return [_failure(UNABLE_TO_GET_ISSUER, 0, certificate)]
        # The chain is the certificate alone, and its own signature is not checked.
        return [_failure(DEPTH_ZERO_SELF_SIGNED, 0, certificate), *_time_failures(certificate, 0, now)]
    failures = _time_failures(ca, 1, now)
    if failures and failures[-1].code not in CONTINUABLE:
        return failures
    if not _signature_verifies(certificate, ca):
        return [*failures, _failure(CERT_SIGNATURE_FAILURE, 0, certificate)]
    return failures + _time_failures(certificate, 0, now)


def _check_names_parse(certificate: x509.Certificate, path: Path) -> None:
    """Raise FileFormatError when the subject or issuer does not parse, such as a UTF8String that is not UTF-8.

    cryptography parses names only when they are first read.
    """
    try:
        len(certificate.subject)
        len(certificate.issuer)
    except ValueError as error:
        raise FileFormatError(path, None, f"its subject or issuer name cannot be read ({error}).") from None


def _failure(error: tuple[int, str], depth: int, certificate: x509.Certificate) -> VerifyFailure:
    return VerifyFailure(error[0], error[1], depth, openssl_oneline(certificate.subject))


def _time_failures(certificate: x509.Certificate, depth: int, now: datetime) -> list[VerifyFailure]:
    if now < certificate.not_valid_before_utc:
        return [_failure(CERT_NOT_YET_VALID, depth, certificate)]
    if now > certificate.not_valid_after_utc:
        return [_failure(CERT_HAS_EXPIRED, depth, certificate)]
    return []


def _is_issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    """Apply OpenSSL's issuer match: the names, then each authorityKeyIdentifier field present.

    As OpenSSL's X509_check_akid does, a key identifier, an authority serial
    or an authority issuer name that is present must match ca.crt.
    """
    from cryptography import x509

    if certificate.issuer != ca.subject:
        return False
    try:
        authority = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return True
    except ValueError:
        # OpenSSL 3.0 also finds no issuer (error 20) when either
        # certificate has an extension that does not parse.
        return False
    if authority.key_identifier is not None:
        try:
            subject_key = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            subject_key = None
        except ValueError:
            return False
        if subject_key is not None and subject_key.digest != authority.key_identifier:
            return False
    serial = authority.authority_cert_serial_number
    if serial is not None and serial != ca.serial_number:
        return False
    issuers = authority.authority_cert_issuer
    if issuers:
        names = [entry.value for entry in issuers if isinstance(entry, x509.DirectoryName)]
        if names and ca.issuer not in names:
            return False
    return True


def _signature_verifies(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    try:
        certificate.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as error:
        logger.debug("signature check failed: %s", error)
        return False
    return True


def openssl_oneline(name: x509.Name) -> str:
    """Render a Name as OpenSSL's default `-nameopt oneline` does: `C = US, CN = alice`.

    NOTE: values are shown as decoded text; OpenSSL's escaping of special and
    non-ASCII characters in this form is not reproduced.
    """
    from easyrsa_py.names import attribute_short_name

    parts = []
    for rdn in name.rdns:
        parts.append(" + ".join(f"{attribute_short_name(a.oid)} = {a.value!s}" for a in rdn))
    return ", ".join(parts)
