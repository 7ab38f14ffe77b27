"""Create and reset a PKI and its CA: init-pki, build-ca, renew-ca, self-sign-*, import-ca.

The files, folders and messages follow easy-rsa 3.2.7, so the real script
can keep working on a PKI these commands made. Where 3.2.7 can lose data
(init-pki on a folder that is not a PKI, build-ca over an index with
records), these commands reject the input instead.
"""

from __future__ import annotations

import dataclasses
import datetime
import getpass
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from easyrsa_py import csr, keys, profiles
from easyrsa_py.certificate import read_certificate
from easyrsa_py.errors import (
    EasyRSAError,
    FileFormatError,
    PassphraseError,
    UsageError,
)
from easyrsa_py.files import atomic_write, atomic_write_all, make_dirs
from easyrsa_py.lock import LOCK_FILE_NAME, PKILock
from easyrsa_py.names import attribute_short_name, attribute_value_bytes
from easyrsa_py.passphrase import read_line_unbuffered, read_passphrase
from easyrsa_py.pki import PKILayout, load_ca_certificate, load_ca_key
from easyrsa_py.x509_text import render_certificate

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import (
        CertificateIssuerPrivateKeyTypes,
    )

    from easyrsa_py.commands import Context
    from easyrsa_py.console import Console
    from easyrsa_py.settings import Settings

logger = logging.getLogger(__name__)


class PKIConflict(EasyRSAError):
    """The command would overwrite or delete something it must keep."""


# --- init-pki ------------------------------------------------------------------

# Entries easy-rsa 3.0 to 3.2.7 and easyrsa_py put at the top of a PKI folder.
# init-pki deletes a folder only when every entry is one of these, so a
# mistyped --pki that names a home or project folder is never deleted.
_PKI_ENTRIES = frozenset(
    {
        "private",
        "reqs",
        "issued",
        "certs_by_serial",
        "revoked",
        "renewed",
        "expired",
        "inline",
        "x509-types",
        "ecparams",
        "ca.crt",
        "crl.pem",
        "crl.der",
        "dh.pem",
        "index.txt",
        "index.txt.old",
        "index.txt.attr",
        "index.txt.attr.old",
        "serial",
        "serial.old",
        "vars",
        "vars.example",
        "openssl-easyrsa.cnf",
        "safessl-easyrsa.cnf",
        "lock.file",
        "peer-fp.mode",
        "expired-ca.list",
        "easyrsa-keepsafe-tls.key",
        ".rand",
        "extensions.temp",
    }
)
# Temporary names easy-rsa's sessions and easyrsa_py's atomic writes use.
_TEMPORARY_PREFIXES = ("easy-rsa-", "temp.")
_TEMPORARY_SUFFIXES = (".tmp",)

# What easy-rsa 3.2.2's 'init-pki soft' removes: everything but reqs/, vars
# and unknown files, so the requests can be signed again by a new CA.
_SOFT_RESET_ENTRIES = (
    "ca.crt",
    "crl.pem",
    "issued",
    "private",
    "inline",
    "revoked",
    "renewed",
    "expired",
    "serial",
    "serial.old",
    "index.txt",
    "index.txt.old",
    "index.txt.attr",
    "index.txt.attr.old",
    "certs_by_serial",
)
_TLS_KEY = Path("private") / "easyrsa-tls.key"
_KEPT_TLS_KEY = "easyrsa-keepsafe-tls.key"

_DEFAULT_CURVES = {"ec": "secp384r1", "ed": "ed25519"}


@dataclass(frozen=True)
class InitRequest:
    """The parsed arguments of init-pki: the reset kind and the algorithm for pki/vars."""

    soft: bool
    algo: str
    curve: str | None


def parse_init_arguments(arguments: list[str], settings: Settings) -> InitRequest:
    """Parse 3.2.7's algorithm and curve words and 3.2.2's soft and hard words.

    An `ec` or `ed` word picks that algorithm with its default curve; any
    other word is a curve name, and the algorithm follows from it, as in
    easy-rsa 3.2.7. The words override --algo and --curve.
    """
    soft = False
    algo = settings.algo
    curve = settings.curve if algo != "rsa" else None
    for word in arguments:
        if word in ("soft", "soft-reset"):
            soft = True
        elif word in ("hard", "hard-reset"):
            soft = False
        elif word == "rsa":
            algo, curve = "rsa", None
        elif word in _DEFAULT_CURVES:
            algo, curve = word, _DEFAULT_CURVES[word]
        elif word:
            algo, curve = ("ed" if word.startswith("ed") else "ec"), word
    if algo == "rsa" and settings.curve and not arguments:
        raise UsageError(
            f"The curve {settings.curve!r} (EASYRSA_CURVE, --curve) cannot be used with "
            "algo 'rsa'. Remove it, or choose --algo=ec or --algo=ed."
        )
    # Generating a throw-away key is the check that the curve exists.
    check = dataclasses.replace(settings, algo=algo, curve=curve)
    if algo != "rsa":
        keys.generate_private_key(check)
    return InitRequest(soft=soft, algo=algo, curve=curve)


