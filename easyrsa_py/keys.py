"""Private keys: generate, encrypt, load and write them as easy-rsa 3.2.7 does.

A new key is written as PKCS#8 PEM. An encrypted key uses PBES2 with
PBKDF2-HMAC-SHA256 (2048 iterations) and AES-256-CBC, which is what
`openssl genpkey -aes256` writes for easy-rsa 3.2.7's build-ca under
OpenSSL 3.0. easy-rsa's gen-req lets `openssl req -newkey` choose the
cipher, which is 3DES under OpenSSL 3.0; easyrsa_py never writes 3DES.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from easyrsa_py.errors import EasyRSAError, FileFormatError, PassphraseError, UsageError
from easyrsa_py.files import atomic_write, change_mode, make_dirs
from easyrsa_py.passphrase import prompt_passphrase, read_hidden_line, read_passphrase
from easyrsa_py.pki import _parse_key, raise_if_unknown_cipher

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

    from easyrsa_py.console import Console
    from easyrsa_py.settings import Settings

GeneratedKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)

# cryptography generates no RSA key under 1024 bits. OpenSSL 3.0 generates
# larger keys than 16384 bits, but its RSA public-key operations reject a
# modulus over OPENSSL_RSA_MAX_MODULUS_BITS (16384), so easyrsa_py stops there.
MIN_RSA_BITS = 1024
MAX_RSA_BITS = 16384

# OpenSSL's PEM passphrase prompt accepts 4 to 1024 characters.
MIN_PASSPHRASE = 4
MAX_PASSPHRASE = 1024

PROMPT_NEW = "Enter PEM pass phrase:"
PROMPT_VERIFY = "Verifying - Enter PEM pass phrase:"

# OpenSSL curve names (`openssl ecparam -list_curves`) and the NIST aliases
# OpenSSL also accepts, for the curves that cryptography can generate.
_EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "prime192v1": ec.SECP192R1,
    "secp192r1": ec.SECP192R1,
    "P-192": ec.SECP192R1,
    "secp224r1": ec.SECP224R1,
    "P-224": ec.SECP224R1,
    "prime256v1": ec.SECP256R1,
    "secp256r1": ec.SECP256R1,
    "P-256": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "P-384": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
    "P-521": ec.SECP521R1,
    "secp256k1": ec.SECP256K1,
    "brainpoolP256r1": ec.BrainpoolP256R1,
    "brainpoolP384r1": ec.BrainpoolP384R1,
    "brainpoolP512r1": ec.BrainpoolP512R1,
}

# OpenSSL matches algorithm names such as ED25519 without regard to case.
_ED_CURVES: dict[str, type[ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey]] = {
    "ed25519": ed25519.Ed25519PrivateKey,
    "ed448": ed448.Ed448PrivateKey,
}


class PrivateKeyNotFound(EasyRSAError):
    """The private key file a command reads does not exist."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


def generate_private_key(settings: Settings) -> GeneratedKey:
    """Generate a key for EASYRSA_ALGO with EASYRSA_KEY_SIZE or EASYRSA_CURVE.

    Raises UsageError for an unknown algorithm or curve, an RSA size out of
    range, or a curve given with algo rsa, which easy-rsa 3.2.7 rejects too.
    """
    algo = settings.algo
    if algo == "rsa":
        return _generate_rsa(settings)
    curve = settings.curve or ("secp384r1" if algo == "ec" else "ed25519")
    if algo == "ec":
        return _generate_ec(curve)
    if algo == "ed":
        return _generate_ed(curve)
    raise UsageError(
        f"Unknown algorithm {algo!r} (EASYRSA_ALGO, --algo): expected 'rsa', 'ec' or 'ed'."
    )


def _generate_rsa(settings: Settings) -> rsa.RSAPrivateKey:
    if settings.curve:
        raise UsageError(
            f"The curve {settings.curve!r} (EASYRSA_CURVE, --curve) cannot be used with "
            "algo 'rsa'. Remove it, or choose --algo=ec or --algo=ed."
        )
    bits = settings.key_size
    if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
        raise UsageError(
            f"Invalid RSA key size {bits} (EASYRSA_KEY_SIZE, --keysize): expected "
            f"{MIN_RSA_BITS} to {MAX_RSA_BITS} bits, such as 2048."
        )
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _generate_ec(curve: str) -> ec.EllipticCurvePrivateKey:
    curve_type = _EC_CURVES.get(curve)
    if curve_type is None:
        known = ", ".join(sorted(_EC_CURVES, key=str.lower))
        raise UsageError(
            f"Unknown elliptic curve {curve!r} (EASYRSA_CURVE, --curve) for algo 'ec': "
            f"expected one of {known}."
        )
    return ec.generate_private_key(curve_type())


