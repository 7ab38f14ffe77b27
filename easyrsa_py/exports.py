"""set-pass and the export-p12, export-p7, export-p8 and export-p1 commands.

The commands take the arguments easy-rsa 3.2.7 takes and write the files
it writes, with the formats OpenSSL 3.0 gives them:

- set-pass NAME [nopass] [file]: private/NAME.key (or the path NAME with
  `file`) as PKCS#8, encrypted with AES-256-CBC unless `nopass`.
- export-p12 NAME: private/NAME.p12 (PBES2 AES-256-CBC bags, SHA-256 MAC)
  and inline/private/NAME.p12-inline.
- export-p7 NAME: issued/NAME.p7b, the certificate and the CA certificate.
- export-p8 NAME: private/NAME.p8, the key as PKCS#8.
- export-p1 NAME: private/NAME.p1, the RSA key as PKCS#1.

Every export command accepts every option word (noca, nokey, nopass, nofn,
legacy, and easy-rsa 3.1's usefn) and ignores those that do not apply to
it, as easy-rsa 3.2.7 does.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from easyrsa_py.certificate import CertificateFile
from easyrsa_py.errors import (
    CertificateNotFound,
    CryptoMismatch,
    FileFormatError,
    PassphraseError,
    UsageError,
)
from easyrsa_py.files import atomic_write, atomic_write_all
from easyrsa_py.inline import common_name as inline_common_name
from easyrsa_py.inline import inline_disabled, prepare_inline_folders
from easyrsa_py.keys import (
    PEM_PROMPTS,
    PKCS8_PROMPTS,
    PKCS12_PROMPTS,
    PassphrasePrompts,
    PrivateKeyNotFound,
    load_private_key,
    new_key_passphrase,
    nopass_requested,
    private_key_pem,
    restrict_existing_file,
    write_private_key,
)
from easyrsa_py.revoke import check_file_name_base

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
    from cryptography.hazmat.primitives.serialization import (
        KeySerializationEncryption,
    )

    from easyrsa_py.commands import Context

_SET_PASS_OPTIONS = ("nopass", "file")
_EXPORT_OPTIONS = ("noca", "nokey", "nopass", "nofn", "usefn", "legacy")
_KIND_NAMES = {"p12": "PKCS#12", "p7": "PKCS#7", "p8": "PKCS#8", "p1": "PKCS#1"}
# OpenSSL 3.0 runs PBKDF2 and the PKCS#12 MAC with this many iterations.
_PKCS12_ITERATIONS = 2048


def set_pass(context: Context, arguments: list[str]) -> int:
    """Change the passphrase of a private key, or remove it with `nopass`.

    The key is rewritten as PKCS#8 in one atomic step and keeps its file
    mode unless other users may read it (see restrict_existing_file), where
    easy-rsa 3.2.7 resets the mode to 0600.
    """
    command = context.command_name
    if not arguments or not arguments[0]:
        raise UsageError(
            f"Missing key name: usage is '{command} NAME [nopass] [file]'. "
            "Run 'easyrsa help set-pass' for details."
        )
    name, options = arguments[0], arguments[1:]
    for option in options:
        if option not in _SET_PASS_OPTIONS:
            raise UsageError(
                f"Unknown option '{option}' for {command}: expected 'nopass' or 'file'."
            )
    if "file" in options:
        path = Path(name)
    else:
        check_file_name_base(name)
        path = context.layout.private_key(name)
    if not path.is_file():
        raise PrivateKeyNotFound(
            path, f"Missing private key: expected the key file at {path}."
        )

    console = context.console
    encrypt = not nopass_requested(context.settings, "nopass" in options)
    next_step = " You will then set a new passphrase." if encrypt else ""
    console.notice(f"If {path} is encrypted, give its current passphrase.{next_step}")
    key = load_private_key(path, context.settings.passin)
    passphrase = new_key_passphrase(
        context.settings, console, f"the key {path}", nopass="nopass" in options
    )
    restrict_existing_file(path)
    write_private_key(path, private_key_pem(key, passphrase))

    change = "changed" if passphrase is not None else "removed"
    console.notice(f"The passphrase of {path} was {change}.")
    return 0


@dataclass
class ExportRequest:
    """The parsed arguments of one export command."""

    kind: str
    name: str
    want_ca: bool
    want_key: bool
    nopass: bool
    friendly_name: str | None
    legacy: bool


def parse_export_arguments(
    context: Context, arguments: list[str], kind: str
) -> ExportRequest:
    """Read `NAME [OPTION...]` as easy-rsa 3.2.7's export commands do."""
    if not arguments or not arguments[0]:
        raise UsageError(
            f"Missing name: usage is 'export-{kind} NAME [OPTIONS]'. "
            f"Run 'easyrsa help export-{kind}' for the options."
        )
    name = arguments[0]
    check_file_name_base(name)
    default_name = context.settings.raw.get("EASYRSA_P12_FR_NAME") or name
    request = ExportRequest(kind, name, True, True, False, default_name, False)
    for option in arguments[1:]:
        _apply_export_option(request, option, default_name)
    if kind in ("p8", "p1"):
        request.want_key = True
    if kind == "p12":
        _check_friendly_name(request.friendly_name)
    return request


