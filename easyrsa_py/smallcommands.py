"""The small easy-rsa commands: `rand`, `serial`/`check-serial`, `display-dn`, `show-eku`
and 3.1's `renewable`.

Each function takes the command's words, checks them as easy-rsa 3.2.7
does and returns the text to print; the CLI decides where it goes.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from easyrsa_py import der
from easyrsa_py.certificate import check_request, pem_blocks, read_certificate
from easyrsa_py.errors import CertificateNotFound, FileFormatError, UsageError
from easyrsa_py.index import STATUS_VALID, IndexDatabase, parse_openssl_time, serial_hex

logger = logging.getLogger(__name__)

# easy-rsa accepts only decimal digits without a leading zero, so 0 is invalid.
_BYTE_COUNT = re.compile(r"[1-9][0-9]*")
# easy-rsa 3.2.7 accepts only lowercase hex digits for a serial.
_SERIAL = re.compile(r"[0-9a-f]+")

# The word `openssl ca -status` prints for each index.txt status letter.
_STATUS_WORDS = {"V": "Valid", "R": "Revoked", "E": "Expired", "S": "Suspended"}


def random_hex(arguments: list[str]) -> str:
    """Generate N random bytes and return them as lowercase hex, like `openssl rand -hex N`.

    easy-rsa reads only the first word and ignores any others.
    """
    count = arguments[0] if arguments else ""
    if not _BYTE_COUNT.fullmatch(count):
        raise UsageError(
            f"Invalid byte count '{count}' for 'rand': give a positive whole number "
            "without leading zeros, as in 'rand 16'."
        )
    # NOTE: the whole result is built in memory, so a count of several
    # gigabytes needs twice as much memory.
    return secrets.token_hex(int(count))


@dataclass(frozen=True)
class SerialStatus:
    """The result of looking a serial up in index.txt."""

    serial: str  # as index.txt spells it: uppercase, an even number of digits
    status: str | None  # the row's status letter, or None when no row has it

    @property
    def present(self) -> bool:
        return self.status is not None

    def describe(self, index: Path) -> str:
        if self.status is None:
            return f"Serial {self.serial} is not in {index}, so it is unique."
        word = _STATUS_WORDS.get(self.status, "Unknown")
        return f"Serial {self.serial} is in {index}: {word} ({self.status})."


def check_serial(index: Path, arguments: list[str]) -> SerialStatus:
    """Look up the serial in `arguments[0]` in index.txt.

    easy-rsa reads only the first word, so any others are ignored here too.
    """
    if not arguments or not arguments[0]:
        raise UsageError("Missing serial number: usage is 'serial SERIAL', with SERIAL in lowercase hex.")
    text = arguments[0]
    if not _SERIAL.fullmatch(text):
        raise UsageError(
            f"Invalid serial number '{text}': use lowercase hex digits (0-9, a-f) only, "
            "as easy-rsa does."
        )
    number = int(text, 16)
    row = IndexDatabase.load(index).find(number)
    logger.debug("Serial %s in %s: %s", text, index, row.status if row else "absent")
    return SerialStatus(serial_hex(number), row.status if row else None)


_DISPLAY_FORMATS = ("x509", "req")
_WHAT = {"x509": "certificate", "req": "certificate request"}


def display_dn(arguments: list[str]) -> str:
    """Render the subject of a PEM certificate (x509) or request (req), as easy-rsa does.

    easy-rsa runs `openssl FORMAT -in FILE -noout -subject` with its
    multi-line name options, which `multiline_dn` reproduces.
    """
    from easyrsa_py.display import multiline_dn

    if len(arguments) != 2:
        raise UsageError("Invalid arguments: usage is 'display-dn x509|req FILE'.")
    form, name = arguments
    if form not in _DISPLAY_FORMATS:
        raise UsageError(f"Invalid format '{form}' for 'display-dn': use x509 or req.")
    path = Path(name)
    if not path.is_file():
        raise CertificateNotFound(path, f"No file at {path}. Give the path of a PEM {_WHAT[form]}.")
    subject = read_certificate(path).subject_der if form == "x509" else request_subject(path)
    return multiline_dn(subject)



def request_subject(path: Path) -> bytes:
    """Return the encoded subject Name of the first PEM request in `path`."""
    check_request(path)
    data = path.read_bytes()
    block = (pem_blocks(data, "CERTIFICATE REQUEST") or pem_blocks(data, "NEW CERTIFICATE REQUEST"))[0]
    # check_request has checked the structure: request, info, then version and subject.
    _, request_start, _ = der.read_tlv(block, 0)
    _, info_start, info_end = der.read_tlv(block, request_start)
    fields = der.children(block, info_start, info_end)
    return block[fields[1][1] : fields[1][2]]


_OID_EXTENDED_KEY_USAGE = "2.5.29.37"
_OID_BASIC_CONSTRAINTS = "2.5.29.19"
# OpenSSL's long names (OBJ_nid2ln) of the common key purposes; others show as dotted OIDs.
_PURPOSE_NAMES = {
    "1.3.6.1.5.5.7.3.1": "TLS Web Server Authentication",
    "1.3.6.1.5.5.7.3.2": "TLS Web Client Authentication",
    "1.3.6.1.5.5.7.3.3": "Code Signing",
    "1.3.6.1.5.5.7.3.4": "E-mail Protection",
    "1.3.6.1.5.5.7.3.8": "Time Stamping",
    "1.3.6.1.5.5.7.3.9": "OCSP Signing",
    "2.5.29.37.0": "Any Extended Key Usage",
}
# The purpose lists, as `openssl x509 -ext extendedKeyUsage` prints them, that
# easy-rsa maps to one of its certificate types.
_KNOWN_USAGES = {
    "TLS Web Server Authentication, TLS Web Client Authentication": "serverClient",
    "TLS Web Client Authentication": "client",
    "TLS Web Server Authentication": "server",
    "Code Signing": "codeSigning",
}


@dataclass(frozen=True)
class KeyUsageType:
    """The easy-rsa certificate type that a certificate's extendedKeyUsage matches."""

    path: Path
    type_name: str  # client, server, ...; the purpose list when unknown; prefixed self-signed- for a CA
    known: bool

    def describe(self) -> str:
        if self.known:
            return f"{self.path}: extended key usage of type '{self.type_name}'"
        return f"{self.path}: extended key usage '{self.type_name}' matches no easy-rsa type"


