"""The gen-req, sign-req (3.1: sign), import-req and build-*-full commands.

Each handler checks its arguments and every file it would touch before it
writes anything, so a refused command leaves the PKI as it was.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from easyrsa_py import files
from easyrsa_py.errors import EasyRSAError, UsageError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import (
        CertificateIssuerPrivateKeyTypes,
    )

    from easyrsa_py.commands import Context
    from easyrsa_py.pki import PKILayout

logger = logging.getLogger(__name__)

# The types easy-rsa 3.2.7's sign-req accepts without a warning.
_KNOWN_TYPES = ("ca", "server", "serverClient", "client", "codeSigning", "code-signing", "email", "kdc")


class FileConflict(EasyRSAError):
    """A file the command would create already exists."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


def _check_name(name: str) -> None:
    from easyrsa_py.revoke import check_file_name_base

    check_file_name_base(name)


# -- gen-req ------------------------------------------------------------------


def gen_req(context: Context, arguments: list[str]) -> int:
    """Generate private/NAME.key and reqs/NAME.req (`gen-req NAME [nopass] [text]`)."""
    if not arguments:
        raise UsageError("Missing name: usage is 'gen-req NAME [nopass]'.")
    name, *words = arguments
    _check_name(name)
    nopass = text = False
    for word in words:
        if word == "nopass":
            nopass = True
        elif word == "text":
            text = True
        else:
            raise UsageError(f"Unknown argument '{word}' for gen-req: expected 'nopass' or 'text'.")
    key_path, request_path = create_request(context, name, nopass=nopass, text=text, batch_subject=False)
    context.console.notice(
        f"Wrote the private key and the certificate request:\n* req: {request_path}\n* key: {key_path}"
    )
    return 0


def _confirm_overwrite(context: Context, name: str) -> None:
    layout = context.layout
    request_path = layout.request(name)
    key_path = layout.private_key(name)
    if key_path.exists() and context.settings.batch:
        # easy-rsa 3.2.7 replaces the key silently in batch mode, which
        # destroys the key of any certificate already issued for NAME.
        raise FileConflict(
            key_path,
            f"The private key {key_path} already exists. Remove it first, or run "
            "without --batch to confirm replacing it.",
        )
    if request_path.exists():
        context.console.confirm(
            "Confirm request overwrite: ",
            "yes",
            f"WARNING: the request {request_path} exists and will be replaced by a new one.",
        )
    if key_path.exists():
        context.console.confirm(
            "Confirm key overwrite: ",
            "yes",
            f"WARNING: the private key {key_path} exists and will be replaced by a new key.",
        )


def create_request(
    context: Context, name: str, *, nopass: bool, text: bool, batch_subject: bool
) -> tuple[Path, Path]:
    """Make a key and a request for NAME and write both; return their paths.

    `batch_subject` takes the subject from the settings without prompts,
    as build-*-full does. The passphrase is asked before the subject, in
    OpenSSL req's order.
    """
    from easyrsa_py import csr, keys

    settings = context.settings
    layout = context.layout
    _confirm_overwrite(context, name)
    key = keys.generate_private_key(settings)
    passphrase = keys.new_key_passphrase(settings, context.console, f"the key of {name}", nopass)
    ask = None
    if not (settings.batch or batch_subject):
        console = context.console
        ask = csr.terminal_prompter(console.stdin, console.stderr)
    common_name = csr.request_common_name(settings, name)
    subject = csr.build_subject(csr.subject_defaults(settings, common_name), ask)
    request = csr.build_request(key, subject, request_extensions(context, key, subject), settings.digest)
    request_data = csr.request_pem(request)
    if text or settings.raw.get("EASYRSA_TEXT_ON"):
        request_data = request_text(request).encode("utf-8") + request_data
    key_path = layout.private_key(name)
    request_path = layout.request(name)
    key_existed = key_path.exists() or key_path.is_symlink()
    keys.write_private_key(key_path, keys.private_key_pem(key, passphrase))
    try:
        files.make_dirs(request_path.parent)
        files.atomic_write(request_path, request_data)
    except BaseException:
        # A new key without its request is of no use; a replaced key is already gone.
        if not key_existed:
            files.remove_if_present(key_path)
        raise
    return key_path, request_path


