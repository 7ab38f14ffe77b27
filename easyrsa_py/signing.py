"""Sign a request with the CA, as easy-rsa 3.2.7's sign-req does through `openssl ca`.

`sign_request` is the one signing path: sign-req, build-*-full and renew
all use it. It allocates the serial, sets the validity, applies
`openssl ca`'s subject policy, builds the extensions from the x509-types
profile and the options, signs with the CA key and records the
certificate.

The files change in this order: index.txt (with index.txt.attr and
serial, and their .old copies as OpenSSL keeps them), then
certs_by_serial/SERIAL.pem, then issued/NAME.crt. Every file is written
out before the first rename, and the index row is renamed in first, so
an interruption can leave a row without its certificate file (as
`openssl ca` can) but never a certificate without its row.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519
from cryptography.x509.oid import NameOID

from easyrsa_py import files, profiles
from easyrsa_py.errors import EasyRSAError, UsageError
from easyrsa_py.index import (
    STATUS_VALID,
    IndexDatabase,
    IndexRow,
    format_attr,
    format_openssl_time,
    format_serial_file,
    parse_attr,
    parse_openssl_time,
    parse_serial_file,
    serial_hex,
)
from easyrsa_py.names import SHORT_NAMES, subject_oneline

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import (
        CertificateIssuerPrivateKeyTypes,
    )

    from easyrsa_py.console import Console
    from easyrsa_py.pki import PKILayout
    from easyrsa_py.settings import Settings

logger = logging.getLogger(__name__)

# easy-rsa 3.2 draws 16 random bytes and retries when the first is zero, so
# every serial has exactly 128 bits. It gives up after five draws.
RANDOM_SERIAL_BYTES = 16
RANDOM_SERIAL_ATTEMPTS = 5
# A serial is a positive INTEGER of at most 20 bytes (RFC 5280 4.1.2.2), so
# the top bit of 20 bytes stays clear. `cryptography` enforces this limit.
MAX_SERIAL_BITS = 159

SigningHash = (
    hashes.SHA224
    | hashes.SHA256
    | hashes.SHA384
    | hashes.SHA512
    | hashes.SHA3_224
    | hashes.SHA3_256
    | hashes.SHA3_384
    | hashes.SHA3_512
)
# The digests `cryptography` can sign with. It rejects md5 and sha1, which
# easy-rsa's vars.example still lists.
_DIGESTS: Mapping[str, type[SigningHash]] = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha3-224": hashes.SHA3_224,
    "sha3-256": hashes.SHA3_256,
    "sha3-384": hashes.SHA3_384,
    "sha3-512": hashes.SHA3_512,
}

# The [policy_anything] section of easy-rsa's openssl-easyrsa.cnf: `openssl
# ca` keeps these attributes, in this order, and drops all others unless
# the DN is preserved. commonName is the one that must be supplied.
_POLICY = (
    NameOID.COUNTRY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.COMMON_NAME,
    NameOID.EMAIL_ADDRESS,
    NameOID.SERIAL_NUMBER,
)

# The nsCertType value `--ns-cert` adds for each certificate type.
_NS_CERT_TYPES = {"serverClient": "server,client", "server": "server", "client": "client", "ca": "sslCA"}
_IPV4_ADDRESS = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_DATE_LENGTHS = (13, 15)
_CRITICAL_OPTIONS = (
    ("EASYRSA_BC_CRIT", "basicConstraints"),
    ("EASYRSA_KU_CRIT", "keyUsage"),
    ("EASYRSA_EKU_CRIT", "extendedKeyUsage"),
)


class SigningError(EasyRSAError):
    """The request cannot be signed: a conflict, a bad option or a policy violation."""


@dataclass(frozen=True)
class SigningOptions:
    """Everything besides the request and the CA that decides the certificate."""

    days: int
    start_date: str | None = None
    end_date: str | None = None
    digest: str = "sha256"
    # The --san values joined with ", ", as easy-rsa joins repeated options.
    san: str | None = None
    san_critical: bool = False
    auto_san: bool = False
    copy_extensions: bool = False
    # The subject given with --new-subject, applied with the 'newsubj' argument.
    new_subject: str | None = None
    preserve_dn: bool = False
    critical: frozenset[str] = frozenset()
    ns_support: bool = False
    ns_comment: str = ""
    subca_length: int | None = None
    # EASYRSA_EXTRA_EXTS: more extension lines in the profile syntax.
    extra_extensions: str | None = None
    # Write OpenSSL's text rendering before the PEM block, as `openssl ca` does.
    text: bool = True
    random_serial: bool = True
    environment: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> SigningOptions:
        """Read the signing options from settings, checking the dates as easy-rsa 3.2.7 does."""
        raw = settings.raw
        start_date = raw.get("EASYRSA_START_DATE") or None
        end_date = raw.get("EASYRSA_END_DATE") or None
        check_dates(start_date, end_date)
        subca = raw.get("EASYRSA_SUBCA_LEN")
        return cls(
            days=settings.cert_expire,
            start_date=start_date,
            end_date=end_date,
            digest=settings.digest,
            san=raw.get("EASYRSA_SAN") or None,
            san_critical=settings.san_critical,
            auto_san=bool(raw.get("EASYRSA_AUTO_SAN")),
            copy_extensions=bool(raw.get("EASYRSA_CP_EXT")),
            new_subject=raw.get("EASYRSA_NEW_SUBJECT") or None,
            preserve_dn=bool(raw.get("EASYRSA_PRESERVE_DN")),
            critical=frozenset(name for variable, name in _CRITICAL_OPTIONS if raw.get(variable)),
            ns_support=settings.ns_support,
            ns_comment=settings.ns_comment,
            subca_length=int(subca) if subca and subca.isdigit() else None,
            extra_extensions=raw.get("EASYRSA_EXTRA_EXTS") or None,
            text=not (raw.get("EASYRSA_TEXT_OFF") or raw.get("EASYRSA_NO_TEXT")),
            random_serial=raw.get("EASYRSA_RAND_SN", "yes").lower() != "no",
            environment=dict(raw),
        )


def check_dates(start_date: str | None, end_date: str | None) -> None:
    """Reject --startdate without --enddate and dates not in [YY]YYMMDDhhmmssZ form."""
    if start_date and not end_date:
        raise UsageError("--startdate needs --enddate: give both, or use --days alone.")
    for option, value in (("--startdate", start_date), ("--enddate", end_date)):
        if value is None:
            continue
        problem = len(value) not in _DATE_LENGTHS
        if not problem:
            try:
                parse_openssl_time(value)
            except ValueError:
                problem = True
        if problem:
            raise UsageError(
                f"Invalid {option} value {value!r}: expected YYMMDDhhmmssZ or "
                "YYYYMMDDhhmmssZ in UTC, such as 20300101000000Z."
            )


@dataclass(frozen=True)
class SignedCertificate:
    """A certificate that sign_request issued and recorded."""

    certificate: x509.Certificate
    path: Path
    serial: int
    row: IndexRow


def signature_hash(
    key: CertificateIssuerPrivateKeyTypes, digest: str
) -> SigningHash | None:
    """Return the hash for signing with `key`: None for Ed25519 and Ed448 keys."""
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    algorithm = _DIGESTS.get(digest.lower())
    if algorithm is None:
        raise UsageError(
            f"Invalid digest {digest!r} (--digest or EASYRSA_DIGEST): expected one of "
            f"{', '.join(_DIGESTS)}."
        )
    return algorithm()


# -- serial numbers -----------------------------------------------------------


@dataclass(frozen=True)
class SerialAllocation:
    """The serial of the new certificate and the serial files OpenSSL leaves behind."""

    serial: int
    serial_file: bytes
    serial_old: bytes


def allocate_serial(layout: PKILayout, database: IndexDatabase, random_serial: bool) -> SerialAllocation:
    """Choose a serial that index.txt does not contain yet.

    Random serials are 128 bits. easy-rsa writes the drawn serial, in
    lowercase hex, to pki/serial before `openssl ca` reads it. OpenSSL then
    keeps that file as serial.old and writes the next serial to pki/serial.
    Sequential serials come from pki/serial.
    """
    if random_serial:
        for _ in range(RANDOM_SERIAL_ATTEMPTS):
            drawn = os.urandom(RANDOM_SERIAL_BYTES)
            if drawn[0] == 0:
                continue
            number = int.from_bytes(drawn, "big")
            if database.find(number) is None:
                return SerialAllocation(
                    number, format_serial_file(number + 1), drawn.hex().encode() + b"\n"
                )
        raise SigningError(
            f"Could not draw a random serial number missing from {layout.index} "
            f"in {RANDOM_SERIAL_ATTEMPTS} attempts."
        )
    path = layout.serial
    data = path.read_bytes()
    number = parse_serial_file(data, path)
    if not 0 < number < 2**MAX_SERIAL_BITS:
        raise SigningError(
            f"The next serial {serial_hex(number)} in {path} cannot be used: a certificate "
            f"serial must be positive and at most {MAX_SERIAL_BITS} bits long (RFC 5280 "
            "allows 20 bytes). Correct the serial file, or use random serials (unset "
            "EASYRSA_RAND_SN)."
        )
    if database.find(number) is not None:
        raise SigningError(
            f"The next serial {serial_hex(number)} in {path} is already in {layout.index}. "
            "Correct the serial file, or use random serials (unset EASYRSA_RAND_SN)."
        )
    return SerialAllocation(number, format_serial_file(number + 1), data)


# -- subject ------------------------------------------------------------------


_SUBJECT_TYPES = {short: dotted for dotted, short in SHORT_NAMES.items()}
_SUBJECT_TYPES.update(
    {
        "commonName": "2.5.4.3",
        "countryName": "2.5.4.6",
        "localityName": "2.5.4.7",
        "stateOrProvinceName": "2.5.4.8",
        "organizationName": "2.5.4.10",
        "organizationalUnitName": "2.5.4.11",
        "emailAddress": "1.2.840.113549.1.9.1",
    }
)


def parse_subject_text(text: str) -> x509.Name:
    """Parse a subject in OpenSSL's -subj form, '/type=value/type=value+type=value'.

    A backslash escapes the next character. A field with an empty value is
    skipped, as OpenSSL skips it.
    """
    if not text.startswith("/"):
        raise UsageError(
            f"Invalid --new-subject {text!r}: it must start with '/', as in '/CN=alice/O=Example'."
        )
    rdns: list[x509.RelativeDistinguishedName] = []
    for component in _split_unescaped(text[1:], "/"):
        attributes = []
        for part in _split_unescaped(component, "+"):
            attribute = _subject_attribute(text, part)
            if attribute is not None:
                attributes.append(attribute)
        if attributes:
            rdns.append(x509.RelativeDistinguishedName(attributes))
    return x509.Name(rdns)


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts = [""]
    escaped = False
    for character in text:
        if escaped:
            parts[-1] += character
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == separator:
            parts.append("")
        else:
            parts[-1] += character
    if escaped:
        raise UsageError(f"Invalid subject {text!r}: it ends with a lone backslash.")
    return [part for part in parts if part]


def _subject_attribute(text: str, part: str) -> x509.NameAttribute[str] | None:
    name, equals, value = part.partition("=")
    if not equals:
        raise UsageError(f"Invalid subject {text!r}: expected type=value, found {part!r}.")
    dotted = _SUBJECT_TYPES.get(name)
    if dotted is None and re.fullmatch(r"[0-2](\.[0-9]+)+", name):
        dotted = name
    if dotted is None:
        raise UsageError(f"Invalid subject {text!r}: unknown attribute type {name!r}.")
    if not value:
        return None
    from easyrsa_py.csr import string_type_problem

    try:
        attribute = x509.NameAttribute(x509.ObjectIdentifier(dotted), value)
    except ValueError as error:
        raise UsageError(f"Invalid subject {text!r}: {error}") from None
    problem = string_type_problem(attribute)
    if problem is not None:
        raise UsageError(f"Invalid subject {text!r}: the value of {name} {value!r} is invalid: {problem}.")
    return attribute


def apply_policy(name: x509.Name, preserve: bool) -> x509.Name:
    """Build the certificate subject from the request's, as `openssl ca` does with easy-rsa's policy.

    Without `preserve`, the policy's attributes are kept in policy order, one
    per RDN, and every other attribute is dropped. With it, the request's
    subject is kept as it is. Either way a commonName is required, and an
    emailAddress must be an IA5String.
    """
    attributes = [attribute for rdn in name.rdns for attribute in rdn]
    if not any(attribute.oid == NameOID.COMMON_NAME for attribute in attributes):
        raise SigningError("The request subject has no commonName (CN), which the CA policy requires.")
    for attribute in attributes:
        if attribute.oid == NameOID.EMAIL_ADDRESS and attribute._type.name != "IA5String":
            raise SigningError("The request's emailAddress is not an IA5String, which OpenSSL requires.")
    if preserve:
        return name
    policy_rdns = [
        x509.RelativeDistinguishedName([attribute])
        for oid in _POLICY
        for attribute in attributes
        if attribute.oid == oid
    ]
    return x509.Name(policy_rdns)


def request_common_name(name: x509.Name) -> str:
    """Return the last commonName of a subject, as easy-rsa reads it for --auto-san."""
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not values:
        return ""
    value = values[-1].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


# -- validity -----------------------------------------------------------------


def validity(options: SigningOptions, now: datetime) -> tuple[datetime, datetime]:
    """Return notBefore and notAfter as `openssl ca` sets them.

    Without --startdate the certificate starts now. Without --enddate it
    ends `days` after now, not after the start date, as in OpenSSL 3.0.
    """
    now = now.replace(microsecond=0)
    not_before = parse_openssl_time(options.start_date) if options.start_date else now
    if options.end_date:
        not_after = parse_openssl_time(options.end_date)
    else:
        not_after = end_after_days(now, options.days)
    return not_before, not_after


def end_after_days(start: datetime, days: int) -> datetime:
    """Return `start` plus `days`, or raise UsageError past the last date X.509 can hold."""
    try:
        end = start + timedelta(days=days)
    except OverflowError:
        end = None
    if end is None or end.year > 9999:
        raise UsageError(
            f"Invalid validity of {days} days (--days, or EASYRSA_CERT_EXPIRE or "
            "EASYRSA_CA_EXPIRE in vars): the certificate would end after 9999-12-31, the "
            "last date X.509 can encode. Give fewer days."
        )
    return end


# -- extensions ---------------------------------------------------------------


def extension_lines(
    cert_type: str,
    folders: list[Path],
    options: SigningOptions,
    common_name: str,
) -> tuple[list[profiles.ProfileLine], profiles.Profile]:
    """Collect the extension lines of a certificate: profile, COMMON, options, SAN.

    The order follows the extensions file easy-rsa 3.2.7 writes: the type's
    profile (with --*-crit applied), COMMON, the CA path length, the
    Netscape lines, EASYRSA_EXTRA_EXTS and the subjectAltName. A later line
    of the same name replaces an earlier one, as in OpenSSL's config.
    """
    profile = profiles.load_profile(cert_type, folders)
    common = profiles.load_profile("COMMON", folders)
    type_lines = list(profile.lines)
    for name in sorted(options.critical):
        type_lines = profiles.make_critical(type_lines, name)
    added: list[profiles.ProfileLine] = []
    if cert_type == "ca" and options.subca_length is not None:
        added.append(_path_length_line(type_lines, profile, options.subca_length))
    if options.ns_support:
        added.extend(_netscape_lines(cert_type, options.ns_comment))
    if options.extra_extensions:
        added.extend(profiles.profile_lines(options.extra_extensions, "EASYRSA_EXTRA_EXTS"))
    san_line = _san_line(options, common_name)
    if san_line is not None:
        added.append(san_line)
    return profiles.merge_lines(type_lines, common.lines, added), profile


def _path_length_line(
    lines: Sequence[profiles.ProfileLine], profile: profiles.Profile, length: int
) -> profiles.ProfileLine:
    constraints = [line for line in lines if line.name == "basicConstraints"]
    if not constraints:
        raise SigningError(
            f"--subca-len needs a basicConstraints line in the profile {profile.source}."
        )
    last = constraints[-1]
    return replace(last, value=f"{last.value}, pathlen:{length}", source="--subca-len", line=None)


def _netscape_lines(cert_type: str, comment: str) -> list[profiles.ProfileLine]:
    cert_kind = _NS_CERT_TYPES.get(cert_type, cert_type)
    return [
        profiles.ProfileLine("nsCertType", cert_kind, False, "--ns-cert", None),
        profiles.ProfileLine("nsComment", comment, False, "--ns-comment", None),
    ]


def subject_alt_name_text(options: SigningOptions, common_name: str) -> str | None:
    """Return the subjectAltName value from --san, or from --auto-san and the CN."""
    if options.san:
        return options.san
    if options.auto_san and common_name:
        kind = "IP" if _IPV4_ADDRESS.fullmatch(common_name) else "DNS"
        return f"{kind}:{common_name}"
    return None


def _san_line(options: SigningOptions, common_name: str) -> profiles.ProfileLine | None:
    # NOTE: easy-rsa 3.2.7 leaves a --san subjectAltName non-critical even
    # with --san-crit, and marks only --auto-san's critical. easyrsa_py
    # marks both, because --san-crit requests it.
    text = subject_alt_name_text(options, common_name)
    if text is None:
        return None
    source = "--san" if options.san else "--auto-san"
    return profiles.ProfileLine("subjectAltName", text, options.san_critical, source, None)


def copy_request_extensions(
    extensions: list[x509.Extension[x509.ExtensionType]],
    request: x509.CertificateSigningRequest,
) -> list[x509.Extension[x509.ExtensionType]]:
    """Append the request's extensions that the certificate lacks (copy_extensions = copy)."""
    present = {extension.oid for extension in extensions}
    copied = [extension for extension in request.extensions if extension.oid not in present]
    return extensions + copied