def _check_friendly_name(friendly_name: str | None) -> None:
    """Raise UsageError for a friendlyName that is not valid UTF-8, as a non-UTF-8 NAME or variable gives."""
    if friendly_name is None:
        return
    try:
        friendly_name.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"Invalid friendlyName {friendly_name!r} (from EASYRSA_P12_FR_NAME, or else NAME): "
            "it is not valid UTF-8. Set EASYRSA_P12_FR_NAME to a UTF-8 name, or add option 'nofn'."
        ) from None


def _apply_export_option(
    request: ExportRequest, option: str, default_name: str
) -> None:
    if option == "noca":
        request.want_ca = False
    elif option == "nokey":
        request.want_key = False
    elif option == "nopass":
        request.nopass = True
    elif option == "nofn":
        request.friendly_name = None
    elif option == "usefn":
        # easy-rsa 3.1 needed 'usefn' to set the friendlyName, which 3.2
        # sets by default.
        request.friendly_name = default_name
    elif option == "legacy":
        request.legacy = True
    else:
        expected = ", ".join(_EXPORT_OPTIONS)
        raise UsageError(
            f"Unknown option '{option}' for export-{request.kind}: expected one of {expected}."
        )


def export(context: Context, arguments: list[str], kind: str) -> int:
    """Export the certificate or key of NAME as PKCS#12, #7, #8 or #1."""
    request = parse_export_arguments(context, arguments, kind)
    _check_inputs(context, request)
    if kind == "p12":
        written = _export_p12(context, request)
    elif kind == "p7":
        written = _export_p7(context, request)
    elif kind == "p8":
        written = _export_p8(context, request)
    elif kind == "p1":
        written = _export_p1(context, request)
    else:
        raise ValueError(f"unknown export kind {kind!r}")
    context.console.notice(
        f"Exported the {_KIND_NAMES[kind]} file of {request.name} to:\n* {written}"
    )
    return 0


def _check_inputs(context: Context, request: ExportRequest) -> None:
    """Check the CA, key and certificate in easy-rsa 3.2.7's order.

    A missing CA certificate (p12, p7) or key (p12) turns into 'noca' or
    'nokey' once the user confirms. --batch makes both errors.
    """
    layout = context.layout
    kind = request.kind
    if request.want_ca and kind in ("p12", "p7") and not layout.ca_cert.is_file():
        _confirm_missing(
            context,
            "CA certificate",
            layout.ca_cert,
            "noca",
            f"The {kind} file will not include the CA certificate.",
        )
        request.want_ca = False
    key_path = layout.private_key(request.name)
    if request.want_key and kind != "p7" and not key_path.is_file():
        if kind != "p12":
            raise PrivateKeyNotFound(
                key_path, f"Missing private key: expected it at {key_path}."
            )
        _confirm_missing(
            context,
            "private key",
            key_path,
            "nokey",
            "The p12 file will not include the private key.",
        )
        request.want_key = False
    cert_path = layout.issued_cert(request.name)
    if kind in ("p12", "p7") and not cert_path.is_file():
        raise CertificateNotFound(
            cert_path, f"Missing certificate: expected it at {cert_path}."
        )