def _generate_ed(curve: str) -> ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey:
    key_type = _ED_CURVES.get(curve.lower())
    if key_type is None:
        raise UsageError(
            f"Unknown Edwards curve {curve!r} (EASYRSA_CURVE, --curve) for algo 'ed': "
            "expected 'ed25519' or 'ed448'."
        )
    return key_type.generate()


# The maximum passphrase length, in bytes, that `cryptography` encrypts a key
# with. It is one less than MAX_PASSPHRASE, OpenSSL's prompt limit.
MAX_PASSPHRASE_BYTES = 1023


def private_key_pem(key: PrivateKeyTypes, passphrase: bytes | None) -> bytes:
    """Serialize `key` as PKCS#8 PEM, encrypted when a passphrase is given.

    cryptography's BestAvailableEncryption writes PBES2 with
    PBKDF2-HMAC-SHA256 at 2048 iterations and AES-256-CBC, as OpenSSL 3.0
    does for `-aes256`. tests/test_keys.py checks those parameters, because
    the library may change what "best available" means in a later release.
    """
    if passphrase is None:
        encryption: serialization.KeySerializationEncryption = (
            serialization.NoEncryption()
        )
    else:
        if not passphrase:
            raise PassphraseError(
                "The new passphrase is empty. Give one of at least 4 characters, or use 'nopass'."
            )
        if len(passphrase) > MAX_PASSPHRASE_BYTES:
            raise PassphraseError(
                f"The new passphrase is {len(passphrase)} bytes long, but a key can "
                f"be encrypted with at most {MAX_PASSPHRASE_BYTES} bytes. Give a shorter one."
            )
        encryption = serialization.BestAvailableEncryption(passphrase)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def nopass_requested(settings: Settings, nopass: bool = False) -> bool:
    """Return whether the new key stays unencrypted.

    `nopass` is the command's argument. --passout overrides both it and
    --nopass/EASYRSA_NO_PASS, as in easy-rsa 3.2.7.
    """
    if settings.passout:
        return False
    return nopass or bool(settings.raw.get("EASYRSA_NO_PASS"))


@dataclass(frozen=True)
class PassphrasePrompts:
    """The two prompts for a new passphrase and the minimum length typed.

    A `min_length` of 0 also accepts an empty passphrase from --passout.
    """

    first: str
    verify: str
    min_length: int


# The prompts of OpenSSL 3.0's PEM_def_callback (genpkey, req, pkey, rsa),
# `pkcs8 -topk8` and `pkcs12 -export`. OpenSSL accepts an empty PKCS#8
# password and encrypts with it. cryptography cannot, and an unencrypted
# file where an encrypted one was asked for would mislead, so it is rejected.
PEM_PROMPTS = PassphrasePrompts(PROMPT_NEW, PROMPT_VERIFY, MIN_PASSPHRASE)
PKCS8_PROMPTS = PassphrasePrompts(
    "Enter Encryption Password:", "Verifying - Enter Encryption Password:", 1
)
PKCS12_PROMPTS = PassphrasePrompts(
    "Enter Export Password:", "Verifying - Enter Export Password:", 0
)


def new_key_passphrase(
    settings: Settings,
    console: Console,
    what: str,
    nopass: bool = False,
    *,
    prompts: PassphrasePrompts = PEM_PROMPTS,
) -> bytes | None:
    """Return the passphrase for a new key, or None when it is written unencrypted.

    The passphrase comes from --passout, or else is asked twice with
    OpenSSL's prompts. `what` names the key in error messages, such as
    "the key of alice". Raises PassphraseError for a mismatch, or for a
    typed passphrase shorter than `prompts.min_length`, as OpenSSL 3.0
    fails then.
    """
    if settings.passout:
        if nopass or settings.raw.get("EASYRSA_NO_PASS"):
            console.warn(
                "--passout overrides --nopass and 'nopass': the new key is encrypted."
            )
        passphrase = read_passphrase(settings.passout)
        if not passphrase and prompts.min_length > 0:
            raise PassphraseError(
                f"The passphrase from --passout for {what} is empty. "
                "Give a non-empty one, or use --nopass."
            )
        return passphrase
    if nopass or settings.raw.get("EASYRSA_NO_PASS"):
        return None
    return ask_new_passphrase(what, prompts)


def ask_new_passphrase(what: str, prompts: PassphrasePrompts = PEM_PROMPTS) -> bytes:
    """Ask for a new passphrase twice on the terminal, or on stdin without one."""
    first = _ask(prompts.first, what)
    _check_length(first, what, prompts.min_length)
    second = _ask(prompts.verify, what)
    if first != second:
        raise PassphraseError(
            f"The passphrases typed for {what} do not match. Run the command again."
        )
    return first


