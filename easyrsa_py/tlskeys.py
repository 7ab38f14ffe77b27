"""The gen-dh, gen-tls-*-key, import-tls-key and write commands.

gen-dh writes Diffie-Hellman parameters to dh.pem. The TLS key commands
create or copy the one OpenVPN pre-shared key a PKI keeps in
private/easyrsa-tls.key, which easy-rsa's inline files embed. `write`
prints or writes the support files easy-rsa keeps beside its script (see
easyrsa_py.support_files).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from easyrsa_py.errors import (
    CertificateNotFound,
    EasyRSAError,
    FileFormatError,
    UsageError,
)
from easyrsa_py.files import atomic_write, move_no_clobber, remove_if_present

if TYPE_CHECKING:
    from easyrsa_py.commands import Context

logger = logging.getLogger(__name__)

# OpenSSL 3.0 rejects DH moduli below 512 bits (DH_MIN_MODULUS_BITS) and
# above 10,000 bits (OPENSSL_DH_MAX_MODULUS_BITS); cryptography has the same
# lower bound. easy-rsa passes EASYRSA_KEY_SIZE to `openssl dhparam` as is.
DH_MIN_BITS = 512
DH_MAX_BITS = 10_000

TLS_KEY_FILE = "easyrsa-tls.key"
# easy-rsa 3.1 kept the key in the PKI root under this name. easy-rsa 3.2
# refuses to create a new key while it exists, because the old one is
# already shared with every server and client.
OLD_TLS_KEY_FILE = "easyrsa-keepsafe-tls.key"

# easy-rsa 3.2.7 writes "# Easy-RSA TLS-AUTH Key" or "# Easy-RSA TLS-CRYPT
# Key" above the key, and its `inline` command picks <tls-auth> or
# <tls-crypt> by searching the file for these words.
_TLS_LABELS = {"tls-auth": "TLS-AUTH", "tls-crypt": "TLS-CRYPT"}

# OpenVPN's static key file: 2048 random bits as 16 lines of 32 hex digits.
STATIC_KEY_BEGIN = "-----BEGIN OpenVPN Static key V1-----"
STATIC_KEY_END = "-----END OpenVPN Static key V1-----"
STATIC_KEY_BYTES = 256
_HEX_PER_LINE = 32
_STATIC_KEY_BLOCK = re.compile(
    re.escape(STATIC_KEY_BEGIN) + r"\n((?:[0-9a-fA-F]{32}\n){16})" + re.escape(STATIC_KEY_END)
)

_REDISTRIBUTE = (
    "Every server and client must use this same key. If it ever changes, copy the new "
    "key to all of them."
)


def reject_arguments(command: str, arguments: list[str]) -> None:
    """Raise UsageError for any argument: easy-rsa ignores them, but a stray word is usually a mistake."""
    if arguments:
        raise UsageError(f"Unexpected argument '{arguments[0]}': '{command}' takes no arguments.")


# --- gen-dh ----------------------------------------------------------------


def _dh_bits(context: Context) -> int:
    bits = context.settings.key_size
    if not DH_MIN_BITS <= bits <= DH_MAX_BITS:
        raise UsageError(
            f"Invalid DH parameter size of {bits} bits (--keysize or EASYRSA_KEY_SIZE): OpenSSL "
            f"accepts {DH_MIN_BITS} to {DH_MAX_BITS} bits. Use 2048 or more for real use."
        )
    return bits


def generate_dh_parameters(bits: int) -> bytes:
    """Generate DH parameters with generator 2, as `openssl dhparam` does, in PEM ("DH PARAMETERS")."""
    import warnings

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dh
    from cryptography.utils import CryptographyDeprecationWarning

    # NOTE: cryptography deprecates finite-field DH (with a warning from
    # version 50) and plans to remove it; gen-dh then needs another source of
    # safe primes. OpenVPN still reads dh.pem, so the warning is not shown.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        parameters = dh.generate_parameters(generator=2, key_size=bits)
    return parameters.parameter_bytes(serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3)


def gen_dh(context: Context, arguments: list[str]) -> int:
    """Write dh.pem with DH parameters of EASYRSA_KEY_SIZE bits.

    An existing dh.pem is replaced only after the user confirms, and batch
    mode rejects it, as in easy-rsa 3.2.7. The new file replaces the old one
    atomically, so an interrupted run leaves the old dh.pem in place.
    """
    reject_arguments(context.command_name, arguments)
    bits = _dh_bits(context)
    path = context.layout.root / "dh.pem"
    if path.exists():
        if context.settings.batch:
            raise EasyRSAError(
                f"DH parameters already exist at {path}. Remove the file first to replace it."
            )
        context.console.confirm("Overwrite?  ", "yes", f"DH parameters already exist at:\n* {path}")
    context.console.notice(f"Generating DH parameters of {bits} bits. This can take several minutes.")
    atomic_write(path, generate_dh_parameters(bits))
    context.console.notice(f"Wrote DH parameters of {bits} bits to:\n* {path}")
    return 0


# --- TLS keys --------------------------------------------------------------


def static_key_text(key: bytes) -> str:
    """Format 256 key bytes as OpenVPN's `--genkey secret` writes them."""
    digits = key.hex()
    lines = [digits[i : i + _HEX_PER_LINE] for i in range(0, len(digits), _HEX_PER_LINE)]
    return "\n".join(
        ["#", f"# {len(key) * 8} bit OpenVPN static key", "#", STATIC_KEY_BEGIN, *lines, STATIC_KEY_END, ""]
    )


