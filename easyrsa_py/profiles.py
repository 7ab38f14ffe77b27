"""The x509-types profiles: which extensions each certificate type gets.

A profile is a small OpenSSL extension config (``keyUsage = ...`` lines)
named after the certificate type. easy-rsa 3.2.7 takes the type's file from
the first x509-types folder it finds: EASYRSA_EXT_DIR when set, else
``$EASYRSA_PKI/x509-types``, ``$EASYRSA/x509-types`` and
``$PWD/x509-types`` in that order. Next easy-rsa looks in its own folder,
which a packaged easy-rsa always has, so it never reaches the system
folders it lists after that. The built-in profiles here stand for that
own folder: a type that the folder found lacks, or every type when no
folder is found, comes from them. The COMMON profile is appended to
every type.

The built-in profiles carry the content of the x509-types files that
easy-rsa 3.2.7 ships (3.1.0 and 3.2.2 differ only in ``ca``, whose
basicConstraints is not critical there). 3.2.7's own in-script fallback
differs a little (its client profile adds keyEncipherment) and lacks
code-signing and kdc, but every packaged easy-rsa installs the files, so
they are what users get.

Lines are parsed into `cryptography` extension objects by
`build_extensions`; a line that cannot be expressed raises ProfileError
naming the file and line.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, ObjectIdentifier

from easyrsa_py import der
from easyrsa_py.errors import EasyRSAError

X509_TYPES_FOLDER = "x509-types"

_CLIENT_SERVER_COMMON = """\
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer:always
"""

# The profiles easyrsa_py uses when the x509-types folder lacks the type.
BUILTIN_PROFILES: Mapping[str, str] = {
    "COMMON": "",
    "ca": (
        "basicConstraints = critical,CA:TRUE\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid:always,issuer:always\n"
        "keyUsage = cRLSign, keyCertSign\n"
    ),
    "client": _CLIENT_SERVER_COMMON
    + "extendedKeyUsage = clientAuth\nkeyUsage = digitalSignature\n",
    "server": _CLIENT_SERVER_COMMON
    + "extendedKeyUsage = serverAuth\nkeyUsage = digitalSignature,keyEncipherment\n",
    "serverClient": _CLIENT_SERVER_COMMON
    + "extendedKeyUsage = serverAuth,clientAuth\n"
    "keyUsage = digitalSignature,keyEncipherment\n",
    "code-signing": _CLIENT_SERVER_COMMON
    + "extendedKeyUsage = codeSigning\nkeyUsage = digitalSignature\n",
    "email": _CLIENT_SERVER_COMMON
    + "extendedKeyUsage = emailProtection\n"
    "keyUsage = digitalSignature,keyEncipherment,nonRepudiation\n",
    # The Kerberos KDC profile of RFC 4556 section 3.2.4: its subjectAltName
    # is the KRB5PrincipalName krbtgt/REALM@REALM, with REALM taken from
    # EASYRSA_KDC_REALM.
    "kdc": _CLIENT_SERVER_COMMON
    + "extendedKeyUsage = 1.3.6.1.5.2.3.5\n"
    "keyUsage = nonRepudiation,digitalSignature,keyEncipherment,keyAgreement\n"
    "issuerAltName = issuer:copy\n"
    "subjectAltName = otherName:1.3.6.1.5.2.2;SEQUENCE:kdc_princ_name\n",
}
# easy-rsa 3.2.7 spells the code-signing type 'codeSigning' in its script.
BUILTIN_ALIASES: Mapping[str, str] = {"codeSigning": "code-signing"}

_KEY_USAGE_NAMES = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}
# OpenSSL also accepts the long names it prints, such as "Digital Signature".
_KEY_USAGE_LONG_NAMES = {
    "Digital Signature": "digitalSignature",
    "Non Repudiation": "nonRepudiation",
    "Key Encipherment": "keyEncipherment",
    "Data Encipherment": "dataEncipherment",
    "Key Agreement": "keyAgreement",
    "Certificate Sign": "keyCertSign",
    "CRL Sign": "cRLSign",
    "Encipher Only": "encipherOnly",
    "Decipher Only": "decipherOnly",
}
# OpenSSL's short names, and the long names of the common ones, for the
# extended key usages it defines.
_EKU_NAMES = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "OCSPSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
    "anyExtendedKeyUsage": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "ipsecIKE": ObjectIdentifier("1.3.6.1.5.5.7.3.17"),
    "msCodeInd": ObjectIdentifier("1.3.6.1.4.1.311.2.1.21"),
    "msCodeCom": ObjectIdentifier("1.3.6.1.4.1.311.2.1.22"),
    "msCTLSign": ObjectIdentifier("1.3.6.1.4.1.311.10.3.1"),
    "msEFS": ObjectIdentifier("1.3.6.1.4.1.311.10.3.4"),
    "msSGC": ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "nsSGC": ObjectIdentifier("2.16.840.1.113730.4.1"),
    "msSmartcardLogin": ObjectIdentifier("1.3.6.1.4.1.311.20.2.2"),
    "pkInitKDC": ObjectIdentifier("1.3.6.1.5.2.3.5"),
    "pkInitClientAuth": ObjectIdentifier("1.3.6.1.5.2.3.4"),
    "TLS Web Server Authentication": ExtendedKeyUsageOID.SERVER_AUTH,
    "TLS Web Client Authentication": ExtendedKeyUsageOID.CLIENT_AUTH,
    "Code Signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "E-mail Protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "Time Stamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "OCSP Signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "Any Extended Key Usage": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
}
# Bits of the Netscape certificate type (nsCertType), most significant first.
_NS_CERT_TYPE_BITS = {
    "client": 0,
    "server": 1,
    "email": 2,
    "objsign": 3,
    "reserved": 4,
    "sslCA": 5,
    "emailCA": 6,
    "objCA": 7,
}
NS_CERT_TYPE_OID = ObjectIdentifier("2.16.840.1.113730.1.1")
NS_COMMENT_OID = ObjectIdentifier("2.16.840.1.113730.1.13")
_KRB5_PRINCIPAL_NAME_OID = "1.3.6.1.5.2.2"
_KDC_SUBJECT_ALT_NAME = "otherName:1.3.6.1.5.2.2;SEQUENCE:kdc_princ_name"
_DOTTED_OID = re.compile(r"[0-2](\.[0-9]+)+")
_VARIABLE = re.compile(r"\$(\{ENV::([A-Za-z0-9_]+)\}|ENV::([A-Za-z0-9_]+))")


class ProfileError(EasyRSAError):
    """A profile line is invalid, or uses an OpenSSL feature easyrsa_py lacks."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"Invalid x509-types profile {where}: {message}")
        self.source = source
        self.line = line