def check_pki_path(root: Path) -> None:
    """Reject a PKI path that init-pki must never delete or replace.

    The rule: the path may not be the file system root, the user's home,
    the working folder or one of its parents, nor a symbolic link; an
    existing folder may contain only entries an easy-rsa PKI has.
    """
    if root.is_symlink():
        raise PKIConflict(
            f"The PKI path {root} is a symbolic link. Point --pki at the folder it names, "
            "or remove the link, then run init-pki again."
        )
    resolved = root.resolve()
    protected = {
        Path("/"),
        Path.home().resolve(),
        *Path.cwd().resolve().parents,
        Path.cwd().resolve(),
    }
    if resolved in protected:
        raise PKIConflict(
            f"Invalid PKI {root}: init-pki never deletes the root folder, the home folder or the "
            "working folder and its parents. Choose a dedicated folder with --pki."
        )
    if root.exists() and not root.is_dir():
        raise PKIConflict(
            f"The PKI path {root} exists and is not a folder. Move it away first."
        )
    if root.is_dir():
        unknown = sorted(
            entry.name for entry in root.iterdir() if not _is_pki_entry(entry.name)
        )
        if unknown:
            shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise PKIConflict(
                f"The folder {root} is not an easy-rsa PKI: it contains {shown}. init-pki only "
                "deletes folders that hold nothing but PKI files. Move those entries away, or "
                "choose another folder with --pki."
            )


def _is_pki_entry(name: str) -> bool:
    return (
        name in _PKI_ENTRIES
        or name.startswith(_TEMPORARY_PREFIXES)
        or name.endswith(_TEMPORARY_SUFFIXES)
    )


def init_pki(context: Context, arguments: list[str]) -> int:
    """Create an empty PKI, replacing an existing one after confirmation."""
    settings, console = context.settings, context.console
    request = parse_init_arguments(arguments, settings)
    root = settings.pki_dir
    check_pki_path(root)
    if root.is_dir():
        _confirm_removal(console, root, request)
        lock = None if settings.no_lockfile else PKILock(root)
        if lock is not None:
            lock.acquire()
        try:
            _clear_pki(root, request.soft)
            _write_new_pki(root, request)
        finally:
            if lock is not None:
                lock.release()
    else:
        _write_new_pki(root, request)
    console.notice(
        "'init-pki' complete; you may now create a CA or requests.\n\n"
        f"Your newly created PKI dir is:\n* {root}"
    )
    if request.algo != "rsa":
        console.notice(
            f"IMPORTANT: PKI algorithm is {_auto_configured(request)}\n\n"
            f"Using the auto-configured vars file:\n* {root / 'vars'}"
        )
    return 0


def _auto_configured(request: InitRequest) -> str:
    kind = "Elliptic" if request.algo == "ec" else "Edwards"
    return f"Auto-configured for {kind} curve '{request.curve}'"


def _confirm_removal(console: Console, root: Path, request: InitRequest) -> None:
    # The prompt and the word are easy-rsa 3.2.7's, which scripts answer.
    partially = "PARTIALLY " if request.soft else ""
    auto = f" {_auto_configured(request)}" if request.algo != "rsa" else " "
    console.confirm(
        "Confirm removal: ",
        "yes",
        f"\nWARNING!!!\n\nYou are about to {partially}remove the EASYRSA_PKI at:\n* {root}\n\n"
        f"and initialize a fresh PKI here.{auto}",
    )


def _clear_pki(root: Path, soft: bool) -> None:
    """Delete the PKI's entries except the lock file; a soft reset keeps reqs/ and vars."""
    tls_key = _read_tls_key(root) if soft else None
    names = _SOFT_RESET_ENTRIES if soft else [entry.name for entry in root.iterdir()]
    for name in names:
        if name == LOCK_FILE_NAME:
            continue
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    if tls_key is not None:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%a %b %d %H:%M:%S UTC %Y")
        header = f"# Easy-RSA TLS Key: {stamp}\n# DO NOT DELETE\n\n".encode()
        atomic_write(
            root / _KEPT_TLS_KEY, header + tls_key.rstrip(b"\n") + b"\n", mode=0o600
        )


def _read_tls_key(root: Path) -> bytes | None:
    """Return the TLS key a soft reset must keep, rejecting two different saved keys."""
    current = root / _TLS_KEY
    kept = root / _KEPT_TLS_KEY
    if not current.is_file():
        return None
    data = current.read_bytes()
    if kept.is_file() and _strip_comments(kept.read_bytes()) != _strip_comments(data):
        raise PKIConflict(
            f"The TLS keys {current} and {kept} differ, and only one of them is in use. "
            "Delete the one your VPN no longer uses, then run init-pki soft again."
        )
    return data


def _strip_comments(data: bytes) -> bytes:
    lines = [
        line for line in data.splitlines() if line.strip() and not line.startswith(b"#")
    ]
    return b"\n".join(lines)