# -- the certificate file -------------------------------------------------------


def certificate_file_bytes(certificate: x509.Certificate, text: bool) -> bytes:
    """Return the certificate file: OpenSSL's text rendering (unless `text` is off), then PEM."""
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    if not text:
        return pem
    from easyrsa_py.ca_text import render_issued_certificate

    return render_issued_certificate(certificate).encode("utf-8") + pem


def _read_attributes(layout: PKILayout) -> dict[str, str]:
    # easy-rsa's config sets unique_subject = no, which applies when
    # index.txt.attr does not exist.
    attributes = {"unique_subject": "no"}
    path = layout.index_attr
    if path.is_file():
        attributes.update(parse_attr(path.read_bytes(), path))
    value = attributes["unique_subject"].strip().lower()
    attributes["unique_subject"] = "yes" if value in ("y", "yes", "t", "true", "1") else "no"
    return attributes


def _check_unique_subject(database: IndexDatabase, attributes: Mapping[str, str], subject: str) -> None:
    if attributes["unique_subject"] != "yes":
        return
    for row in database.rows:
        if row.status == STATUS_VALID and row.subject == subject:
            raise SigningError(
                f"index.txt already has a valid certificate with subject {subject} (serial "
                f"{row.serial}), and index.txt.attr sets unique_subject = yes. Revoke it "
                "first, or set unique_subject = no."
            )


