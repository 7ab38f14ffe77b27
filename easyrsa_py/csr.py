"""Certificate requests: the subject from the settings, building, loading, verifying.

gen-req in easy-rsa 3.2.7 runs `openssl req -new` with easy-rsa's config.
The subject has the common name alone (EASYRSA_DN=cn_only) or the
organisational fields then the common name (EASYRSA_DN=org). Without
--batch, OpenSSL prompts for each field on stderr with the prompt lines
below, which scripts answer: an empty line keeps the default shown in
brackets and '.' leaves the field out.
"""

from __future__ import annotations

import string
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509.oid import NameOID

from easyrsa_py.errors import EasyRSAError, FileFormatError, UsageError
from easyrsa_py.passphrase import read_line_unbuffered

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import (
        CertificateIssuerPrivateKeyTypes,
    )

    from easyrsa_py.settings import Settings

# The common name easy-rsa's vars default to. gen-req replaces it with the
# file name base, so each request is named after its files.
PLACEHOLDER_COMMON_NAME = "ChangeMe"

# OpenSSL req's introduction before the first DN prompt (OpenSSL 3.0).
DN_PROMPT_INTRODUCTION = (
    "-----\n"
    "You are about to be asked to enter information that will be incorporated\n"
    "into your certificate request.\n"
    "What you are about to enter is what is called a Distinguished Name or a DN.\n"
    "There are quite a few fields but you can leave some blank\n"
    "For some fields there will be a default value,\n"
    "If you enter '.', the field will be left blank.\n"
    "-----\n"
)


@dataclass(frozen=True)
class SubjectField:
    """One DN field of easy-rsa's config: its attribute, prompt and limits."""

    oid: x509.ObjectIdentifier
    prompt: str
    min_length: int = 0
    max_length: int | None = None


# The fields and prompts of the [cn_only] and [org] sections of easy-rsa
# 3.2.7's openssl-easyrsa.cnf, in the order OpenSSL prompts for them.
_COMMON_NAME = SubjectField(
    NameOID.COMMON_NAME, "Common Name (eg: your user, host, or server name)", max_length=64
)
_ORG_FIELDS = (
    SubjectField(NameOID.COUNTRY_NAME, "Country Name (2 letter code)", 2, 2),
    SubjectField(NameOID.STATE_OR_PROVINCE_NAME, "State or Province Name (full name)"),
    SubjectField(NameOID.LOCALITY_NAME, "Locality Name (eg, city)"),
    SubjectField(NameOID.ORGANIZATION_NAME, "Organization Name (eg, company)"),
    SubjectField(NameOID.ORGANIZATIONAL_UNIT_NAME, "Organizational Unit Name (eg, section)"),
    _COMMON_NAME,
    SubjectField(NameOID.EMAIL_ADDRESS, "Email Address", max_length=64),
    SubjectField(NameOID.SERIAL_NUMBER, "Serial-number (eg, device serial-number)"),
)