def _write_new_pki(root: Path, request: InitRequest) -> None:
    for folder in ("issued", "private", "reqs"):
        make_dirs(root / folder)
    writes: list[tuple[Path, bytes, int | None]] = [
        (root / "vars.example", vars_text(None).encode(), None)
    ]
    if request.algo != "rsa":
        writes.append((root / "vars", vars_text(request).encode(), None))
    atomic_write_all(writes)


def vars_text(request: InitRequest | None) -> str:
    """Return the vars template, with the algorithm lines set when `request` picks ec or ed.

    The file holds only comments and `set_var` lines, so easy-rsa reads it
    the same way as easyrsa_py does.
    """
    algo_line = "#set_var EASYRSA_ALGO\t\trsa"
    curve_line = "#set_var EASYRSA_CURVE\t\tsecp384r1"
    if request is not None and request.algo != "rsa":
        note = f"   # -->  {_auto_configured(request)}"
        algo_line = f"set_var EASYRSA_ALGO {request.algo}{note}"
        curve_line = f"set_var EASYRSA_CURVE {request.curve}{note}"
    return _VARS_TEMPLATE.format(algo_line=algo_line, curve_line=curve_line)


_VARS_TEMPLATE = """\
# Settings for this PKI, read by easyrsa_py and by the easy-rsa script.
#
# Each setting is a line `set_var NAME value`. A line that starts with '#'
# is a comment, so every setting below keeps its built-in default until you
# remove the '#'. The command line and the environment take priority over
# set_var. A `force_set_var NAME value` line takes priority over both.
# Quote a value that contains spaces: set_var EASYRSA_REQ_ORG "Example Inc".
#
# This file is data: easyrsa_py rejects shell code in it (see --force-vars).

# The OpenSSL program the easy-rsa script runs. easyrsa_py runs no program.
#set_var EASYRSA_OPENSSL\t"openssl"

# The subject of new requests: "cn_only" (the common name alone) or "org"
# (country, province, city, organization, unit, common name and email).
#set_var EASYRSA_DN\t"cn_only"

# The fields of an "org" subject. An empty value leaves the field out.
#set_var EASYRSA_REQ_COUNTRY\t"US"
#set_var EASYRSA_REQ_PROVINCE\t"California"
#set_var EASYRSA_REQ_CITY\t"San Francisco"
#set_var EASYRSA_REQ_ORG\t"Copyleft Certificate Co"
#set_var EASYRSA_REQ_EMAIL\t"me@example.net"
#set_var EASYRSA_REQ_OU\t\t"My Organizational Unit"

# Keep the field order of a request's subject when it is signed.
#set_var EASYRSA_PRESERVE_DN\t1

# Write new private keys without a passphrase.
#set_var EASYRSA_NO_PASS\t1

# The size in bits of new RSA keys.
#set_var EASYRSA_KEY_SIZE\t2048

# The key algorithm: rsa, ec (elliptic curve) or ed (Edwards curve), and
# the curve for ec and ed, such as secp384r1, prime256v1, ed25519 or ed448.
{algo_line}
{curve_line}

# How many days a new CA certificate is valid.
#set_var EASYRSA_CA_EXPIRE\t3650

# How many days a newly signed certificate is valid.
#set_var EASYRSA_CERT_EXPIRE\t825

# How many days a new CRL is valid; publish a new one before then.
#set_var EASYRSA_CRL_DAYS\t180

# Random serial numbers ("yes") or sequential ones from pki/serial ("no").
#set_var EASYRSA_RAND_SN\t"yes"

# show-expire lists certificates that expire within this many days.
#set_var EASYRSA_PRE_EXPIRY_WINDOW\t90

# Add the common name as a subjectAltName when signing.
#set_var\tEASYRSA_AUTO_SAN\t1

# Mark these extensions critical in the certificates signed.
#set_var\tEASYRSA_BC_CRIT\t\t1
#set_var\tEASYRSA_KU_CRIT\t\t1
#set_var\tEASYRSA_EKU_CRIT\t1
#set_var\tEASYRSA_SAN_CRIT\t1

# Do not write the inline files for OpenVPN in pki/inline.
#set_var\tEASYRSA_NO_INLINE\t1
"""


# --- the CA certificate -------------------------------------------------------

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha512-224": hashes.SHA512_224,
    "sha512-256": hashes.SHA512_256,
    "sha3-224": hashes.SHA3_224,
    "sha3-256": hashes.SHA3_256,
    "sha3-384": hashes.SHA3_384,
    "sha3-512": hashes.SHA3_512,
}

# The [ easyrsa_ca ] section of easy-rsa 3.2.7's openssl-easyrsa.cnf. The
# x509-types `ca` and COMMON profiles and EASYRSA_EXTRA_EXTS are inserted
# after it, and their lines replace these lines of the same name.
_CA_CONFIG_SECTION = """\
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always,issuer:always
basicConstraints = CA:true
keyUsage = cRLSign, keyCertSign
"""


def signature_hash(
    digest: str, key: CertificateIssuerPrivateKeyTypes
) -> hashes.HashAlgorithm | None:
    """Return the hash for EASYRSA_DIGEST, or None for Ed25519 and Ed448 keys, which take none."""
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    return hash_for_digest(digest)


