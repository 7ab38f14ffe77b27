"""init-pki and clean-all: create an empty PKI, or reset an existing one.

The new PKI has the folders and vars.example file easy-rsa 3.2.7 makes.
An existing folder is deleted only after confirmation, under the PKI lock,
and only when it contains nothing but PKI entries.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from easyrsa_py import journal, keys
from easyrsa_py.errors import EasyRSAError, UsageError
from easyrsa_py.files import atomic_write, atomic_write_all, make_dirs, remove_tree
from easyrsa_py.lock import LOCK_FILE_NAME, PKILock

if TYPE_CHECKING:
    from easyrsa_py.commands import Context
    from easyrsa_py.console import Console
    from easyrsa_py.settings import Settings

logger = logging.getLogger(__name__)


class PKIConflict(EasyRSAError):
    """The command would overwrite or delete something it must keep."""


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

# The entries that easy-rsa 3.2.2's 'init-pki soft' removes. It keeps reqs/, vars
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

    An `ec` or `ed` word picks that algorithm with its default curve. Any
    other word is a curve name, and the algorithm follows from it, as in
    easy-rsa 3.2.7. The words override --algo and --curve.
    """
    soft = False
    algo = settings.algo
    curve = settings.curve
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
    if algo == "rsa" and curve:
        raise UsageError(
            f"The curve {curve!r} (EASYRSA_CURVE, --curve) cannot be used with "
            "algo 'rsa'. Remove it, or choose --algo=ec or --algo=ed."
        )
    if algo != "rsa":
        # Generating a throw-away key is the check that the curve exists.
        keys.generate_private_key(dataclasses.replace(settings, algo=algo, curve=curve))
    return InitRequest(soft=soft, algo=algo, curve=curve)


def check_pki_path(root: Path) -> None:
    """Reject a PKI path that init-pki must never delete or replace.

    The path may not be a symbolic link, the file system root, the user's
    home, or the working folder or one of its parents. An existing folder
    may contain only the entries an easy-rsa PKI has (_PKI_ENTRIES) and
    temporary files.
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
            entry.name for entry in root.iterdir() if not _is_pki_entry(root, entry.name)
        )
        if unknown:
            listing = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise PKIConflict(
                f"The folder {root} is not an easy-rsa PKI: it contains {listing}. init-pki only "
                "deletes folders that contain nothing but PKI files. Move those entries away, or "
                "choose another folder with --pki."
            )


def _is_pki_entry(root: Path, name: str) -> bool:
    return (
        name in _PKI_ENTRIES
        or name.startswith(_TEMPORARY_PREFIXES)
        or name.endswith(_TEMPORARY_SUFFIXES)
        or _is_session_folder(root / name)
        or name.startswith(journal.FOLDER_PREFIX)
    )


# easy-rsa 3.2.7 works in a session folder named with 4 random bytes in hex
# inside the PKI, and leaves it behind when it stops at a prompt.
_SESSION_FOLDER = re.compile(r"[0-9a-f]{8}")


def _is_session_folder(path: Path) -> bool:
    return bool(_SESSION_FOLDER.fullmatch(path.name)) and path.is_dir() and not path.is_symlink()


def init_pki(context: Context, arguments: list[str]) -> int:
    """Create an empty PKI, replacing an existing one after confirmation."""
    settings, console = context.settings, context.console
    request = parse_init_arguments(arguments, settings)
    root = settings.pki_dir
    check_pki_path(root)
    if root.is_dir():
        _confirm_removal(console, root, request)
        lock = None if settings.no_lockfile else PKILock(root, notify=console.alert)
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
        f"Made an empty PKI in:\n* {root}\n\n"
        "Next, run build-ca to create its CA, or gen-req for requests that another CA signs."
    )
    if request.algo != "rsa":
        console.notice(
            f"New keys in this PKI use {_auto_configured(request)}, as set in the vars file:\n* {root / 'vars'}"
        )
    return 0


def _auto_configured(request: InitRequest) -> str:
    kind = "the elliptic" if request.algo == "ec" else "the Edwards"
    return f"{kind} curve '{request.curve}'"


def _confirm_removal(console: Console, root: Path, request: InitRequest) -> None:
    # The prompt and the word are easy-rsa 3.2.7's, which scripts answer.
    partially = "PARTIALLY " if request.soft else ""
    auto = f" Its new keys will use {_auto_configured(request)}." if request.algo != "rsa" else ""
    console.confirm(
        "Confirm removal: ",
        "yes",
        f"\nWARNING!!!\n\nThis {partially}deletes the PKI folder below and starts a new, empty PKI in it:\n"
        f"* {root}\n\nThe keys and certificates in it are lost.{auto}",
    )


def _clear_pki(root: Path, soft: bool) -> None:
    """Delete the PKI's entries except the lock file. A soft reset keeps reqs/, vars and the TLS key."""
    tls_key = _read_tls_key(root) if soft else None
    names = _SOFT_RESET_ENTRIES if soft else [entry.name for entry in root.iterdir()]
    # private/ with the CA key goes first, so a clearing cut short leaves no
    # CA that easy-rsa would sign with or write a CRL from.
    names = sorted(names, key=lambda name: name != "private")
    own_journal = f"{journal.FOLDER_PREFIX}{os.getpid()}"
    for name in names:
        if name in (LOCK_FILE_NAME, own_journal):
            continue
        path = root / name
        if path.exists() or path.is_symlink():
            remove_tree(path)
    if tls_key is not None:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%a %b %d %H:%M:%S UTC %Y")
        header = f"# Easy-RSA TLS Key: {stamp}\n# DO NOT DELETE\n\n".encode()
        atomic_write(
            root / _KEPT_TLS_KEY, header + tls_key.rstrip(b"\n") + b"\n", mode=0o600
        )


def _read_tls_key(root: Path) -> bytes | None:
    """Return the TLS key a soft reset must keep, rejecting two different saved keys."""
    current = root / _TLS_KEY
    saved = root / _KEPT_TLS_KEY
    if not current.is_file():
        return None
    data = current.read_bytes()
    if saved.is_file() and _strip_comments(saved.read_bytes()) != _strip_comments(data):
        raise PKIConflict(
            f"The TLS keys {current} and {saved} differ, and only one of them is in use. "
            "Delete the one your VPN no longer uses, then run init-pki soft again."
        )
    return data


def _strip_comments(data: bytes) -> bytes:
    lines = [
        line for line in data.splitlines() if line.strip() and not line.startswith(b"#")
    ]
    return b"\n".join(lines)


def _write_new_pki(root: Path, request: InitRequest) -> None:
    make_dirs(root / "issued")
    make_dirs(root / "reqs")
    # The umask applies on top of 0700, so private/ never gets group or
    # other bits, even under --umask=022 or 000.
    make_dirs(root / "private", mode=0o700)
    writes: list[tuple[Path, bytes, int | None]] = [
        (root / "vars.example", vars_text(None).encode(), None)
    ]
    # A soft reset keeps the vars file, as easy-rsa 3.2.2 keeps it.
    if request.algo != "rsa" and not (root / "vars").exists():
        writes.append((root / "vars", vars_text(request).encode(), None))
    atomic_write_all(writes)


def vars_text(request: InitRequest | None) -> str:
    """Return the vars template, with the algorithm lines set when `request` picks ec or ed.

    The file contains only comments and `set_var` lines, so easy-rsa reads it
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
# set_var. A `force_set_var NAME value` line takes priority over both,
# except over the --days option of a command.
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

# How many days a new CRL is valid. Publish a new one before then.
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