def _confirm_missing(
    context: Context, what: str, path: Path, option: str, consequence: str
) -> None:
    console = context.console
    if context.settings.batch:
        raise _missing_error(what, path, option)
    console.warn(f"Missing {what}: expected it at {path}.")
    console.confirm(
        f"Continue without the {what} (as with option '{option}')? ",
        "yes",
        consequence,
    )


def _missing_error(
    what: str, path: Path, option: str
) -> CertificateNotFound | PrivateKeyNotFound:
    message = (
        f"Missing {what}: expected it at {path}. "
        f"Add option '{option}' to export without it."
    )
    if option == "nokey":
        return PrivateKeyNotFound(path, message)
    return CertificateNotFound(path, message)


def _load_certificates(path: Path) -> list[x509.Certificate]:
    """Load every PEM certificate in `path`, as OpenSSL's -certfile does."""
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except ValueError:
        raise FileFormatError(path, None, "no valid PEM certificate found.") from None
    return certificates


def _check_key_matches(
    key: PrivateKeyTypes, certificate: x509.Certificate, key_path: Path, cert_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    encoding = serialization.Encoding.DER
    form = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        encoding, form
    ) != certificate.public_key().public_bytes(encoding, form):
        raise CryptoMismatch(
            f"The private key {key_path} does not match the certificate {cert_path}. "
            "Export the key and certificate that belong together."
        )


def _export_p12(context: Context, request: ExportRequest) -> Path:
    from cryptography.hazmat.primitives.serialization import pkcs12

    layout = context.layout
    cert_path = layout.issued_cert(request.name)
    certificates = _load_certificates(cert_path)
    certificate, extra = certificates[0], certificates[1:]
    if request.want_ca:
        extra += _load_certificates(layout.ca_cert)
    key = None
    if request.want_key:
        key_path = layout.private_key(request.name)
        key = load_private_key(key_path, context.settings.passin)
        _check_key_matches(key, certificate, key_path, cert_path)
    passphrase = _output_passphrase(context, request, PKCS12_PROMPTS)
    _check_pkcs12_passphrase(passphrase, request.name)
    # OpenSSL applies -name only to the bags of a matching key and certificate.
    friendly_name = request.friendly_name if key is not None else None
    data = pkcs12.serialize_key_and_certificates(
        friendly_name.encode() if friendly_name else None,
        key,  # type: ignore[arg-type]
        certificate,
        extra or None,
        _pkcs12_encryption(passphrase, request.legacy),
    )

    output = layout.root / "private" / f"{request.name}.p12"
    writes: list[tuple[Path, bytes, int | None]] = [(output, data, 0o600)]
    inline = _inline_p12(context, request.name, certificate, data)
    if inline is not None:
        writes.append(inline)
    for path, _, _ in writes:
        restrict_existing_file(path)
    atomic_write_all(writes)
    if inline is not None:
        context.console.notice(
            f"A base64 inline copy of the p12 file is at:\n* {inline[0]}"
        )
    return output


def _check_pkcs12_passphrase(passphrase: bytes | None, name: str) -> None:
    """Raise PassphraseError for a passphrase that cryptography's PKCS#12 writer rejects.

    cryptography 48 requires UTF-8 there, where OpenSSL 3.0 takes any bytes.
    """
    if passphrase is None:
        return
    try:
        passphrase.decode("utf-8")
    except UnicodeDecodeError:
        raise PassphraseError(
            f"The passphrase for the p12 file of {name} is not valid UTF-8, which PKCS#12 "
            "export requires. Give a UTF-8 passphrase with --passout."
        ) from None