def request_extensions(
    context: Context, key: CertificateIssuerPrivateKeyTypes, subject: x509.Name
) -> list[x509.Extension[x509.ExtensionType]]:
    """Build the request's extensions from EASYRSA_EXTRA_EXTS and --san, as gen-req adds them."""
    from easyrsa_py import profiles

    raw = context.settings.raw
    lines: list[profiles.ProfileLine] = []
    if raw.get("EASYRSA_EXTRA_EXTS"):
        lines += profiles.profile_lines(raw["EASYRSA_EXTRA_EXTS"], "EASYRSA_EXTRA_EXTS")
    if raw.get("EASYRSA_SAN"):
        lines.append(
            profiles.ProfileLine(
                "subjectAltName", raw["EASYRSA_SAN"], context.settings.san_critical, "--san", None
            )
        )
    if not lines:
        return []
    public_key = key.public_key()
    extension_context = profiles.ExtensionContext(
        subject_public_key=public_key,
        issuer_name=subject,
        issuer_public_key=public_key,
        environment=dict(raw),
    )
    return profiles.build_extensions(profiles.merge_lines(lines), extension_context)


def request_text(request: x509.CertificateSigningRequest) -> str:
    """Return the text `openssl req -text` writes before the PEM block."""
    from easyrsa_py.ca_text import render_request_text

    return render_request_text(request)


# -- sign-req -----------------------------------------------------------------


def sign_req(context: Context, arguments: list[str]) -> int:
    """Sign reqs/NAME.req (`sign-req TYPE NAME [nopass] [newsubj] [preserve]`)."""
    from easyrsa_py.signing import SigningOptions, sign_request

    if len(arguments) < 2:
        raise UsageError(
            f"Missing arguments: usage is '{context.command_name} TYPE NAME', expected 2, "
            f"got {len(arguments)}."
        )
    cert_type, name, *words = arguments
    _check_name(name)
    _check_type(cert_type)
    options = SigningOptions.from_settings(context.settings)
    new_subject = preserve = False
    for word in words:
        if word == "nopass":
            context.console.warn(f"Ignoring the argument '{word}': sign-req makes no key.")
        elif word.startswith("newsubj"):
            if not options.new_subject:
                raise UsageError("The 'newsubj' argument needs the new subject in --new-subject.")
            new_subject = True
        elif word.startswith("preserve"):
            preserve = True
        else:
            raise UsageError(
                f"Unknown argument '{word}' for {context.command_name}: expected nopass, "
                "newsubj or preserve."
            )
    if options.new_subject and not new_subject:
        raise UsageError("--new-subject also needs the argument 'newsubj' after NAME.")
    if preserve:
        options = replace(options, preserve_dn=True)
    if cert_type not in _KNOWN_TYPES:
        from easyrsa_py import profiles

        # An unknown type raises here, before the warning that it is used.
        settings = context.settings
        profiles.load_profile(
            cert_type, profiles.search_folders(settings.pki_dir, settings.easyrsa_dir, settings.raw)
        )
        context.console.warn(
            f"'{cert_type}' is not a standard certificate type: it is signed with the "
            f"profile x509-types/{cert_type}."
        )
    signed = sign_request(
        context.layout,
        context.settings,
        context.console,
        name=name,
        cert_type=cert_type,
        options=options,
        new_subject=new_subject,
    )
    _after_signing(context, name, cert_type, signed.path)
    return 0


def _check_type(cert_type: str) -> None:
    # The type names a file in x509-types, so it must be a plain file name.
    if cert_type in ("", ".", "..") or any(character in cert_type for character in "/\0\n"):
        raise UsageError(
            f"Invalid certificate type {cert_type!r}: a type is a file name in x509-types, "
            "such as 'client', without '/', NUL or newline characters."
        )
    if cert_type == "COMMON":
        raise UsageError(
            "Invalid certificate type 'COMMON': it is added to every type and cannot be used alone."
        )