@dataclass
class _Prepared:
    certificate: x509.Certificate
    allocation: SerialAllocation
    database: IndexDatabase
    attributes: dict[str, str]
    row: IndexRow


def build_certificate(
    layout: PKILayout,
    settings: Settings,
    request: x509.CertificateSigningRequest,
    cert_type: str,
    options: SigningOptions,
    *,
    new_subject: bool = False,
    now: datetime | None = None,
) -> tuple[x509.Certificate, SerialAllocation, IndexDatabase]:
    """Build and sign the certificate for `request`, without writing anything."""
    from easyrsa_py.pki import load_ca_certificate, load_ca_key

    now = now or datetime.now(UTC)
    database = IndexDatabase.load(layout.index)
    allocation = allocate_serial(layout, database, options.random_serial)
    source_subject = request.subject
    if new_subject:
        if not options.new_subject:
            raise UsageError("The 'newsubj' argument needs the subject in --new-subject.")
        source_subject = parse_subject_text(options.new_subject)
    subject = apply_policy(source_subject, options.preserve_dn)
    ca_file = load_ca_certificate(layout)
    ca_certificate = x509.load_der_x509_certificate(ca_file.der)
    _check_ca_not_expired(layout, ca_certificate, now)
    folders = profiles.search_folders(layout.root, settings.easyrsa_dir, settings.raw)
    lines, profile = extension_lines(cert_type, folders, options, request_common_name(request.subject))
    public_key = request.public_key()
    context = profiles.ExtensionContext(
        subject_public_key=public_key,  # type: ignore[arg-type]
        issuer_name=ca_certificate.subject,
        issuer_public_key=ca_certificate.public_key(),
        issuer_certificate=ca_certificate,
        serial_number=allocation.serial,
        environment=options.environment,
    )
    extensions = profiles.build_extensions(lines, context, profile.sections)
    if options.copy_extensions:
        extensions = copy_request_extensions(extensions, request)
    extensions = profiles.add_default_key_identifiers(extensions, lines, context)
    not_before, not_after = validity(options, now)
    if not_after <= not_before:
        raise UsageError(
            f"The end date {format_openssl_time(not_after)} is not after the start date "
            f"{format_openssl_time(not_before)}. Check --startdate, --enddate and --days."
        )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(allocation.serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension in extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    key: CertificateIssuerPrivateKeyTypes = load_ca_key(layout, settings.passin, ca_file)
    certificate = builder.sign(key, signature_hash(key, options.digest))
    return certificate, allocation, database


def _check_ca_not_expired(layout: PKILayout, ca_certificate: x509.Certificate, now: datetime) -> None:
    # easy-rsa 3.2.7 signs with an expired CA certificate, and every
    # certificate it issues then fails verification.
    expiry = ca_certificate.not_valid_after_utc
    if now > expiry:
        raise SigningError(
            f"The CA certificate {layout.ca_cert} expired on {expiry:%Y-%m-%d %H:%M:%S} UTC, so "
            "no certificate it signs would verify. Renew it with 'renew-ca' first."
        )


def record_certificate(
    layout: PKILayout,
    name: str,
    certificate: x509.Certificate,
    allocation: SerialAllocation,
    database: IndexDatabase,
    *,
    text: bool,
) -> SignedCertificate:
    """Write the index row, serial files, certs_by_serial copy and issued/NAME.crt."""
    issued = layout.issued_cert(name)
    if issued.exists():
        raise SigningError(f"Cannot sign '{name}': the certificate {issued} already exists.")
    attributes = _read_attributes(layout)
    subject_text = subject_oneline(certificate.subject)
    _check_unique_subject(database, attributes, subject_text)

    row = IndexRow.issued(
        format_openssl_time(certificate.not_valid_after_utc), certificate.serial_number, subject_text
    )
    old_index = database.to_bytes()
    database.append(row)
    by_serial = layout.root / "certs_by_serial" / f"{serial_hex(certificate.serial_number)}.pem"
    content = certificate_file_bytes(certificate, text)

    writes = _database_writes(layout, old_index, database, attributes, allocation)
    writes += [(by_serial, content, None), (issued, content, None)]
    files.make_dirs(issued.parent)
    files.make_dirs(by_serial.parent)
    files.atomic_write_all(writes)
    logger.info("Issued %s with serial %s", issued, row.serial)
    return SignedCertificate(certificate, issued, certificate.serial_number, row)


def _database_writes(
    layout: PKILayout,
    old_index: bytes,
    database: IndexDatabase,
    attributes: Mapping[str, str],
    allocation: SerialAllocation,
) -> list[tuple[Path, bytes, int | None]]:
    """List the .old copies, then index.txt, index.txt.attr and serial, as OpenSSL rotates them."""
    writes: list[tuple[Path, bytes, int | None]] = [
        (_with_suffix(layout.index, ".old"), old_index, None),
        (_with_suffix(layout.serial, ".old"), allocation.serial_old, None),
    ]
    if layout.index_attr.is_file():
        writes.append((_with_suffix(layout.index_attr, ".old"), layout.index_attr.read_bytes(), None))
    writes += [
        (layout.index, database.to_bytes(), None),
        (layout.index_attr, format_attr(attributes), None),
        (layout.serial, allocation.serial_file, None),
    ]
    return writes


def _with_suffix(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def sign_request(
    layout: PKILayout,
    settings: Settings,
    console: Console,
    *,
    name: str,
    cert_type: str,
    options: SigningOptions | None = None,
    request: x509.CertificateSigningRequest | None = None,
    new_subject: bool = False,
    local_request: bool = False,
    now: datetime | None = None,
) -> SignedCertificate:
    """Sign reqs/NAME.req (or `request`) as a `cert_type` certificate and record it.

    Asks for confirmation unless batch mode is on. `local_request` is true
    when the request was made by this run (build-*-full), which drops the
    warning about a request of unknown origin. `options` defaults to
    SigningOptions.from_settings(settings); renew passes its own to carry
    the old certificate's subjectAltName. Raises SigningError,
    UnknownProfile, ProfileError or RequestError before any file changes.
    """
    from easyrsa_py.csr import load_request
    from easyrsa_py.revoke import check_file_name_base

    check_file_name_base(name)
    options = options or SigningOptions.from_settings(settings)
    request_path = layout.request(name)
    issued = layout.issued_cert(name)
    if request is None:
        if not request_path.is_file():
            raise SigningError(
                f"No request found for '{name}': expected {request_path}. Create it with "
                f"'gen-req {name}' or import one with 'import-req FILE {name}'."
            )
        request = load_request(request_path)
    if issued.exists():
        raise SigningError(
            f"Cannot sign '{name}': the certificate {issued} already exists. Revoke, renew or "
            "expire it first, or choose another name."
        )
    # Resolve the profile before any question, so a bad type fails at once.
    folders = profiles.search_folders(layout.root, settings.easyrsa_dir, settings.raw)
    profiles.load_profile(cert_type, folders)
    if options.ns_support:
        console.confirm(
            "Confirm use of Netscape extensions: ",
            "yes",
            "WARNING: the Netscape extensions nsCertType and nsComment are deprecated.",
        )
    console.confirm(
        "Confirm requested details: ",
        "yes",
        confirmation_message(request, cert_type, options, new_subject, local_request),
    )
    certificate, allocation, database = build_certificate(
        layout, settings, request, cert_type, options, new_subject=new_subject, now=now
    )
    return record_certificate(layout, name, certificate, allocation, database, text=options.text)


def confirmation_message(
    request: x509.CertificateSigningRequest,
    cert_type: str,
    options: SigningOptions,
    new_subject: bool,
    local_request: bool,
) -> str:
    """Build the details shown before signing, in easy-rsa 3.2.7's layout."""
    from easyrsa_py.display import multiline_dn

    common_name = request_common_name(request.subject)
    lines = [f"  Requested CN:     '{common_name}'", f"  Requested type:   '{cert_type}'"]
    if cert_type == "ca" and options.subca_length is not None:
        lines.append(f"\n  Path length:      '{options.subca_length}'\n")
    if options.end_date:
        lines.append(f"  Valid until:      '{options.end_date}'")
    else:
        lines.append(f"  Valid for:        '{options.days}' days")
    critical = [
        f"  {name + ':':<17} 'critical'\n"
        for name in ("basicConstraints", "keyUsage", "extendedKeyUsage")
        if name in options.critical
    ]
    if options.san_critical:
        critical.append("  subjectAltName:   'critical'\n")
    details = "\n".join(lines) + "\n\n" + "".join(critical)
    if new_subject and options.new_subject:
        details += f"\n* Forced Subject:   '{options.new_subject}'\n"
    else:
        details += "\n" + multiline_dn(request.subject.public_bytes())
    san = _confirmation_san(request, options, common_name)
    if san:
        details += "\n\n" + san
    introduction = "The certificate to be signed:\n\n"
    if not local_request:
        introduction = (
            "Check the details below before signing. Nothing has verified where this "
            "request came from:\nsign it only if it came from a trusted source, or its "
            "checksum matches the sender's.\n" + introduction
        )
    return introduction + details


def _confirmation_san(
    request: x509.CertificateSigningRequest, options: SigningOptions, common_name: str
) -> str:
    text = subject_alt_name_text(options, common_name)
    heading = "            X509v3 Subject Alternative Name:\n                "
    if text:
        return heading + ("critical," if options.san_critical else "") + text
    if not options.copy_extensions:
        return ""
    try:
        names = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ""
    from easyrsa_py.x509_text import general_name_text

    return heading + ", ".join(general_name_text(name) for name in names.value)

