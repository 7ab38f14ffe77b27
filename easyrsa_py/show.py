"""The show-req, show-cert, show-ca and show-host commands.

The first three print a request or certificate in OpenSSL's `-text` layout
(see easyrsa_py.x509_text) on stdout, with a notice naming the file on
stderr. show-host prints facts about this machine and the settings in
effect, in easyrsa_py's own layout.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from easyrsa_py.errors import CertificateNotFound, FileFormatError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from cryptography import x509

    from easyrsa_py.commands import Context

    Item = TypeVar("Item", x509.Certificate, x509.CertificateSigningRequest)

FULL = "full"

# The noun in messages, the folder and the file suffix of each kind of file.
_KINDS = {
    "req": ("request", "reqs", ".req"),
    "cert": ("certificate", "issued", ".crt"),
}


def _read_full_flag(context: Context, words: list[str]) -> bool:
    """Return whether 'full' is among `words`; warn about any other word, as easy-rsa does."""
    full = False
    for word in words:
        if word == FULL:
            full = True
        else:
            context.console.warn(f"Ignoring unknown argument '{word}' of '{context.command_name}'.")
    return full


def _check_name(command: str, name: str) -> None:
    from easyrsa_py.revoke import check_file_name_base

    try:
        check_file_name_base(name)
    except UsageError as error:
        raise UsageError(f"{error} Usage: '{command} NAME [full]'.") from None


def _load_certificate(path: Path, missing_hint: str) -> x509.Certificate:
    from cryptography import x509

    if not path.is_file():
        raise CertificateNotFound(path, f"No certificate at {path}. {missing_hint}")
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as error:
        raise FileFormatError(path, None, f"not a valid PEM certificate ({_load_failure(error)}).") from None


def _load_request(path: Path, missing_hint: str) -> x509.CertificateSigningRequest:
    from cryptography import x509

    if not path.is_file():
        raise CertificateNotFound(path, f"No certificate request at {path}. {missing_hint}")
    try:
        return x509.load_pem_x509_csr(path.read_bytes())
    except ValueError as error:
        raise FileFormatError(
            path, None, f"not a valid PEM certificate request ({_load_failure(error)})."
        ) from None


def _load_failure(error: ValueError) -> str:
    """Describe why cryptography could not load a PEM file, without its FAQ link."""
    # cryptography 48 reports a missing or damaged PEM block as "Unable to
    # load PEM file. See https://... MalformedFraming" and the like.
    if str(error).startswith("Unable to load PEM file"):
        return "no complete PEM block of the expected type"
    return str(error)


def _render(path: Path, render: Callable[[Item, bool], str], item: Item, full: bool) -> str:
    """Render a loaded certificate or request, raising FileFormatError for a part that cannot be read.

    cryptography parses extensions, attributes and keys only when the
    renderer reads them, so a malformed extension fails here, not at load.
    """
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        return render(item, full)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise FileFormatError(path, None, f"a part of it cannot be read ({error}).") from None


def show(context: Context, arguments: list[str], kind: str) -> int:
    """Print reqs/NAME.req (kind "req") or issued/NAME.crt (kind "cert") as text."""
    from easyrsa_py.x509_text import render_certificate, render_request

    command = context.command_name
    if not arguments:
        raise UsageError(f"Missing name: usage is '{command} NAME [full]'.")
    name = arguments[0]
    _check_name(command, name)
    noun, folder, suffix = _KINDS[kind]
    full = _read_full_flag(context, arguments[1:])
    path = context.layout.root / folder / f"{name}{suffix}"
    hint = f"Check the name; 'ls {path.parent}' lists the {noun}s of this PKI."
    if kind == "req":
        text = _render(path, render_request, _load_request(path, hint), full)
    else:
        text = _render(path, render_certificate, _load_certificate(path, hint), full)
    context.console.notice(f"Showing the {noun} '{name}', stored at:\n* {path}")
    context.console.output(text)
    return 0


def show_ca(context: Context, arguments: list[str]) -> int:
    """Print ca.crt as text."""
    from easyrsa_py.x509_text import render_certificate

    full = _read_full_flag(context, arguments)
    path = context.layout.ca_cert
    certificate = _load_certificate(path, "Create the CA with 'build-ca'.")
    text = _render(path, render_certificate, certificate, full)
    context.console.notice(f"Showing the CA certificate, stored at:\n* {path}")
    context.console.output(text)
    return 0


def _crypto_library() -> str:
    from cryptography import __version__ as cryptography_version
    from cryptography.hazmat.backends.openssl.backend import backend

    return f"cryptography {cryptography_version}, {backend.openssl_version_text()}"


def host_facts(context: Context) -> list[tuple[str, str]]:
    """Collect the facts show-host prints: versions, operating system and main settings.

    Passphrases are never listed.
    """
    from easyrsa_py.commands import version_text

    settings = context.settings
    system = platform.uname()
    return [
        ("Version", version_text()),
        ("Crypto library", _crypto_library()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"),
        ("Host", f"{system.system} {system.release} {system.machine}"),
        ("Shell", os.environ.get("SHELL", "undefined")),
        ("PKI", str(settings.pki_dir)),
        ("Vars file", str(settings.vars_file) if settings.vars_file else "none"),
        ("Algorithm", _algorithm_text(context)),
        ("Digest", settings.digest),
        ("Days", f"CA {settings.ca_expire}, certificate {settings.cert_expire}, CRL {settings.crl_days}"),
        ("Batch", "yes" if settings.batch else "no"),
    ]


def _algorithm_text(context: Context) -> str:
    settings = context.settings
    if settings.algo == "rsa":
        return f"rsa, {settings.key_size} bits"
    return f"{settings.algo}, curve {settings.curve}"


def show_host(context: Context, arguments: list[str]) -> int:
    """Print the facts of host_facts(), one 'Name: value' line each.

    easy-rsa prints nothing with --silent, and so does this command.
    Unlike easy-rsa with EASYRSA_DEBUG, it never dumps the environment,
    which can contain passphrases and AWS keys.
    """
    from easyrsa_py.tlskeys import reject_arguments

    reject_arguments(context.command_name, arguments)
    if context.console.silent:
        return 0
    facts = host_facts(context)
    width = max(len(label) for label, _ in facts) + 1
    context.console.output("\n".join(f"{label + ':':<{width}} {value}" for label, value in facts))
    return 0