def certificate_key_usage(pki_dir: Path, arguments: list[str]) -> KeyUsageType:
    """Classify the extendedKeyUsage of a file, or of issued/NAME.crt, as easy-rsa 3.2.7 does."""
    name = arguments[0] if arguments else ""
    path = Path(name)
    if not name or not path.is_file():
        path = pki_dir / "issued" / f"{name}.crt"
        if not path.is_file():
            raise CertificateNotFound(
                path, f"No certificate at {path}. Give a certificate name in issued/ or a file path."
            )
    certificate = read_certificate(path)
    try:
        purposes = _purpose_list(certificate.extensions)
        is_ca = _is_ca(certificate.extensions)
    except (ValueError, IndexError) as error:
        raise FileFormatError(path, None, f"invalid extension ({error}).") from None
    type_name = _KNOWN_USAGES.get(purposes) or purposes or "undefined"
    if is_ca:
        type_name = "self-signed-" + type_name
    return KeyUsageType(path, type_name, purposes in _KNOWN_USAGES)


def _purpose_list(extensions: dict[str, tuple[bool, bytes]]) -> str:
    extension = extensions.get(_OID_EXTENDED_KEY_USAGE)
    if extension is None:
        return ""
    value = extension[1]
    tag, start, end = der.read_tlv(value, 0)
    if tag != der.TAG_SEQUENCE:
        raise ValueError("extendedKeyUsage is not a SEQUENCE")
    names = []
    for oid_tag, oid_start, _ in der.children(value, start, end):
        if oid_tag != der.TAG_OID:
            raise ValueError("an extendedKeyUsage purpose is not an OID")
        _, content_start, content_end = der.read_tlv(value, oid_start)
        dotted = der.oid_text(value[content_start:content_end])
        names.append(_PURPOSE_NAMES.get(dotted, dotted))
    return ", ".join(names)


def _is_ca(extensions: dict[str, tuple[bool, bytes]]) -> bool:
    # easy-rsa looks for "CA:TRUE" in `openssl x509 -text`, which only basicConstraints prints.
    extension = extensions.get(_OID_BASIC_CONSTRAINTS)
    if extension is None:
        return False
    value = extension[1]
    _, start, end = der.read_tlv(value, 0)
    fields = der.children(value, start, end)
    if not fields or fields[0][0] != 0x01:
        return False
    _, flag_start, _ = der.read_tlv(value, fields[0][1])
    return value[flag_start] != 0


# easy-rsa 3.1's default for EASYRSA_CERT_RENEW, the renewal window in days.
_DEFAULT_RENEW_DAYS = 30


def renewable_names(index: Path, window: str | None, names: list[str], now: datetime) -> list[str]:
    """Return the commonName of each valid certificate that ends within the renewal window.

    This is easy-rsa 3.1's `renewable`. With names, only rows whose
    commonName is one of them count. easy-rsa 3.1 matches them as a regular
    expression, so 'bob' also finds 'bobby'. It also cuts the printed name at
    the first character outside letters, digits, '-' and '.'.
    """
    from easyrsa_py.status import common_name

    days = _renew_days(window)
    limit = now + timedelta(days=days)
    wanted = set(names)
    found = []
    for row in IndexDatabase.load(index).rows:
        if row.status != STATUS_VALID or parse_openssl_time(row.expires) >= limit:
            continue
        name = common_name(row)
        if not wanted or name in wanted:
            found.append(name)
    return found


def _renew_days(window: str | None) -> int:
    if window is None or window == "":
        return _DEFAULT_RENEW_DAYS
    if not window.isdigit():
        raise UsageError(
            f"Invalid renewal window '{window}' (EASYRSA_CERT_RENEW or --renew-days): "
            "give a whole number of days."
        )
    return int(window)