def hash_for_digest(digest: str) -> hashes.HashAlgorithm:
    """Return the hash EASYRSA_DIGEST names, raising UsageError for an unknown name."""
    algorithm = _HASHES.get(digest.lower())
    if algorithm is None:
        raise UsageError(
            f"Invalid digest {digest!r} (EASYRSA_DIGEST, --digest): use one of {', '.join(_HASHES)}."
        )
    return algorithm()


def ca_subject(settings: Settings, common_name: str) -> x509.Name:
    """Build the subject for EASYRSA_DN with `common_name`, as gen-req builds it in batch mode."""
    return csr.build_subject(csr.subject_defaults(settings, common_name))


def ca_extensions(
    settings: Settings,
    key: CertificateIssuerPrivateKeyTypes,
    subject: x509.Name,
    serial: int,
    critical: frozenset[str] = frozenset(),
) -> list[x509.Extension[x509.ExtensionType]]:
    """Build the extensions of a self-signed CA certificate from the `ca` and COMMON profiles.

    `critical` names extensions ("basicConstraints", "keyUsage") to mark
    critical in the `ca` profile, as --bc-crit and --ku-crit do.
    """
    folders = profiles.search_folders(
        settings.pki_dir, settings.easyrsa_dir, settings.raw
    )
    profile = profiles.load_profile("ca", folders)
    type_lines = list(profile.lines)
    for name in sorted(critical):
        type_lines = profiles.make_critical(type_lines, name)
    extra_text = settings.raw.get("EASYRSA_EXTRA_EXTS")
    extra = (
        profiles.profile_lines(extra_text, "EASYRSA_EXTRA_EXTS") if extra_text else ()
    )
    lines = profiles.merge_lines(
        profiles.profile_lines(
            _CA_CONFIG_SECTION, "openssl-easyrsa.cnf [ easyrsa_ca ]"
        ),
        type_lines,
        profiles.load_profile("COMMON", folders).lines,
        extra,
    )
    public_key = key.public_key()
    context = profiles.ExtensionContext(
        subject_public_key=public_key,  # type: ignore[arg-type]
        issuer_name=subject,
        issuer_public_key=public_key,  # type: ignore[arg-type]
        serial_number=serial,
        environment=dict(settings.raw),
    )
    return profiles.build_extensions(lines, context, profile.sections)


def _critical_from_settings(settings: Settings) -> frozenset[str]:
    names = []
    if settings.raw.get("EASYRSA_BC_CRIT"):
        names.append("basicConstraints")
    if settings.raw.get("EASYRSA_KU_CRIT"):
        names.append("keyUsage")
    return frozenset(names)


def self_signed_certificate(
    key: CertificateIssuerPrivateKeyTypes,
    subject: x509.Name,
    days: int,
    digest: str,
    extensions: list[x509.Extension[x509.ExtensionType]],
    serial: int,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> x509.Certificate:
    """Sign a certificate for `key` with itself, as `openssl req -x509` does."""
    start = not_before or datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(not_after or start + datetime.timedelta(days=days))
    )
    for extension in extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(key, signature_hash(digest, key))  # type: ignore[arg-type]


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def certificate_text(certificate: x509.Certificate) -> str:
    """Render the certificate as `openssl x509 -text` and `openssl req -x509 -text` print it.

    Those print each name on one line, "CN = alice, O = Example", unlike
    the multi-line names of show-cert. The result ends with a newline.
    """
    lines = render_certificate(certificate, full=True).split("\n")
    for title, name in (
        ("Issuer", certificate.issuer),
        ("Subject", certificate.subject),
    ):
        heading = f"        {title}:"
        start = lines.index(heading)
        end = start + 1
        while end < len(lines) and lines[end].startswith(
            heading.replace(title + ":", "    ")
        ):
            end += 1
        lines[start:end] = [f"{heading} {spaced_oneline(name)}"]
    return "\n".join(lines) + "\n"


# RFC 2253 special characters: OpenSSL quotes a value that contains one.
_QUOTED_SPECIALS = frozenset(b",+;<>")


def spaced_oneline(name: x509.Name) -> str:
    """Render a name as OpenSSL 3.0's default -nameopt oneline does: "CN = a, O = b".

    Values with RFC 2253 special characters are quoted, '"' and '\\' are
    escaped with a backslash, and bytes outside printable ASCII become \\XX.
    """
    rdns = []
    for rdn in name.rdns:
        parts = [
            f"{attribute_short_name(item.oid)} = {_oneline_value(attribute_value_bytes(item))}"
            for item in rdn
        ]
        rdns.append(" + ".join(parts))
    return ", ".join(rdns)


def _oneline_value(data: bytes) -> str:
    # NOTE: checked against OpenSSL 3.0 for UTF-8, quotes and special
    # characters; leading '#' and leading or trailing spaces are not.
    text = []
    for byte in data:
        if byte < 0x20 or byte >= 0x7F:
            text.append(f"\\{byte:02X}")
        elif byte in b'"\\':
            text.append("\\" + chr(byte))
        else:
            text.append(chr(byte))
    value = "".join(text)
    return f'"{value}"' if _QUOTED_SPECIALS & set(data) else value