def _check_length(passphrase: bytes, what: str, min_length: int) -> None:
    if not min_length <= len(passphrase) <= MAX_PASSPHRASE:
        raise PassphraseError(
            f"The passphrase typed for {what} has {len(passphrase)} characters: "
            f"expected {min_length} to {MAX_PASSPHRASE}. "
            "Run the command again, or use --passout."
        )


def _ask(prompt: str, what: str) -> bytes:
    """Read one passphrase line: without echo on the terminal, else from stdin as OpenSSL does."""
    missing = PassphraseError(
        f"No passphrase was given for {what}. Use --passout (pass:, env:, file:, fd: or stdin), or --nopass."
    )
    line = read_hidden_line(prompt, missing)
    return line[:-1] if line.endswith(b"\r") else line


def read_key_file(path: Path) -> bytes:
    """Read a private key file, raising PrivateKeyNotFound when it is missing."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PrivateKeyNotFound(
            path, f"Missing private key: {path} does not exist."
        ) from None
    except IsADirectoryError:
        raise PrivateKeyNotFound(
            path, f"Missing private key: {path} is a folder, not a key file."
        ) from None
    except OSError as error:
        raise PrivateKeyNotFound(
            path, f"Cannot read the private key {path}: {error.strerror}."
        ) from None


def load_private_key(path: Path, passin_source: str | None) -> PrivateKeyTypes:
    """Load a PEM private key, decrypting it with --passin or a prompt.

    As with OpenSSL, a passphrase given for an unencrypted key is ignored,
    and an encrypted key without --passin gets the prompt
    "Enter pass phrase for PATH:". Raises PrivateKeyNotFound,
    FileFormatError, or PassphraseError naming the file.
    """
    data = read_key_file(path)
    password = read_passphrase(passin_source) if passin_source else None
    try:
        return _parse_key(data, password)
    except TypeError:
        # TypeError means the key is encrypted and no password was given,
        # or it is not encrypted and one was.
        # cryptography takes an empty passphrase from --passin as none at all.
        if password is not None:
            return _decrypt(path, data, None, passin_source)
        return _decrypt(path, data, prompt_passphrase(path), None)
    except ValueError as error:
        raise_if_unknown_cipher(path, error)
        if password is None or not is_encrypted_key(data):
            raise FileFormatError(path, None, "not a valid PEM private key.") from None
        raise _wrong_passphrase(path, passin_source) from None


def _decrypt(
    path: Path, data: bytes, password: bytes | None, passin_source: str | None
) -> PrivateKeyTypes:
    try:
        return _parse_key(data, password)
    except (TypeError, ValueError) as error:
        raise_if_unknown_cipher(path, error)
        if not is_encrypted_key(data):
            raise FileFormatError(path, None, "not a valid PEM private key.") from None
        raise _wrong_passphrase(path, passin_source) from None


def is_encrypted_key(data: bytes) -> bool:
    """Return whether PEM key data is encrypted, in PKCS#8 or in OpenSSL's traditional format."""
    return (
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
        or b"Proc-Type: 4,ENCRYPTED" in data
    )


def _wrong_passphrase(path: Path, passin_source: str | None) -> PassphraseError:
    where = "--passin or EASYRSA_PASSIN" if passin_source else "the passphrase typed"
    return PassphraseError(
        f"The passphrase does not decrypt the private key {path}. Check {where}."
    )


def write_private_key(path: Path, pem: bytes) -> None:
    """Write a key file atomically with mode 0600, whatever the umask.

    A missing parent folder is created with mode 0700. An existing key
    file keeps its mode and owner. Call restrict_existing_file first so
    that a world-readable file does not stay so.
    """
    _make_private_dir(path.parent)
    atomic_write(path, pem, mode=0o600)


def restrict_existing_file(path: Path) -> None:
    """Make `path` private (owner bits only) if other users may access it.

    atomic_write gives new content the old file's mode, so a key written
    over a world-readable file would stay world-readable. A mode without
    other-user bits, such as 0640 for a service's group, is kept as the
    operator chose it. Anything but a regular file is left alone, and a
    symbolic link is followed, as atomic_write follows it.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(status.st_mode)
    # A folder or device in the way is left for atomic_write to reject.
    if stat.S_ISREG(status.st_mode) and mode & 0o007:
        change_mode(path, mode & 0o600)


def _make_private_dir(folder: Path) -> None:
    if folder.is_dir():
        return
    if folder.exists():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(folder))
    make_dirs(folder.parent)
    make_dirs(folder, mode=0o700)
    change_mode(folder, 0o700)
