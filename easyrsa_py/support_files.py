"""The support files of `write`: vars.example, the OpenSSL config and the x509-types profiles.

easy-rsa keeps these files beside its script and can print them or copy
them into the PKI. easyrsa_py needs none of them to run: it parses vars as
data and builds extensions from easyrsa_py.profiles. The text here is
easyrsa_py's own, with the same settings and the same meaning as the
files of easy-rsa 3.2.7.

The OpenSSL config keeps the section names, keys, prompts and the three
`#%...%` marker lines that the real script looks for, because easy-rsa
3.2.7 uses an openssl-easyrsa.cnf it finds in the PKI in place of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from easyrsa_py.errors import EasyRSAError, UsageError
from easyrsa_py.files import atomic_write, make_dirs

if TYPE_CHECKING:
    from easyrsa_py.commands import Context
    from easyrsa_py.settings import Settings

# The x509-types that easy-rsa 3.2.7's `write` accepts, in the order it
# writes them for `write legacy`. 3.2.2 also wrote kdc, which stays
# available by name.
LEGACY_PROFILE_TYPES = ("COMMON", "ca", "server", "serverClient", "client", "email", "codeSigning")
PROFILE_TYPES = (*LEGACY_PROFILE_TYPES, "kdc")
FILE_TYPES = ("vars", "ssl-cnf", "safe-cnf")

# The file name each type gets when written into a folder.
_DEFAULT_NAMES = {
    "vars": "vars.example",
    "ssl-cnf": "openssl-easyrsa.cnf",
    "safe-cnf": "safessl-easyrsa.cnf",
}

# The values of the OpenSSL config, with the name of the EASYRSA_* variable
# that provides each one.
_CONFIG_VARIABLES = (
    ("PKI", "EASYRSA_PKI"),
    ("DIGEST", "EASYRSA_DIGEST"),
    ("KEY_SIZE", "EASYRSA_KEY_SIZE"),
    ("DN", "EASYRSA_DN"),
    ("REQ_CN", "EASYRSA_REQ_CN"),
    ("REQ_COUNTRY", "EASYRSA_REQ_COUNTRY"),
    ("REQ_PROVINCE", "EASYRSA_REQ_PROVINCE"),
    ("REQ_CITY", "EASYRSA_REQ_CITY"),
    ("REQ_ORG", "EASYRSA_REQ_ORG"),
    ("REQ_OU", "EASYRSA_REQ_OU"),
    ("REQ_EMAIL", "EASYRSA_REQ_EMAIL"),
    ("REQ_SERIAL", "EASYRSA_REQ_SERIAL"),
    ("CERT_EXPIRE", "EASYRSA_CERT_EXPIRE"),
    ("CRL_DAYS", "EASYRSA_CRL_DAYS"),
)

_OPENSSL_CONFIG = """\
# OpenSSL configuration for an easy-rsa PKI, written by easyrsa_py.
# easy-rsa's script fills in the $ENV:: values and the #%...% marker lines
# when it runs OpenSSL. easyrsa_py itself does not read this file.

# easy-rsa 3.1 does not set EASYRSA_REQ_SERIAL. OpenSSL falls back to this
# empty default when the environment lacks it, so 3.1 can use this file.
EASYRSA_REQ_SERIAL =

[ ca ]
default_ca = CA_default

[ CA_default ]
# The PKI folder and the files of the CA in it.
dir = {PKI}
certs = $dir
crl_dir = $dir
database = $dir/index.txt
new_certs_dir = $dir/certs_by_serial
certificate = $dir/ca.crt
private_key = $dir/private/ca.key
serial = $dir/serial
crl = $dir/crl.pem

# Extensions of a certificate signed without an x509-types profile.
x509_extensions = basic_exts
# easy-rsa puts the extensions of --copy-ext below this marker line.
#%COPY_EXTS%

# Version 2 CRLs, which carry the CA's key identifier.
crl_extensions = crl_ext

# Lifetimes in days, and the message digest of signatures.
default_days = {CERT_EXPIRE}
default_crl_days = {CRL_DAYS}
default_md = {DIGEST}

# The request's subject is reordered to the policy's order; easy-rsa's
# 'preserve' option of sign-req keeps it as it is.
preserve = no
# Several valid certificates may share one subject, which renew needs.
unique_subject = no
policy = policy_anything