def _after_signing(context: Context, name: str, cert_type: str, path: Path) -> None:
    # easy-rsa 3.2.7 writes no inline file for a sub-CA certificate.
    if cert_type != "ca":
        from easyrsa_py.inline import write_inline_after_issue

        write_inline_after_issue(context.layout, context.settings, context.console, name)
    context.console.notice(f"Wrote the certificate:\n* {path}")


# -- import-req ---------------------------------------------------------------


def import_req(context: Context, arguments: list[str]) -> int:
    """Copy a request file into reqs/NAME.req (`import-req FILE NAME`)."""
    from easyrsa_py.csr import parse_request

    if len(arguments) != 2:
        raise UsageError("Wrong arguments: usage is 'import-req FILE NAME'.")
    source_text, name = arguments
    _check_name(name)
    source = Path(source_text)
    if not source.is_file():
        raise UsageError(f"No request file found at {source}. Check the path given to import-req.")
    data = source.read_bytes()
    parse_request(data, source)
    target = context.layout.request(name)
    if target.exists():
        raise FileConflict(
            target, f"The request {target} already exists. Choose another name for the import."
        )
    files.make_dirs(target.parent)
    files.atomic_write(target, data)
    context.console.notice(
        f"Imported the request as '{name}':\n* {target}\nSign it with 'sign-req TYPE {name}'."
    )
    return 0


# -- build-*-full -------------------------------------------------------------


def _interrupted_hint(layout: PKILayout, name: str, kind: str) -> str:
    """Explain a key and request without a certificate, which a killed build-*-full leaves."""
    key, request = layout.private_key(name), layout.request(name)
    if layout.issued_cert(name).exists() or not (key.is_file() and request.is_file()):
        return ""
    return (
        f" If an earlier run was interrupted before signing, sign the request with "
        f"'sign-req {kind} {name}', or delete {request} and {key} to start again."
    )


def build_full(context: Context, arguments: list[str], kind: str) -> int:
    """Make a key and request for NAME and sign them as `kind` (`build-KIND-full NAME [nopass]`)."""
    from easyrsa_py.signing import SigningOptions, sign_request

    if not arguments:
        raise UsageError(f"Missing name: usage is '{context.command_name} NAME [nopass]'.")
    name, *words = arguments
    _check_name(name)
    nopass = False
    for word in words:
        if word != "nopass":
            raise UsageError(f"Unknown argument '{word}' for {context.command_name}: expected 'nopass'.")
        nopass = True
    layout = context.layout
    for label, path in (
        ("request", layout.request(name)),
        ("private key", layout.private_key(name)),
        ("certificate", layout.issued_cert(name)),
    ):
        # A dangling link counts too: the cleanup below would delete it.
        if path.exists() or path.is_symlink():
            raise FileConflict(
                path,
                f"The {label} {path} already exists. Choose another name for {context.command_name}."
                + _interrupted_hint(layout, name, kind),
            )
    # build-*-full always copies the request's extensions, as in easy-rsa 3.2.7.
    options = replace(SigningOptions.from_settings(context.settings), copy_extensions=True)
    key_path, request_path = layout.private_key(name), layout.request(name)
    try:
        create_request(context, name, nopass=nopass, text=False, batch_subject=True)
        context.console.notice(
            f"Wrote the private key and the certificate request:\n* req: {request_path}\n* key: {key_path}"
        )
        signed = sign_request(
            layout,
            context.settings,
            context.console,
            name=name,
            cert_type=kind,
            options=options,
            local_request=True,
        )
    except BaseException:
        # Neither file existed before this run (checked above), so a failed
        # request write or signing removes both, as easy-rsa removes them.
        files.remove_if_present(request_path)
        files.remove_if_present(key_path)
        raise
    _after_signing(context, name, kind, signed.path)
    return 0