# --- build-ca ------------------------------------------------------------------


@dataclass(frozen=True)
class BuildCARequest:
    """The parsed arguments of build-ca."""

    subca: bool
    nopass: bool
    raw: bool


def parse_build_ca_arguments(
    arguments: list[str], settings: Settings
) -> BuildCARequest:
    subca = nopass = False
    raw = bool(settings.raw.get("EASYRSA_RAW_CA"))
    for word in arguments:
        if word in ("subca", "intca"):
            subca = True
        elif word == "nopass":
            nopass = True
        elif word == "rawca":
            raw = True
        else:
            raise UsageError(
                f"Unknown build-ca option {word!r}: expected 'nopass', 'subca' (or 'intca') or 'rawca'."
            )
    if raw and settings.batch:
        raise UsageError(
            "--raw-ca asks for the CA passphrase, so it cannot be used with --batch."
        )
    return BuildCARequest(
        subca=subca, nopass=nopass or bool(settings.raw.get("EASYRSA_NO_PASS")), raw=raw
    )


def _check_no_ca(layout: PKILayout, subca: bool) -> None:
    """Reject build-ca where it would replace a CA, its key or its records."""
    root = layout.root
    if (root / "peer-fp.mode").is_file():
        raise PKIConflict(
            f"Cannot create a CA in {root}: it holds self-signed certificates ({root / 'peer-fp.mode'}). "
            "Run init-pki first, or use another PKI."
        )
    if layout.ca_cert.exists():
        raise PKIConflict(
            f"Cannot create a CA: {layout.ca_cert} already exists. "
            "If you intended to start a new CA, run init-pki first."
        )
    if layout.ca_key.exists():
        raise PKIConflict(
            f"Cannot create a CA: the CA key {layout.ca_key} exists but {layout.ca_cert} does not, as after "
            "'build-ca subca'. Place the signed sub-CA certificate at ca.crt, or run init-pki to start a new CA."
        )
    if subca and layout.request("ca").exists():
        raise PKIConflict(
            f"Cannot create a sub-CA request: {layout.request('ca')} already exists."
        )
    if layout.index.is_file() and layout.index.stat().st_size > 0:
        raise PKIConflict(
            f"Cannot create a CA: {layout.index} already holds certificate records, which a new CA "
            "would erase. Run init-pki to start a new PKI."
        )


def build_ca(context: Context, arguments: list[str]) -> int:
    """Create the CA key and its self-signed certificate, or a sub-CA request."""
    settings, layout, console = context.settings, context.layout, context.console
    request = parse_build_ca_arguments(arguments, settings)
    _check_no_ca(layout, request.subca)
    common_name = settings.req_cn
    if common_name == "ChangeMe":
        common_name = "Easy-RSA Sub-CA" if request.subca else "Easy-RSA CA"
    subject = ca_subject(settings, common_name)
    if settings.algo != "ed":
        hash_for_digest(settings.digest)
    passphrase = (
        None if request.nopass else _ca_passphrase(settings, console, request.raw)
    )

    key = keys.generate_private_key(settings)
    key_pem = keys.private_key_pem(key, passphrase)
    if request.subca:
        output = layout.request("ca")
        output_pem = _ca_request(key, subject, settings.digest)
    else:
        output = layout.ca_cert
        serial = x509.random_serial_number()
        extensions = ca_extensions(
            settings, key, subject, serial, _critical_from_settings(settings)
        )
        certificate = self_signed_certificate(
            key, subject, settings.ca_expire, settings.digest, extensions, serial
        )
        output_pem = _pem(certificate)
        if settings.raw.get("EASYRSA_TEXT_ON"):
            # --text: easy-rsa 3.2.7 passes -text to `openssl req -x509`.
            output_pem = certificate_text(certificate).encode() + output_pem
    _write_ca_files(layout, key_pem, output, output_pem)
    if request.subca:
        console.notice(
            f"Your intermediate CA request is at:\n* {output}\n  and now must be sent to your parent CA "
            f"for signing.\n\nPrior to signing operations, place your resulting Sub-CA cert at:\n* {layout.ca_cert}"
        )
    else:
        console.notice(
            f"CA creation complete. Your new CA certificate is at:\n* {output}\n\nBuild-ca completed successfully."
        )
    return 0


def _ca_request(
    key: CertificateIssuerPrivateKeyTypes, subject: x509.Name, digest: str
) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    request = builder.sign(key, signature_hash(digest, key))  # type: ignore[arg-type]
    return request.public_bytes(serialization.Encoding.PEM)


def _write_ca_files(
    layout: PKILayout, key_pem: bytes, output: Path, output_pem: bytes
) -> None:
    """Write the CA folders and files, the key before the certificate or request.

    Every file is written out before any is renamed into place, and the
    folders this call created are removed again when a write fails, so a
    failure leaves the PKI as it was. easy-rsa 3.2.7 writes index.txt and
    serial before it makes the key, and leaves them behind when that fails.
    """
    root = layout.root
    folders = [
        root / "issued",
        root / "certs_by_serial",
        root / "revoked",
        root / "revoked" / "certs_by_serial",
        root / "revoked" / "private_by_serial",
    ]
    created = [folder for folder in folders if not folder.is_dir()]
    try:
        for folder in created:
            make_dirs(folder)
        atomic_write_all(
            [
                (layout.index, b"", None),
                (layout.serial, b"01\n", None),
                (layout.ca_key, key_pem, 0o600),
                (output, output_pem, None),
            ]
        )
    except BaseException:
        for folder in reversed(created):
            _remove_empty_folder(folder)
        raise