[ policy_anything ]
# Only the common name is required in a request's subject.
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
emailAddress = optional
serialNumber = optional

[ req ]
default_bits = {KEY_SIZE}
default_keyfile = privkey.pem
default_md = {DIGEST}
# EASYRSA_DN names the subject section below: cn_only or org.
distinguished_name = {DN}
# Extensions of the self-signed CA certificate.
x509_extensions = easyrsa_ca
# easy-rsa puts the extensions of --san and EASYRSA_EXTRA_EXTS below this
# marker line.
#%EXTRA_EXTS%

[ cn_only ]
commonName = Common Name (eg: your user, host, or server name)
commonName_max = 64
commonName_default = {REQ_CN}

[ org ]
countryName = Country Name (2 letter code)
countryName_default = {REQ_COUNTRY}
countryName_min = 2
countryName_max = 2
stateOrProvinceName = State or Province Name (full name)
stateOrProvinceName_default = {REQ_PROVINCE}
localityName = Locality Name (eg, city)
localityName_default = {REQ_CITY}
0.organizationName = Organization Name (eg, company)
0.organizationName_default = {REQ_ORG}
organizationalUnitName = Organizational Unit Name (eg, section)
organizationalUnitName_default = {REQ_OU}
commonName = Common Name (eg: your user, host, or server name)
commonName_max = 64
commonName_default = {REQ_CN}
emailAddress = Email Address
emailAddress_default = {REQ_EMAIL}
emailAddress_max = 64
serialNumber = Serial-number (eg, device serial-number)
serialNumber_default = {REQ_SERIAL}

[ basic_exts ]
# Used only when OpenSSL is run by hand with this file: easy-rsa passes
# the x509-types profile of each certificate it signs.
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer:always

[ easyrsa_ca ]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always,issuer:always
basicConstraints = CA:true
keyUsage = cRLSign, keyCertSign
# easy-rsa puts the ca profile and the CA's extra extensions below this
# marker line.
#%CA_X509_TYPES_EXTRA_EXTS%

[ crl_ext ]
authorityKeyIdentifier = keyid:always,issuer:always
"""

_VARS_EXAMPLE = """\
# Example settings for easy-rsa and easyrsa_py.
#
# Copy this file to 'vars' in the PKI folder (or set EASYRSA_VARS_FILE) to
# use it. Every line below is commented out and shows the default, so the
# file changes nothing until you remove the '#' in front of a set_var line.
#
# The format: one setting per line, as
#     set_var NAME "value"
# easy-rsa runs this file as shell code. easyrsa_py reads it as data and
# rejects other shell commands (unless --force-vars), so keep to this format.
# A value set in the environment or on the command line wins over set_var.
# force_set_var NAME "value" wins over both.

# The folder of the PKI. It defaults to 'pki' in the current folder.
#set_var EASYRSA_PKI "$PWD/pki"

# The subject of new requests: "cn_only" uses the common name alone; "org"
# adds the country, province, city, organization, unit and e-mail below.
#set_var EASYRSA_DN "cn_only"
#set_var EASYRSA_REQ_COUNTRY "US"
#set_var EASYRSA_REQ_PROVINCE "California"
#set_var EASYRSA_REQ_CITY "San Francisco"
#set_var EASYRSA_REQ_ORG "Copyleft Certificate Co"
#set_var EASYRSA_REQ_EMAIL "me@example.net"
#set_var EASYRSA_REQ_OU "My Organizational Unit"

# Keep the subject of a request in its own order when signing it.
#set_var EASYRSA_PRESERVE_DN 1

# Leave new private keys unencrypted, as the 'nopass' argument does.
#set_var EASYRSA_NO_PASS 1

# The key algorithm: rsa, ec or ed. EASYRSA_KEY_SIZE is the RSA key size in
# bits, and also the size of gen-dh's parameters. EASYRSA_CURVE names the
# curve for ec (such as secp384r1) and ed (ed25519 or ed448).
#set_var EASYRSA_ALGO rsa
#set_var EASYRSA_KEY_SIZE 2048
#set_var EASYRSA_CURVE secp384r1

# Lifetimes in days: the CA certificate, other certificates and the CRL.
#set_var EASYRSA_CA_EXPIRE 3650
#set_var EASYRSA_CERT_EXPIRE 825
#set_var EASYRSA_CRL_DAYS 180