def tls_key_label(text: str) -> str:
    """Return the easy-rsa type of a TLS key file's text, as easy-rsa's inline detects it."""
    if "TLS-CRYPT" in text:
        return "TLS-CRYPT"
    if "TLS-AUTH" in text:
        return "TLS-AUTH"
    return "UNKNOWN"


def _reject_dangling_link(path: Path) -> None:
    """Raise EasyRSAError when `path` is a symbolic link to nothing.

    Such a link makes exists() false but blocks the new file, which
    would otherwise be reported as created by another process.
    """
    if path.is_symlink() and not path.exists():
        raise EasyRSAError(
            f"{path} is a symbolic link to {os.readlink(path)}, which does not exist. "
            "Remove the link, or restore the key it points to."
        )


def _reject_existing_keys(context: Context) -> None:
    for path in (context.layout.root / "private" / TLS_KEY_FILE, context.layout.root / OLD_TLS_KEY_FILE):
        _reject_dangling_link(path)
        if path.exists():
            label = tls_key_label(path.read_text(encoding="utf-8", errors="replace"))
            raise EasyRSAError(
                f"A {label} key already exists at {path}, so no new key was made. {_REDISTRIBUTE} "
                "To replace it anyway, move the file away first."
            )


def _write_new_file(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600, raising FileExistsError if it appeared meanwhile."""
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    try:
        atomic_write(temporary, data, mode=0o600)
    except OSError as error:
        # Name the key file the user asked for, not the hidden temporary one.
        raise OSError(error.errno, error.strerror, str(path)) from error
    try:
        move_no_clobber(temporary, path)
    finally:
        remove_if_present(temporary)


def gen_tls_key(context: Context, arguments: list[str], kind: str) -> int:
    """Write a new OpenVPN tls-auth or tls-crypt key to private/easyrsa-tls.key.

    The key is what `openvpn --genkey secret` writes, 2048 bits from the
    operating system's random source, below easy-rsa's type label line.
    An existing key is never replaced. tls-crypt-v2 is rejected, as easy-rsa
    3.2.7 prints "Unavailable." for it.
    """
    if kind not in _TLS_LABELS:
        raise EasyRSAError(
            "easyrsa_py cannot make tls-crypt-v2 keys, and easy-rsa 3.2.7 cannot either. Run "
            "'openvpn --genkey tls-crypt-v2-server FILE' to make the server key, then "
            "'openvpn --tls-crypt-v2 FILE --genkey tls-crypt-v2-client CLIENT_FILE' for each client."
        )
    reject_arguments(context.command_name, arguments)
    _reject_existing_keys(context)
    label = _TLS_LABELS[kind]
    text = f"# Easy-RSA {label} Key\n" + static_key_text(secrets.token_bytes(STATIC_KEY_BYTES))
    path = context.layout.root / "private" / TLS_KEY_FILE
    try:
        _write_new_file(path, text.encode("ascii"))
    except FileExistsError:
        raise EasyRSAError(f"Another process created {path} at the same time; it was left as it is.") from None
    context.console.notice(f"Wrote a new {label} key to:\n* {path}\n\n{_REDISTRIBUTE}")
    return 0


def check_static_key(path: Path, text: str) -> None:
    """Raise FileFormatError unless `text` contains one complete OpenVPN static key V1 block."""
    normalized = text.replace("\r\n", "\n")
    if not _STATIC_KEY_BLOCK.search(normalized):
        raise FileFormatError(
            path,
            None,
            f"no OpenVPN static key: expected a '{STATIC_KEY_BEGIN}' block of 16 lines of 32 hex "
            "digits, as 'openvpn --genkey secret' or easy-rsa's gen-tls-auth-key and "
            "gen-tls-crypt-key write.",
        )


def import_tls_key(context: Context, arguments: list[str]) -> int:
    """Copy an existing tls-auth or tls-crypt key into private/easyrsa-tls.key.

    Unlike easy-rsa 3.2.7, which copies any file, the file must contain an
    OpenVPN static key, so a wrong file cannot end up in every inline file.
    """
    if len(arguments) != 1 or not arguments[0]:
        raise UsageError("Usage: 'import-tls-key FILE', with the path of one OpenVPN static key file.")
    source = Path(arguments[0])
    if source.exists() and not source.is_file():
        raise UsageError(f"Cannot import {source}: it is not a regular file. Give the path of the key file.")
    if not source.is_file():
        raise CertificateNotFound(source, f"Cannot import {source}: the file does not exist.")
    data = source.read_bytes()
    text = data.decode("utf-8", errors="replace")
    check_static_key(source, text)
    target = context.layout.root / "private" / TLS_KEY_FILE
    _reject_dangling_link(target)
    if target.exists():
        raise EasyRSAError(f"A TLS key already exists at {target}. Move it away first to import another.")
    try:
        _write_new_file(target, data)
    except FileExistsError:
        raise EasyRSAError(f"Another process created {target} at the same time; it was left as it is.") from None
    context.console.notice(f"Imported the TLS key {source} to:\n* {target}")
    if tls_key_label(text) == "UNKNOWN":
        context.console.warn(
            f"{source} has no '# Easy-RSA TLS-AUTH Key' or '# Easy-RSA TLS-CRYPT Key' line, so "
            "easy-rsa's 'inline' cannot tell whether it is a tls-auth or tls-crypt key and "
            "leaves it out of inline files. Add the right line at the top of "
            f"{target} if you use 'inline'."
        )
    return 0


def write(context: Context, arguments: list[str]) -> int:
    """Print a support file, write it to a file or folder, or write them all to the PKI."""
    from easyrsa_py.support_files import write_command

    return write_command(context, arguments)