def _remove_empty_folder(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


# The prompts and messages of easy-rsa 3.2.7's build-ca, which expect scripts answer.
_PROMPT_NEW_CA = "Enter New CA Key Passphrase: "
_PROMPT_CONFIRM_CA = "Confirm New CA Key Passphrase: "


def _ca_passphrase(settings: Settings, console: Console, raw: bool) -> bytes:
    """Return the new CA key's passphrase from --passout, or ask for it twice.

    easy-rsa 3.2.7 uses --passout only when --passin is set too, and asks
    otherwise. easyrsa_py needs no --passin to use --passout.
    """
    if settings.passout and not raw:
        passphrase = read_passphrase(settings.passout)
        if not passphrase:
            raise PassphraseError(
                "The passphrase from --passout is empty. Give one, or use 'nopass'."
            )
        return passphrase
    first = _ask_ca_passphrase(_PROMPT_NEW_CA)
    second = _ask_ca_passphrase(_PROMPT_CONFIRM_CA)
    if first != second:
        raise PassphraseError(
            "Passphrase mismatch! The two CA passphrases typed differ. Run build-ca again."
        )
    return first


def _ask_ca_passphrase(prompt: str) -> bytes:
    """Ask until the answer has at least 4 characters, as easy-rsa 3.2.7 does.

    Without a terminal the answer is read from stdin, one line each, and
    end of input is an error. easy-rsa 3.2.7 asks forever then.
    """
    while True:
        answer = _read_hidden(prompt)
        if len(answer) >= keys.MIN_PASSPHRASE:
            return answer
        sys.stderr.write(
            f"\nPassphrase must be at least {keys.MIN_PASSPHRASE} characters!\n"
        )


def _read_hidden(prompt: str) -> bytes:
    missing = PassphraseError(
        "No CA passphrase was given. Use --passout, or 'nopass' for a key without one."
    )
    try:
        with open("/dev/tty", "rb"):
            has_terminal = True
    except OSError:
        has_terminal = False
    if has_terminal:
        try:
            return getpass.getpass("\n" + prompt).encode()
        except EOFError:
            raise missing from None
    sys.stderr.write("\n" + prompt)
    sys.stderr.flush()
    line = read_line_unbuffered(sys.stdin.fileno())
    sys.stderr.write("\n")
    if line is None:
        raise missing
    return line[:-1] if line.endswith(b"\r") else line


# --- renew-ca ------------------------------------------------------------------

_EXPIRED_CA_LIST = "expired-ca.list"
_EXPIRED_CA_HEADER = b"# Easy-RSA expired CA certificate list:"
_EXPIRED_CA_RULE = b"# ====================================="


def renew_ca(context: Context, arguments: list[str]) -> int:
    """Replace ca.crt by a new certificate for the same CA key, archiving the old one.

    As in easy-rsa 3.2.7, the new certificate keeps the old signature
    digest and the criticality of basicConstraints and keyUsage, and the
    old one is added at the top of pki/expired-ca.list. Unlike 3.2.7, the
    whole old subject is kept, not only its common name, so certificates
    issued before still name the CA correctly.
    """
    settings, layout, console = context.settings, context.layout, context.console
    if arguments:
        raise UsageError(
            f"Unexpected argument {arguments[0]!r}: renew-ca takes no arguments."
        )
    if settings.req_cn != "ChangeMe":
        console.warn(
            "renew-ca does not support setting an external commonName: "
            "the old CA's subject is kept."
        )
    old_file = load_ca_certificate(layout)
    old = _parse_x509(layout.ca_cert, old_file.der)
    _check_self_signed(layout.ca_cert, old)
    key = load_ca_key(layout, settings.passin, old_file)

    new = _renewed_certificate(settings, key, old)
    console.confirm(
        "Install the new CA certificate ? ",
        "yes",
        f"\nNEW CA CERTIFICATE:\n\n{certificate_text(new).rstrip()}\n\nWARNING !!!\n\n"
        "Your CA certificate is ready to be renewed. (Details above)\n\n"
        "This new CA certificate will completely replace the old one.\n"
        "The old CA will be archived to the 'expired-ca.list' file.\n\n"
        "Please check the details above are correct, before continuing.",
    )
    archive = layout.root / _EXPIRED_CA_LIST
    atomic_write_all(
        [
            (archive, _expired_ca_list(archive, old), None),
            (layout.ca_cert, _pem(new), None),
        ]
    )
    console.notice(
        "CA certificate has been successfully renewed.\n\n"
        f"Your old CA certificate has been added to the expired CA list at:\n* {archive}\n\n"
        f"Your renewed CA certificate is at:\n* {layout.ca_cert}"
    )
    _warn_pinned_certificates(layout, console, old)
    return 0


def _check_self_signed(path: Path, certificate: x509.Certificate) -> None:
    """Reject renewing a sub-CA certificate, which its parent CA must sign.

    easy-rsa 3.2.7 replaces it by a self-signed root with the same name, so
    the PKI silently leaves its parent's chain.
    """
    if certificate.issuer != certificate.subject:
        raise PKIConflict(
            f"Cannot renew {path}: it is a sub-CA certificate issued by "
            f"{certificate.issuer.rfc4514_string()}, and renew-ca would replace it by a "
            "self-signed root. Send reqs/ca.req (or a new request for private/ca.key) to the "
            "parent CA and place the certificate it signs at ca.crt."
        )


def _renewed_certificate(
    settings: Settings, key: CertificateIssuerPrivateKeyTypes, old: x509.Certificate
) -> x509.Certificate:
    hash_algorithm = old.signature_hash_algorithm
    digest = hash_algorithm.name if hash_algorithm else settings.digest
    critical = frozenset(
        name
        for name, extension_class in (
            ("basicConstraints", x509.BasicConstraints),
            ("keyUsage", x509.KeyUsage),
        )
        if _is_critical(old, extension_class)
    )
    serial = x509.random_serial_number()
    extensions = ca_extensions(settings, key, old.subject, serial, critical)
    return self_signed_certificate(
        key, old.subject, settings.ca_expire, digest, extensions, serial
    )


def _warn_pinned_certificates(
    layout: PKILayout, console: Console, old: x509.Certificate
) -> None:
    """Warn about issued certificates whose authorityKeyIdentifier names the old CA's serial.

    OpenSSL rejects an issuer whose serial differs from that one, so those
    certificates verify only while the old CA certificate is trusted too.
    easy-rsa 3.2.7 says nothing about this.
    """
    pinned = []
    for path in sorted((layout.root / "issued").glob("*.crt")):
        try:
            serial = read_certificate(path).authority_serial_number()
        except (FileFormatError, ValueError):
            continue
        if serial == old.serial_number:
            pinned.append(path.name)
    if pinned:
        shown = ", ".join(pinned[:5]) + (", ..." if len(pinned) > 5 else "")
        console.warn(
            f"{len(pinned)} issued certificate(s) ({shown}) name the old CA certificate's "
            "serial number in their authorityKeyIdentifier, so OpenSSL verifies them only "
            "while the old CA certificate is trusted too. Give peers both CA certificates "
            f"(the old one is in {layout.root / _EXPIRED_CA_LIST}) until those "
            "certificates are renewed."
        )


def _parse_x509(path: Path, der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as error:
        raise FileFormatError(
            path, None, f"not a valid certificate ({error})."
        ) from None


def _is_critical(
    certificate: x509.Certificate, extension_class: type[x509.ExtensionType]
) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(extension_class).critical
    except x509.ExtensionNotFound:
        return False


def _expired_ca_list(archive: Path, old: x509.Certificate) -> bytes:
    """Return the archive with `old` first, below the header, and the earlier entries after it.

    Each entry is the certificate as `openssl x509 -text` prints it, which
    is what easy-rsa 3.2.7 writes.
    """
    header = _EXPIRED_CA_HEADER + b"\n" + _EXPIRED_CA_RULE + b"\n\n"
    entry = certificate_text(old).encode() + _pem(old)
    try:
        previous = archive.read_bytes()
    except FileNotFoundError:
        return header + entry
    # Like 3.2.7, drop the earlier header line and keep its rule line.
    rest = b"\n".join(
        b"" if line == _EXPIRED_CA_HEADER else line for line in previous.split(b"\n")
    )
    return header + entry + rest


# --- import-ca -----------------------------------------------------------------

_EXTERNAL_CA_LIST = Path("inline") / "external-ca.list"
_EXTERNAL_CA_HEADER = b"# Easy-RSA Inline file: External CA list\n"


def import_ca(context: Context, arguments: list[str]) -> int:
    """Append a CA certificate to pki/inline/external-ca.list, as easy-rsa 3.2.7 does.

    The inline files list these certificates with the PKI's own CA. Nothing
    checks that the certificate is a CA or that it signed anything.
    """
    if len(arguments) != 1 or not arguments[0]:
        raise UsageError("Usage: import-ca FILE, where FILE is a PEM CA certificate.")
    source = Path(arguments[0])
    if not source.is_file():
        raise UsageError(
            f"Missing file: {source} does not exist or is not a regular file."
        )
    try:
        certificate = x509.load_pem_x509_certificate(source.read_bytes())
    except ValueError:
        raise FileFormatError(source, None, "not a PEM X.509 certificate.") from None
    target = context.layout.root / _EXTERNAL_CA_LIST
    make_dirs(target.parent)
    previous = target.read_bytes() if target.is_file() else _EXTERNAL_CA_HEADER
    # easy-rsa 3.2.7 writes the text of `openssl x509 -text -nameopt multiline`.
    entry = (
        render_certificate(certificate, full=True).encode() + b"\n" + _pem(certificate)
    )
    atomic_write(target, previous + entry)
    context.console.notice(f"External CA successfully imported into: {target}")
    return 0


# --- self-sign-server and self-sign-client ------------------------------------

_SELF_SIGN_USAGE = {
    "server": ExtendedKeyUsageOID.SERVER_AUTH,
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
}
_PEER_FINGERPRINT_MARK = b"# Easy-RSA peer-fp-mode - Please DO NOT DELETE this file\n"


def self_sign(context: Context, arguments: list[str], kind: str) -> int:
    """Create a key and a self-signed certificate for peer-fingerprint mode, without a CA.

    As in easy-rsa 3.2.7, an RSA setting gives a secp384r1 key, the
    certificate has the name as its common name, and pki/peer-fp.mode marks
    the PKI so that build-ca refuses it afterwards.
    """
    from easyrsa_py.inline import write_inline
    from easyrsa_py.revoke import check_file_name_base

    settings, layout, console = context.settings, context.layout, context.console
    name, nopass = _parse_self_sign_arguments(context.command_name, arguments, settings)
    check_file_name_base(name)
    if layout.ca_cert.exists() or layout.ca_key.exists():
        raise PKIConflict(
            f"Cannot create a self-signed certificate in a PKI with a CA ({layout.root})."
        )
    for path in (layout.private_key(name), layout.issued_cert(name)):
        if path.exists():
            raise PKIConflict(f"Cannot self-sign '{name}': {path} already exists.")

    key_settings = _self_sign_key_settings(settings)
    passphrase = keys.new_key_passphrase(
        settings, console, f"the key of {name}", nopass
    )
    key = keys.generate_private_key(key_settings)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    serial = x509.random_serial_number()
    extensions = _self_sign_extensions(key, subject, serial, _SELF_SIGN_USAGE[kind])
    # easy-rsa 3.2.7 always signs these with SHA-256, whatever --digest says.
    certificate = self_signed_certificate(
        key, subject, settings.cert_expire, "sha256", extensions, serial
    )
    atomic_write_all(
        [
            (layout.private_key(name), keys.private_key_pem(key, passphrase), 0o600),
            (
                layout.issued_cert(name),
                certificate_text(certificate).encode() + _pem(certificate),
                None,
            ),
            (layout.root / "peer-fp.mode", _PEER_FINGERPRINT_MARK, None),
        ]
    )
    write_inline(layout, settings, console, name)
    curve = key_settings.curve
    console.notice(
        f"Self-signed '{key_settings.algo}/{curve}' key and certificate created:\n"
        f"* {layout.private_key(name)}\n* {layout.issued_cert(name)}"
    )
    return 0


def _parse_self_sign_arguments(
    command: str, arguments: list[str], settings: Settings
) -> tuple[str, bool]:
    if not arguments or not arguments[0]:
        raise UsageError(f"Missing name: usage is '{command} NAME [nopass]'.")
    name, options = arguments[0], arguments[1:]
    if settings.req_cn != "ChangeMe":
        raise UsageError(
            f"Option conflict --req-cn: '{command}' uses NAME as the common name."
        )
    if name == "nopass":
        raise UsageError(
            "Invalid name 'nopass': give the name first, as in 'self-sign-server NAME nopass'."
        )
    for variable, option in (
        ("EASYRSA_START_DATE", "--startdate"),
        ("EASYRSA_END_DATE", "--enddate"),
    ):
        if settings.raw.get(variable):
            # NOTE: easy-rsa 3.2.7 passes these to OpenSSL; easyrsa_py does not parse them yet.
            raise UsageError(
                f"{option} is not supported by easyrsa_py's {command} yet: use --days."
            )
    for option in options:
        if option != "nopass":
            raise UsageError(f"Unknown {command} option {option!r}: expected 'nopass'.")
    return name, bool(options) or bool(settings.raw.get("EASYRSA_NO_PASS"))


def _self_sign_key_settings(settings: Settings) -> Settings:
    if settings.algo == "ed":
        return dataclasses.replace(settings, curve=settings.curve or "ed25519")
    return dataclasses.replace(settings, algo="ec", curve=settings.curve or "secp384r1")


def _self_sign_extensions(
    key: CertificateIssuerPrivateKeyTypes,
    subject: x509.Name,
    serial: int,
    usage: x509.ObjectIdentifier,
) -> list[x509.Extension[x509.ExtensionType]]:
    """Build easy-rsa 3.2.7's built-in `selfsign` extensions with the server or client usage."""
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())  # type: ignore[arg-type]
    authority = x509.AuthorityKeyIdentifier(
        key_identifier=key_id.digest,
        authority_cert_issuer=[x509.DirectoryName(subject)],
        authority_cert_serial_number=serial,
    )
    key_usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    values: list[x509.ExtensionType] = [
        key_id,
        authority,
        x509.BasicConstraints(ca=True, path_length=None),
        key_usage,
        x509.ExtendedKeyUsage([usage]),
    ]
    return [x509.Extension(value.oid, False, value) for value in values]