# Random 128-bit serial numbers ("yes"), or sequential ones from pki/serial.
#set_var EASYRSA_RAND_SN "yes"

# show-expire lists certificates that expire within this many days.
#set_var EASYRSA_PRE_EXPIRY_WINDOW 90

# Add a subjectAltName that repeats the common name to each request.
#set_var EASYRSA_AUTO_SAN 1

# Mark these extensions critical: basicConstraints, keyUsage,
# extendedKeyUsage and subjectAltName.
#set_var EASYRSA_BC_CRIT 1
#set_var EASYRSA_KU_CRIT 1
#set_var EASYRSA_EKU_CRIT 1
#set_var EASYRSA_SAN_CRIT 1

# Do not write inline files after signing.
#set_var EASYRSA_NO_INLINE 1

# Add the deprecated Netscape certificate type and comment extensions
# ("yes" or "no"). Prefer OpenVPN's --remote-cert-tls to --ns-cert-type.
#set_var EASYRSA_NS_SUPPORT "no"
#set_var EASYRSA_NS_COMMENT "Easy-RSA Generated Certificate"

# The folder of the x509-types profiles. By default the PKI's x509-types
# folder is used first, then the one in the easy-rsa folder.
#set_var EASYRSA_EXT_DIR "$EASYRSA/x509-types"

# The Kerberos realm of kdc certificates.
#set_var EASYRSA_KDC_REALM "CHANGEME.EXAMPLE.COM"

# The OpenSSL config file that easy-rsa's script uses. easyrsa_py ignores it.
#set_var EASYRSA_SSL_CONF "$EASYRSA_PKI/openssl-easyrsa.cnf"

# The message digest of signatures: sha256, sha384, sha512, sha224, or the
# weak sha1 and md5.
#set_var EASYRSA_DIGEST "sha256"

# Never prompt: any non-empty value enables batch mode, as --batch does.
#set_var EASYRSA_BATCH ""
"""


def _config_escape(value: str) -> str:
    """Escape a value for an OpenSSL config line, where $, #, quotes and backslash are special."""
    if "\n" in value or "\r" in value:
        raise UsageError(f"Invalid setting {value!r} for an OpenSSL config: it contains a line break.")
    return "".join("\\" + char if char in '\\$#"\'' else char for char in value)


def openssl_config(values: Mapping[str, str] | None) -> str:
    """Render the OpenSSL config: with `$ENV::` references, or with `values` filled in."""
    fields = {}
    for field, variable in _CONFIG_VARIABLES:
        if values is None:
            fields[field] = f"$ENV::{variable}"
        else:
            fields[field] = _config_escape(values.get(variable, ""))
    return _OPENSSL_CONFIG.format(**fields)


def _expanded_values(settings: Settings) -> dict[str, str]:
    values = dict(settings.raw)
    values["EASYRSA_PKI"] = str(settings.pki_dir)
    return values


def profile_text(name: str) -> str:
    """Render a built-in x509-types profile of easyrsa_py.profiles, with a comment line naming it."""
    from easyrsa_py.profiles import BUILTIN_ALIASES, BUILTIN_PROFILES

    body = BUILTIN_PROFILES[BUILTIN_ALIASES.get(name, name)]
    if name == "COMMON":
        return (
            "# x509-types profile COMMON, written by easyrsa_py. Its lines are added to\n"
            "# every certificate type. It is empty by default.\n" + body
        )
    return f"# x509-types profile '{name}', written by easyrsa_py.\n" + body


def support_file_text(kind: str, settings: Settings) -> str:
    """Return the text of one support file, raising UsageError for an unknown type."""
    if kind == "vars":
        return _VARS_EXAMPLE
    if kind == "ssl-cnf":
        return openssl_config(None)
    if kind == "safe-cnf":
        return openssl_config(_expanded_values(settings))
    if kind in PROFILE_TYPES:
        return profile_text(kind)
    raise UsageError(
        f"Unknown type '{kind}' for 'write'. Use one of: {', '.join(FILE_TYPES + PROFILE_TYPES)}, "
        "or 'legacy' / 'legacy-hard' to write them all into the PKI."
    )


def _target_path(kind: str, destination: Path) -> Path:
    """Return the file to write: `destination` itself, or the type's own name inside a folder."""
    if destination.is_dir():
        return destination / _DEFAULT_NAMES.get(kind, kind)
    return destination