def _output_passphrase(
    context: Context, request: ExportRequest, prompts: PassphrasePrompts
) -> bytes | None:
    return new_key_passphrase(
        context.settings,
        context.console,
        f"the {request.kind} file of {request.name}",
        nopass=request.nopass,
        prompts=prompts,
    )


def _pkcs12_encryption(
    passphrase: bytes | None, legacy: bool
) -> KeySerializationEncryption:
    """Choose OpenSSL 3.0's PKCS#12 algorithms, or its -legacy ones.

    cryptography cannot encrypt with an empty password, so 'nopass' writes
    unencrypted bags, still under a SHA-256 MAC with the empty password.
    OpenSSL encrypts the bags with the empty password, which protects
    nothing either.
    """
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    if not passphrase:
        return serialization.NoEncryption()
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(
        _PKCS12_ITERATIONS
    )
    if legacy:
        # NOTE: OpenSSL's -legacy encrypts the certificates with RC2-40,
        # which cryptography cannot write, so 3DES protects them here too.
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        builder = builder.hmac_hash(hashes.SHA1())
    else:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        builder = builder.hmac_hash(hashes.SHA256())
    return builder.build(passphrase)


def _inline_p12(
    context: Context, name: str, certificate: x509.Certificate, data: bytes
) -> tuple[Path, bytes, int | None] | None:
    """Build inline/private/NAME.p12-inline, or return None when inline files are off.

    The layout (three comment lines, a blank line, and base64 in 64-column
    lines between <pkcs12> tags) is what easy-rsa 3.2.7 writes.
    """
    from cryptography.hazmat.primitives import serialization

    if inline_disabled(context.settings, context.console):
        return None
    # NOTE: with several commonNames easy-rsa 3.2.7 writes the last one,
    # and this the first, as the plain inline file's header has it.
    der = certificate.public_bytes(serialization.Encoding.DER)
    common_name = inline_common_name(CertificateFile.from_der(der))
    if common_name is None:
        context.console.warn(
            f"No inline p12 file was written: the certificate of {name} has no commonName."
        )
        return None
    encoded = base64.b64encode(data).decode("ascii")
    lines = [encoded[start : start + 64] for start in range(0, len(encoded), 64)]
    text = (
        "# Easy-RSA Inline file\n"
        "# Inline type: BASE64 pkcs12\n"
        f"# commonName: {common_name}\n"
        "\n"
        "<pkcs12>\n" + "\n".join(lines) + "\n</pkcs12>\n"
    )
    prepare_inline_folders(context.layout)
    folder = context.layout.root / "inline" / "private"
    return folder / f"{name}.p12-inline", text.encode(), 0o600


def _export_p7(context: Context, request: ExportRequest) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    layout = context.layout
    certificates = _load_certificates(layout.issued_cert(request.name))
    if request.want_ca:
        certificates += _load_certificates(layout.ca_cert)
    data = pkcs7.serialize_certificates(certificates, serialization.Encoding.PEM)
    output = layout.root / "issued" / f"{request.name}.p7b"
    # OpenSSL's crl2pkcs7 creates the file with the umask's mode.
    atomic_write(output, data)
    return output


def _export_p8(context: Context, request: ExportRequest) -> Path:
    key = load_private_key(
        context.layout.private_key(request.name), context.settings.passin
    )
    passphrase = _output_passphrase(context, request, PKCS8_PROMPTS)
    output = context.layout.root / "private" / f"{request.name}.p8"
    restrict_existing_file(output)
    write_private_key(output, private_key_pem(key, passphrase))
    return output


def _export_p1(context: Context, request: ExportRequest) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key_path = context.layout.private_key(request.name)
    key = load_private_key(key_path, context.settings.passin)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError(
            f"export-p1 needs an RSA key, but {key_path} is not one. "
            "Use export-p8 for EC and Edwards keys."
        )
    passphrase = _output_passphrase(context, request, PEM_PROMPTS)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        encryption,
    )
    output = context.layout.root / "private" / f"{request.name}.p1"
    restrict_existing_file(output)
    write_private_key(output, data)
    return output