class RequestError(EasyRSAError):
    """A certificate request cannot be read, or its signature does not verify."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


def request_common_name(settings: Settings, name: str) -> str:
    """Return the default common name of gen-req NAME: --req-cn, else NAME."""
    if settings.req_cn == PLACEHOLDER_COMMON_NAME:
        return name
    return settings.req_cn


def subject_defaults(settings: Settings, common_name: str) -> list[tuple[SubjectField, str]]:
    """List the DN fields of EASYRSA_DN with their default values."""
    if settings.dn_mode == "cn_only":
        return [(_COMMON_NAME, common_name)]
    values = {
        NameOID.COUNTRY_NAME: settings.req_country,
        NameOID.STATE_OR_PROVINCE_NAME: settings.req_province,
        NameOID.LOCALITY_NAME: settings.req_city,
        NameOID.ORGANIZATION_NAME: settings.req_org,
        NameOID.ORGANIZATIONAL_UNIT_NAME: settings.req_ou,
        NameOID.COMMON_NAME: common_name,
        NameOID.EMAIL_ADDRESS: settings.req_email,
        NameOID.SERIAL_NUMBER: settings.req_serial,
    }
    return [(field, values[field.oid]) for field in _ORG_FIELDS]


def build_subject(
    fields: Sequence[tuple[SubjectField, str]],
    ask: Callable[[SubjectField, str], str | None] | None = None,
) -> x509.Name:
    """Build the request subject from the fields, asking for each unless `ask` is None.

    `ask` returns the typed line, or None at end of input. Empty values are
    left out, as OpenSSL leaves them out. Raises UsageError for a value
    outside the field's length limits and for a subject without any field.
    """
    attributes: list[x509.NameAttribute[str]] = []
    for field, default in fields:
        value = default if ask is None else _answer(field, default, ask)
        if not value:
            continue
        _check_length(field, value)
        attribute = x509.NameAttribute(field.oid, value)
        problem = string_type_problem(attribute)
        if problem is not None:
            raise UsageError(f"Invalid value {value!r} for '{field.prompt}': {problem}.")
        attributes.append(attribute)
    if not attributes:
        raise UsageError(
            "The request subject is empty: every DN field was left blank. "
            "Give a common name with --req-cn or at the prompt."
        )
    return x509.Name([x509.RelativeDistinguishedName([attribute]) for attribute in attributes])


# The characters of the ASN.1 PrintableString type (X.680).
_PRINTABLE_CHARACTERS = frozenset(string.ascii_letters + string.digits + " '()+,-./:=?")


def string_type_problem(attribute: x509.NameAttribute[str]) -> str | None:
    """Return why the value does not fit the attribute's ASN.1 string type, or None if it fits.

    countryName and serialNumber are PrintableStrings and emailAddress is an
    IA5String, as in OpenSSL. `cryptography` fails with a parse error when
    it encodes such a value, and OpenSSL rejects it as illegal characters.
    """
    kind = attribute._type.name
    value = attribute.value
    if kind == "PrintableString" and not set(value) <= _PRINTABLE_CHARACTERS:
        return "only letters, digits, spaces and the characters '()+,-./:=? fit in a PrintableString"
    if kind == "IA5String" and not value.isascii():
        return "an IA5String allows only ASCII characters"
    return None


def _answer(field: SubjectField, default: str, ask: Callable[[SubjectField, str], str | None]) -> str:
    line = ask(field, default)
    if line is None or line == "":
        return default
    if line == ".":
        return ""
    return line


def _check_length(field: SubjectField, value: str) -> None:
    length = len(value.encode("utf-8"))
    if length < field.min_length or (field.max_length is not None and length > field.max_length):
        limit = (
            f"exactly {field.min_length}"
            if field.min_length == field.max_length
            else f"at most {field.max_length}"
        )
        raise UsageError(
            f"Invalid value {value!r} for '{field.prompt}': it must be {limit} bytes long."
        )


def terminal_prompter(stdin: TextIO | None = None, stderr: TextIO | None = None) -> Callable[[SubjectField, str], str | None]:
    """Return an `ask` function that prompts on stderr as OpenSSL req does.

    Lines are read unbuffered, so that input meant for a later prompt
    (a confirmation) stays in the stream.
    """
    input_stream = stdin if stdin is not None else sys.stdin
    output_stream = stderr if stderr is not None else sys.stderr
    introduced = False

    def ask(field: SubjectField, default: str) -> str | None:
        nonlocal introduced
        if not introduced:
            output_stream.write(DN_PROMPT_INTRODUCTION)
            introduced = True
        output_stream.write(f"{field.prompt} [{default}]:")
        output_stream.flush()
        line = _read_line(input_stream)
        return None if line is None else line.rstrip("\r\n")

    return ask


def _read_line(stream: TextIO) -> str | None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        text = stream.readline()
        return text or None
    data = read_line_unbuffered(fd)
    return None if data is None else data.decode("utf-8", errors="replace")


def build_request(
    key: CertificateIssuerPrivateKeyTypes,
    subject: x509.Name,
    extensions: Sequence[x509.Extension[x509.ExtensionType]],
    digest: str,
) -> x509.CertificateSigningRequest:
    """Build and sign a request, as `openssl req -new` does with easy-rsa's config."""
    from easyrsa_py.signing import signature_hash

    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    for extension in extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(key, signature_hash(key, digest))


def load_request(path: Path) -> x509.CertificateSigningRequest:
    """Read a PEM request and check its signature.

    Raises RequestError naming the file when it is missing, is not a PEM
    certificate request, or its signature does not verify.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RequestError(path, f"The request file {path} does not exist.") from None
    except OSError as error:
        raise RequestError(path, f"Cannot read the request file {path}: {error.strerror}.") from None
    return parse_request(data, path)


def _check_request_framing(data: bytes, path: Path) -> None:
    """Name a cut-short or garbled PEM block, which cryptography reports only as malformed framing."""
    from easyrsa_py.certificate import pem_blocks

    try:
        pem_blocks(data, "CERTIFICATE REQUEST")
        pem_blocks(data, "NEW CERTIFICATE REQUEST")
    except ValueError as error:
        raise FileFormatError(path, None, f"not a valid PEM certificate request ({error}).") from None


def parse_request(data: bytes, path: Path) -> x509.CertificateSigningRequest:
    """Parse PEM request bytes read from `path` and check the signature."""
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in data and b"-----BEGIN NEW CERTIFICATE REQUEST-----" not in data:
        raise FileFormatError(path, None, "not a PEM certificate request (no 'BEGIN CERTIFICATE REQUEST' line).")
    _check_request_framing(data, path)
    try:
        request = x509.load_pem_x509_csr(data)
        request.subject  # noqa: B018 - parse the subject now, so errors name the file
        valid = request.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as error:
        raise FileFormatError(path, None, f"not a valid certificate request ({error}).") from None
    try:
        request.extensions  # noqa: B018 - parse the extensions now, as for the subject
    except (x509.DuplicateExtension, ValueError) as error:
        # RFC 5280 allows one instance of each extension, and a value that
        # cryptography cannot decode would fail later, during signing.
        raise FileFormatError(path, None, f"its extensions cannot be read ({error}).") from None
    if not valid:
        raise RequestError(
            path,
            f"The signature of the request {path} does not verify: the request was changed "
            "after it was signed, or is corrupt. Ask its owner for a new request.",
        )
    return request


def request_pem(request: x509.CertificateSigningRequest) -> bytes:
    """Return the request as PEM, the form gen-req writes."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return request.public_bytes(Encoding.PEM)