def _write_one(context: Context, kind: str, text: str, destination: Path, overwrite: bool) -> None:
    target = _target_path(kind, destination)
    if target.exists() and not overwrite:
        raise EasyRSAError(
            f"{target} already exists and was left as it is. Add 'overwrite' to replace it, as in "
            f"'write {kind} {destination} overwrite'."
        )
    if not target.parent.is_dir():
        raise EasyRSAError(f"Cannot write {target}: the folder {target.parent} does not exist.")
    atomic_write(target, text.encode("utf-8"))
    context.console.notice(f"Wrote the '{kind}' file to:\n* {target}")


def write_command(context: Context, arguments: list[str]) -> int:
    """Run `write TYPE [FILE|FOLDER [overwrite]]`, `write legacy` or `write legacy-hard`.

    Without a destination the text goes to stdout, as in easy-rsa 3.2.7.
    A destination is easy-rsa 3.2.2's: a file, never replaced unless
    'overwrite' follows it. easyrsa_py also takes a folder, which gets the
    file under its usual name.
    """
    if not arguments or not arguments[0]:
        raise UsageError(
            f"Missing type: usage is 'write TYPE [FILE|FOLDER [overwrite]]', with TYPE one of "
            f"{', '.join(FILE_TYPES + PROFILE_TYPES)}, legacy, legacy-hard."
        )
    kind = arguments[0]
    if kind in ("legacy", "legacy-hard"):
        if len(arguments) > 1:
            context.console.warn(f"Ignoring the arguments after 'write {kind}': {' '.join(arguments[1:])}")
        return write_legacy(context, overwrite=kind == "legacy-hard")
    text = support_file_text(kind, context.settings)
    # easy-rsa 3.2.7 also prints the file when the destination is empty.
    if len(arguments) == 1 or not arguments[1]:
        context.console.output(text)
        return 0
    overwrite = arguments[2:3] == ["overwrite"]
    if len(arguments) > 3 or (len(arguments) == 3 and not overwrite):
        raise UsageError(f"Unexpected argument '{arguments[-1]}': usage is 'write TYPE [FILE|FOLDER [overwrite]]'.")
    _write_one(context, kind, text, Path(arguments[1]), overwrite)
    return 0


def legacy_files(root: Path) -> list[tuple[Path, str]]:
    """List the files `write legacy` puts in the PKI, with their text."""
    files = [(root / "x509-types" / kind, profile_text(kind)) for kind in LEGACY_PROFILE_TYPES]
    files.append((root / "vars.example", _VARS_EXAMPLE))
    files.append((root / "openssl-easyrsa.cnf", openssl_config(None)))
    return files


def write_legacy(context: Context, overwrite: bool) -> int:
    """Write every support file into the PKI: missing ones only, or all with `overwrite`.

    As in easy-rsa 3.2.7, legacy-hard prompts for confirmation unless --batch.
    The PKI lock is held while the files are written.
    """
    from easyrsa_py.lock import PKILock
    from easyrsa_py.pki import require_pki

    layout = require_pki(context.settings.pki_dir)
    files = legacy_files(layout.root)
    if overwrite:
        context.console.confirm(
            "Confirm OVER-WRITE files ? ",
            "yes",
            "'write legacy-hard' replaces these files with easyrsa_py's defaults:\n"
            + _listing([path for path, _ in files]),
        )
    if context.settings.no_lockfile:
        written, existing = _write_missing(layout.root, files, overwrite)
    else:
        with PKILock(layout.root, notify=context.console.alert):
            written, existing = _write_missing(layout.root, files, overwrite)
    if existing:
        context.console.warn("Kept these existing files:\n" + _listing(existing))
    context.console.notice("Wrote these files:\n" + (_listing(written) if written else "(none)"))
    return 0


def _listing(paths: list[Path]) -> str:
    return "\n".join(f"* {path}" for path in paths)


def _write_missing(root: Path, files: list[tuple[Path, str]], overwrite: bool) -> tuple[list[Path], list[Path]]:
    """Write each file that is missing, or every file with `overwrite`; return those written and those left in place."""
    written, existing = [], []
    make_dirs(root / "x509-types")
    for path, text in files:
        if path.exists() and not overwrite:
            existing.append(path)
            continue
        atomic_write(path, text.encode("utf-8"))
        written.append(path)
    return written, existing