class UnknownProfile(EasyRSAError):
    """No profile file and no built-in profile exists for a certificate type."""

    def __init__(self, name: str, searched: list[Path]) -> None:
        folders = ", ".join(str(folder) for folder in searched) or "no folder found"
        known = ", ".join(sorted(set(BUILTIN_PROFILES) - {"COMMON"}))
        super().__init__(
            f"Unknown certificate type '{name}': there is no file '{name}' in the "
            f"x509-types folder ({folders}) and no built-in profile of that name. "
            f"Built-in types: {known}. For a custom type, create "
            f"x509-types/{name} in the PKI."
        )
        self.name = name
        self.searched = searched


@dataclass(frozen=True)
class ProfileLine:
    """One `name = value` extension line of a profile."""

    name: str
    value: str
    critical: bool
    source: str  # the file path, or "built-in NAME"
    line: int | None


@dataclass(frozen=True)
class Profile:
    """The extension lines of one certificate type, in file order."""

    name: str
    source: str
    lines: tuple[ProfileLine, ...]
    # Named sections ([name] blocks) of the file, for SEQUENCE: references.
    sections: Mapping[str, tuple[ProfileLine, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ExtensionContext:
    """The keys, names and certificates that `hash`, `keyid`, `issuer` and `copy` refer to.

    For a self-signed certificate, pass its own name, serial and public key
    as the issuer's and leave `issuer_certificate` as None.
    """

    subject_public_key: CertificatePublicKeyTypes
    issuer_name: x509.Name
    issuer_public_key: CertificatePublicKeyTypes
    issuer_certificate: x509.Certificate | None = None
    # The serial of the certificate being made, used when it is self-signed.
    serial_number: int | None = None
    environment: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def self_signed(
        cls, public_key: CertificatePublicKeyTypes, subject: x509.Name, serial: int, environment: Mapping[str, str]
    ) -> ExtensionContext:
        """Build the context of a self-signed certificate, its own issuer."""
        return cls(public_key, subject, public_key, None, serial, dict(environment))


def search_folders(
    pki_dir: Path, easyrsa_dir: Path, raw: Mapping[str, str], cwd: Path | None = None
) -> list[Path]:
    """List the x509-types folders easy-rsa 3.2.7 would consider, in order.

    EASYRSA_EXT_DIR, when set, is the only candidate.
    """
    explicit = raw.get("EASYRSA_EXT_DIR")
    if explicit:
        return [Path(explicit)]
    working = cwd if cwd is not None else Path.cwd()
    folders: list[Path] = []
    for area in (pki_dir, easyrsa_dir, working):
        candidate = area / X509_TYPES_FOLDER
        if candidate not in folders:
            folders.append(candidate)
    return folders


def find_types_folder(folders: Iterable[Path]) -> Path | None:
    """Return the first folder that exists, as easy-rsa's locate step does."""
    for folder in folders:
        if folder.is_dir():
            return folder
    return None


def load_profile(name: str, folders: list[Path]) -> Profile:
    """Load the profile of certificate type `name` from the folders or the built-ins.

    Raises UnknownProfile when neither has it, and ProfileError for a file
    that cannot be read or parsed.
    """
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise UnknownProfile(name, folders)
    folder = find_types_folder(folders)
    if folder is not None:
        path = folder / name
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise ProfileError(str(path), None, f"cannot be read ({error}).") from None
            return parse_profile(name, text, str(path))
    builtin_name = BUILTIN_ALIASES.get(name, name)
    if builtin_name in BUILTIN_PROFILES:
        return parse_profile(name, BUILTIN_PROFILES[builtin_name], f"built-in {builtin_name}")
    raise UnknownProfile(name, folders)


def parse_profile(name: str, text: str, source: str) -> Profile:
    """Parse the text of a profile file into its extension lines and sections."""
    sections: dict[str, list[ProfileLine]] = {"": []}
    current = ""
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw_line).strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ProfileError(source, number, f"unclosed section header {line!r}.")
            current = line[1:-1].strip()
            sections.setdefault(current, [])
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise ProfileError(
                source, number, f"expected 'name = value', found {raw_line.strip()!r}."
            )
        _add_line(sections[current], _profile_line(key.strip(), value.strip(), source, number))
    named = {key: tuple(lines) for key, lines in sections.items() if key}
    return Profile(name, source, tuple(sections[""]), named)


def _add_line(lines: list[ProfileLine], new: ProfileLine) -> None:
    # OpenSSL keeps only the last value of a name in a section, in the
    # position of that last line.
    for position, old in enumerate(lines):
        if old.name == new.name:
            del lines[position]
            break
    lines.append(new)


def _profile_line(name: str, value: str, source: str, number: int | None) -> ProfileLine:
    value = _unquote(value)
    critical = False
    head, comma, rest = value.partition(",")
    if comma and head.strip() == "critical":
        critical = True
        value = rest.strip()
    return ProfileLine(name, value, critical, source, number)


def _strip_comment(line: str) -> str:
    """Cut a line at the first unescaped '#' outside quotes, as OpenSSL's config reader does."""
    quote = ""
    escaped = False
    for position, character in enumerate(line):
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = True
        elif quote:
            if character == quote:
                quote = ""
        elif character in "\"'":
            quote = character
        elif character == "#":
            return line[:position]
    return line


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def profile_lines(text: str, source: str) -> tuple[ProfileLine, ...]:
    """Parse extra extension lines (EASYRSA_EXTRA_EXTS, --san) given as text."""
    return parse_profile("extra", text, source).lines


def merge_lines(*groups: Iterable[ProfileLine]) -> list[ProfileLine]:
    """Join groups of lines; a later line of the same name replaces an earlier one."""
    merged: list[ProfileLine] = []
    for group in groups:
        for line in group:
            _add_line(merged, line)
    return merged


def make_critical(lines: Iterable[ProfileLine], name: str) -> list[ProfileLine]:
    """Mark the line `name` critical, as --bc-crit, --ku-crit and --eku-crit do."""
    return [
        ProfileLine(line.name, line.value, True, line.source, line.line)
        if line.name == name
        else line
        for line in lines
    ]


def build_extensions(
    lines: Iterable[ProfileLine],
    context: ExtensionContext,
    sections: Mapping[str, tuple[ProfileLine, ...]] | None = None,
) -> list[x509.Extension[x509.ExtensionType]]:
    """Turn profile lines into extensions, in line order.

    A value that yields no extension (an authorityKeyIdentifier with
    neither a key id nor an issuer, or subjectKeyIdentifier = none) is
    left out, as OpenSSL leaves it out.
    """
    extensions: list[x509.Extension[x509.ExtensionType]] = []
    for line in lines:
        value = _expand_variables(line, context.environment)
        expanded = ProfileLine(line.name, value, line.critical, line.source, line.line)
        extension_value = _build_one(expanded, context, sections or {})
        if extension_value is not None:
            extensions.append(x509.Extension(extension_value.oid, line.critical, extension_value))
    return extensions


def _expand_variables(line: ProfileLine, environment: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        variable = match.group(2) or match.group(3)
        if variable in environment:
            return environment[variable]
        if variable in os.environ:
            return os.environ[variable]
        raise ProfileError(
            line.source, line.line, f"the variable {variable} is not set; set it in vars."
        )

    return _VARIABLE.sub(replace, line.value)


def _fail(line: ProfileLine, message: str) -> ProfileError:
    return ProfileError(line.source, line.line, f"{line.name}: {message}")


def _build_one(
    line: ProfileLine,
    context: ExtensionContext,
    sections: Mapping[str, tuple[ProfileLine, ...]],
) -> x509.ExtensionType | None:
    builders: dict[str, Any] = {
        "basicConstraints": _basic_constraints,
        "keyUsage": _key_usage,
        "extendedKeyUsage": _extended_key_usage,
        "subjectKeyIdentifier": _subject_key_identifier,
        "authorityKeyIdentifier": _authority_key_identifier,
        "subjectAltName": _subject_alt_name,
        "issuerAltName": _issuer_alt_name,
        "nsCertType": _ns_cert_type,
        "nsComment": _ns_comment,
        "crlDistributionPoints": _crl_distribution_points,
    }
    builder = builders.get(line.name)
    if builder is None:
        raise _fail(
            line,
            "easyrsa_py cannot build this extension. Supported names: "
            + ", ".join(builders)
            + ".",
        )
    if not line.value.strip() and line.name != "nsComment":
        # OpenSSL rejects an empty extension value ("invalid empty name").
        raise _fail(line, "the value is empty.")
    if line.value.startswith(("ASN1:", "DER:")):
        raise _fail(line, "raw ASN1: and DER: values are not supported.")
    result: x509.ExtensionType | None = builder(line, context, sections)
    return result


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


# The largest pathLenConstraint that `cryptography` can encode (an unsigned
# 64-bit integer).
_MAX_PATH_LENGTH = 2**64 - 1


def _basic_constraints(line: ProfileLine, *_: Any) -> x509.BasicConstraints:
    ca = False
    path_length: int | None = None
    for item in _items(line.value):
        key, _colon, setting = item.partition(":")
        key = key.strip()
        setting = setting.strip()
        if key == "CA" and setting.upper() in ("TRUE", "FALSE"):
            ca = setting.upper() == "TRUE"
        elif key == "pathlen" and setting.isdigit():
            path_length = int(setting)
            if path_length > _MAX_PATH_LENGTH:
                raise _fail(line, f"pathlen {setting} is too large; the maximum is {_MAX_PATH_LENGTH}.")
        else:
            raise _fail(line, f"unknown value {item!r}; expected CA:TRUE, CA:FALSE or pathlen:N.")
    if path_length is not None and not ca:
        # OpenSSL accepts this, but cryptography cannot encode it.
        raise _fail(line, "pathlen is only allowed with CA:TRUE.")
    return x509.BasicConstraints(ca=ca, path_length=path_length)


def _key_usage(line: ProfileLine, *_: Any) -> x509.KeyUsage:
    flags = dict.fromkeys(_KEY_USAGE_NAMES.values(), False)
    for raw_item in _items(line.value):
        item = _KEY_USAGE_LONG_NAMES.get(raw_item, raw_item)
        if item not in _KEY_USAGE_NAMES:
            raise _fail(
                line, f"unknown key usage {item!r}; expected one of {', '.join(_KEY_USAGE_NAMES)}."
            )
        flags[_KEY_USAGE_NAMES[item]] = True
    if not flags["key_agreement"] and (flags["encipher_only"] or flags["decipher_only"]):
        raise _fail(line, "encipherOnly and decipherOnly need keyAgreement.")
    return x509.KeyUsage(**flags)


def _extended_key_usage(line: ProfileLine, *_: Any) -> x509.ExtendedKeyUsage:
    usages: list[ObjectIdentifier] = []
    for item in _items(line.value):
        if item in _EKU_NAMES:
            usages.append(_EKU_NAMES[item])
        elif _DOTTED_OID.fullmatch(item):
            usages.append(ObjectIdentifier(item))
        else:
            raise _fail(line, f"unknown extended key usage {item!r}; give a known name or an OID.")
    if not usages:
        raise _fail(line, "the value is empty.")
    return x509.ExtendedKeyUsage(usages)


def _subject_key_identifier(
    line: ProfileLine, context: ExtensionContext, *_: Any
) -> x509.SubjectKeyIdentifier | None:
    if line.value == "hash":
        return x509.SubjectKeyIdentifier.from_public_key(context.subject_public_key)
    if line.value == "none":
        return None
    raise _fail(line, f"unknown value {line.value!r}; expected 'hash' or 'none'.")


def _is_self_issued(context: ExtensionContext) -> bool:
    """Tell whether the issuer key is the subject's own, OpenSSL's test for self-signed."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    subject = context.subject_public_key.public_bytes(encoding, spki)
    return subject == context.issuer_public_key.public_bytes(encoding, spki)


def _authority_key_identifier(
    line: ProfileLine, context: ExtensionContext, *_: Any
) -> x509.AuthorityKeyIdentifier | None:
    """Build the AKI as OpenSSL 3.0's v2i_AUTHORITY_KEYID does.

    `keyid` and `issuer` are left out of self-signed certificates unless
    `:always` is given. The key id is the issuer certificate's
    subjectKeyIdentifier, or the hash of the issuer key when self-signed.
    """
    keyid = issuer = 0
    for item in _items(line.value):
        if item in ("keyid", "keyid:always"):
            keyid = 2 if item.endswith(":always") else 1
        elif item in ("issuer", "issuer:always"):
            issuer = 2 if item.endswith(":always") else 1
        elif item != "none":
            raise _fail(line, f"unknown value {item!r}; expected keyid, issuer and ':always'.")
    self_signed = _is_self_issued(context)
    key_identifier = None
    if keyid == 2 or (keyid == 1 and not self_signed):
        key_identifier = _issuer_key_id(context)
        if keyid == 2 and key_identifier is None:
            raise _fail(line, "keyid:always, but the issuer certificate has no subjectKeyIdentifier.")
    issuer_names = None
    issuer_serial = None
    if issuer == 2 or (issuer == 1 and not self_signed and key_identifier is None):
        issuer_names, issuer_serial = _issuer_name_and_serial(line, context)
    if key_identifier is None and issuer_names is None:
        return None
    return x509.AuthorityKeyIdentifier(key_identifier, issuer_names, issuer_serial)


def _issuer_key_id(context: ExtensionContext) -> bytes | None:
    certificate = context.issuer_certificate
    if certificate is not None:
        try:
            identifier = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            return None
        return identifier.value.digest or None
    return x509.SubjectKeyIdentifier.from_public_key(context.issuer_public_key).digest


def _issuer_name_and_serial(
    line: ProfileLine, context: ExtensionContext
) -> tuple[list[x509.GeneralName], int]:
    # The AKI names the issuer certificate by its own issuer and serial.
    certificate = context.issuer_certificate
    if certificate is not None:
        return [x509.DirectoryName(certificate.issuer)], certificate.serial_number
    if context.serial_number is None:
        raise _fail(line, "issuer needs the certificate serial number.")
    return [x509.DirectoryName(context.issuer_name)], context.serial_number


def parse_general_names(text: str, line: ProfileLine | None = None) -> list[x509.GeneralName]:
    """Parse an OpenSSL GeneralNames value such as 'DNS:a.example,IP:192.0.2.1'."""
    names: list[x509.GeneralName] = []
    for item in _items(text):
        names.append(_general_name(item, line))
    if not names:
        # RFC 5280 requires at least one name, and OpenSSL rejects an empty list.
        message = f"no names in {text!r}; expected TYPE:VALUE such as DNS:host.example."
        if line is not None:
            raise _fail(line, message)
        raise ProfileError("--san", None, message)
    return names


def _general_name(item: str, line: ProfileLine | None) -> x509.GeneralName:
    kind, colon, value = item.partition(":")
    kind = kind.strip()
    value = value.strip()

    def invalid(message: str) -> ProfileError:
        if line is not None:
            return _fail(line, message)
        return ProfileError("--san", None, message)

    if not colon or not value:
        raise invalid(f"invalid name {item!r}; expected TYPE:VALUE such as DNS:host.example.")
    if kind in ("DNS", "email", "URI") and not value.isascii():
        # These names are IA5Strings: an internationalized name must be
        # given in its ASCII form (an IDNA A-label such as xn--bcher-kva).
        raise invalid(f"invalid name {item!r}: {kind} values must be ASCII; use the IDNA form.")
    if kind == "DNS":
        return x509.DNSName(value)
    if kind == "IP":
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            raise invalid(f"invalid IP address {value!r}.") from None
    if kind == "email":
        if value in ("copy", "move"):
            raise invalid("email:copy and email:move are not supported.")
        return x509.RFC822Name(value)
    if kind == "URI":
        return x509.UniformResourceIdentifier(value)
    if kind == "RID":
        if not _DOTTED_OID.fullmatch(value):
            raise invalid(f"invalid RID {value!r}; expected a dotted OID.")
        return x509.RegisteredID(ObjectIdentifier(value))
    raise invalid(
        f"unsupported name type {kind!r} in {item!r}; supported: DNS, IP, email, URI, RID."
    )


def _subject_alt_name(
    line: ProfileLine,
    context: ExtensionContext,
    sections: Mapping[str, tuple[ProfileLine, ...]],
) -> x509.SubjectAlternativeName:
    if line.value == _KDC_SUBJECT_ALT_NAME:
        _check_kdc_sections(line, sections)
        return x509.SubjectAlternativeName([_kdc_principal(line, context)])
    if line.value.startswith("otherName:") or "otherName:" in line.value:
        raise _fail(line, "otherName values other than the kdc principal are not supported.")
    return x509.SubjectAlternativeName(parse_general_names(line.value, line))


# The sections of easy-rsa's kdc profile that describe krbtgt/REALM@REALM,
# as (section, [(name, value)]). easyrsa_py encodes that structure itself.
_KDC_SECTIONS = {
    "kdc_princ_name": (
        ("realm", "EXP:0,GeneralString:${ENV::EASYRSA_KDC_REALM}"),
        ("principal_name", "EXP:1,SEQUENCE:kdc_principal_seq"),
    ),
    "kdc_principal_seq": (
        ("name_type", "EXP:0,INTEGER:1"),
        ("name_string", "EXP:1,SEQUENCE:kdc_principals"),
    ),
    "kdc_principals": (
        ("princ1", "GeneralString:krbtgt"),
        ("princ2", "GeneralString:${ENV::EASYRSA_KDC_REALM}"),
    ),
}


def _check_kdc_sections(line: ProfileLine, sections: Mapping[str, tuple[ProfileLine, ...]]) -> None:
    """Reject a kdc profile whose principal sections differ from easy-rsa's.

    easyrsa_py does not evaluate OpenSSL's ASN1_generate_nconf() sections,
    so it only accepts the principal that easy-rsa's file describes. A
    built-in profile has no sections and uses the same principal.
    """
    if not sections:
        return
    found = {
        name: tuple((entry.name, entry.value) for entry in entries)
        for name, entries in sections.items()
        if name in _KDC_SECTIONS
    }
    if found != _KDC_SECTIONS:
        raise _fail(
            line,
            "the [kdc_princ_name] sections differ from easy-rsa's kdc profile; easyrsa_py "
            "only builds the principal krbtgt/REALM@REALM from EASYRSA_KDC_REALM.",
        )


def _kdc_principal(line: ProfileLine, context: ExtensionContext) -> x509.OtherName:
    """Encode krbtgt/REALM@REALM as a KRB5PrincipalName (RFC 4556 section 3.2.2)."""
    realm = context.environment.get("EASYRSA_KDC_REALM") or os.environ.get("EASYRSA_KDC_REALM")
    if not realm:
        raise _fail(line, "the kdc type needs EASYRSA_KDC_REALM; set it in vars.")

    def general_string(text: str) -> bytes:
        return der.tlv(0x1B, text.encode("utf-8"))

    def explicit(number: int, content: bytes) -> bytes:
        return der.tlv(0xA0 + number, content)

    principal_name = der.sequence(
        explicit(0, der.integer(1)),
        explicit(1, der.sequence(general_string("krbtgt"), general_string(realm))),
    )
    value = der.sequence(explicit(0, general_string(realm)), explicit(1, principal_name))
    return x509.OtherName(ObjectIdentifier(_KRB5_PRINCIPAL_NAME_OID), value)


def _issuer_alt_name(
    line: ProfileLine, context: ExtensionContext, *_: Any
) -> x509.IssuerAlternativeName | None:
    if line.value != "issuer:copy":
        return x509.IssuerAlternativeName(parse_general_names(line.value, line))
    certificate = context.issuer_certificate
    if certificate is None:
        return None
    # OpenSSL 3.0 writes an empty issuerAltName when the issuer has no
    # subjectAltName to copy.
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return x509.IssuerAlternativeName([])
    return x509.IssuerAlternativeName(list(names.value))


def _ns_cert_type(line: ProfileLine, *_: Any) -> x509.UnrecognizedExtension:
    bits = 0
    for item in _items(line.value):
        if item not in _NS_CERT_TYPE_BITS:
            raise _fail(
                line, f"unknown type {item!r}; expected one of {', '.join(_NS_CERT_TYPE_BITS)}."
            )
        bits |= 0x80 >> _NS_CERT_TYPE_BITS[item]
    return x509.UnrecognizedExtension(NS_CERT_TYPE_OID, _bit_string(bits))


def _bit_string(bits: int) -> bytes:
    """DER BIT STRING of one byte with the trailing zero bits left out, as DER requires."""
    if bits == 0:
        return der.tlv(0x03, b"\x00")
    unused = (bits & -bits).bit_length() - 1
    return der.tlv(0x03, bytes([unused, bits]))


def _ns_comment(line: ProfileLine, *_: Any) -> x509.UnrecognizedExtension:
    try:
        data = line.value.encode("ascii")
    except UnicodeEncodeError:
        raise _fail(line, "the comment must be plain ASCII text.") from None
    return x509.UnrecognizedExtension(NS_COMMENT_OID, der.tlv(0x16, data))


def _crl_distribution_points(line: ProfileLine, *_: Any) -> x509.CRLDistributionPoints:
    names = parse_general_names(line.value, line)
    return x509.CRLDistributionPoints(
        [x509.DistributionPoint([name], None, None, None) for name in names]
    )


def add_default_key_identifiers(
    extensions: list[x509.Extension[x509.ExtensionType]],
    lines: Iterable[ProfileLine],
    context: ExtensionContext,
) -> list[x509.Extension[x509.ExtensionType]]:
    """Append the key identifiers OpenSSL 3.0 adds to certificates whose profile omits them.

    `openssl ca`, `req -x509` and `x509` add subjectKeyIdentifier = hash and
    authorityKeyIdentifier = keyid, issuer at the end of a version 3
    certificate's extensions, unless a profile line names them (even as
    'none') or the request supplied them through --copy-ext. A certificate without any extension stays version 1, and gets
    none of them.
    """
    if not extensions:
        return extensions
    named = {line.name for line in lines}
    present = {extension.oid for extension in extensions}
    defaults = [
        ("subjectKeyIdentifier", "hash", ExtensionOID.SUBJECT_KEY_IDENTIFIER),
        ("authorityKeyIdentifier", "keyid, issuer", ExtensionOID.AUTHORITY_KEY_IDENTIFIER),
    ]
    added = [
        ProfileLine(name, value, False, "OpenSSL default", None)
        for name, value, oid in defaults
        if name not in named and oid not in present
    ]
    return extensions + build_extensions(added, context)


def extension_oid_of(name: str) -> ObjectIdentifier | None:
    """Return the OID of a profile line name, or None if it is not one easyrsa_py builds."""
    return {
        "basicConstraints": ExtensionOID.BASIC_CONSTRAINTS,
        "keyUsage": ExtensionOID.KEY_USAGE,
        "extendedKeyUsage": ExtensionOID.EXTENDED_KEY_USAGE,
        "subjectKeyIdentifier": ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        "authorityKeyIdentifier": ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        "subjectAltName": ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        "issuerAltName": ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        "nsCertType": NS_CERT_TYPE_OID,
        "nsComment": NS_COMMENT_OID,
        "crlDistributionPoints": ExtensionOID.CRL_DISTRIBUTION_POINTS,
    }.get(name)
