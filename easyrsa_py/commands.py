"""The command table: one entry per easyrsa command drives dispatch and help.

Each handler imports the modules it needs when it runs, so a command
loads only its own code. Start-up time is most of a short command's run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from easyrsa_py import EASYRSA_COMPAT_VERSION, __version__
from easyrsa_py.errors import (
    CertificateNotFound,
    EasyRSAError,
    FileFormatError,
    UsageError,
)

if TYPE_CHECKING:
    from easyrsa_py.console import Console
    from easyrsa_py.pki import PKILayout
    from easyrsa_py.settings import Settings


@dataclass
class Context:
    settings: Settings
    layout: PKILayout
    console: Console
    command_name: str


Handler = Callable[[Context, list[str]], int]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    usage: str
    summary: str
    needs_ca: bool = True
    # The EASYRSA_* variable that `--days` sets for this command, if any.
    days_variable: str | None = None
    # Commands that only read crl.pem and talk to AWS skip pki/lock.file, so
    # an `upload --wait` of several minutes does not block other commands.
    # gen-crl replaces crl.pem atomically, so they never read half a file.
    takes_lock: bool = True
    # easy-rsa runs a few commands (rand, display-dn, show-eku) without a PKI.
    needs_pki: bool = True
    # init-pki ignores every vars file, as easy-rsa's does.
    reads_vars: bool = True


@dataclass
class RevokeRequest:
    """The parsed arguments of a revoke command: names, a reason and the follow-up steps."""

    names: list[str]
    reason: str | None
    gen_crl: bool
    upload_arguments: list[str] | None  # the upload options after --upload, or None


def parse_revoke_arguments(command: str, arguments: list[str]) -> RevokeRequest:
    """Read `NAME [REASON]` as easy-rsa does, or several names with easyrsa_py's options.

    With exactly two words the second is the reason when it is a reason word
    (easy-rsa's syntax) and a second name otherwise. `--reason=WORD`,
    `--gen-crl` and `--upload [UPLOAD OPTIONS]` are easyrsa_py's own; any
    other word is a name, as easy-rsa reads it.
    """
    from easyrsa_py.revoke import normalize_reason, reason_or_none

    words: list[str] = []
    reason_option: str | None = None
    gen_crl = False
    upload_arguments: list[str] | None = None
    for position, argument in enumerate(arguments):
        if argument == "--upload":
            upload_arguments = arguments[position + 1 :]
            break
        if argument == "--gen-crl":
            gen_crl = True
        elif argument.startswith("--reason="):
            reason_option = normalize_reason(argument.partition("=")[2])
        else:
            # Any other word is a name, even one that starts with '-', as in easy-rsa.
            words.append(argument)
    if not words:
        raise UsageError(f"Missing certificate name: usage is '{command} NAME [REASON]'.")
    reason = reason_option
    if reason_option is None and len(words) > 2 and reason_or_none(words[1]) is not None:
        raise UsageError(
            f"Unexpected argument '{words[2]}': usage is '{command} NAME [REASON]'. To revoke "
            "several certificates, list their names and give the reason as --reason=REASON."
        )
    if reason_option is None and len(words) == 2:
        reason = reason_or_none(words[1])
        if reason is not None:
            words = words[:1]
    if upload_arguments is not None:
        gen_crl = True  # an upload needs the new CRL
    return RevokeRequest(words, reason, gen_crl, upload_arguments)


def _revoke_handler(kind: str) -> Handler:
    def handle(context: Context, arguments: list[str]) -> int:
        from easyrsa_py.revoke import revoke_all

        request = parse_revoke_arguments(context.command_name, arguments)
        _reject_mistyped_reason(context, request)
        _reject_name_read_as_reason(context, arguments, request)
        if request.gen_crl:
            _check_crl_days(context.settings.crl_days)  # before the revocation, which is never undone
        upload_options = None
        if request.upload_arguments is not None:
            from easyrsa_py.upload import parse_upload_arguments

            # Parse the upload options first, so a mistake there changes nothing.
            upload_options = parse_upload_arguments(request.upload_arguments)
        revoke_all(
            context.layout,
            context.console,
            command=context.command_name,
            kind=kind,
            names=request.names,
            reason=request.reason,
            passin=context.settings.passin,
            crl_follows=request.gen_crl,
        )
        if request.gen_crl:
            _write_crl_after_revocation(context, request.names)
        if upload_options is not None:
            from easyrsa_py.upload import upload_crl

            return upload_crl(context.layout, context.settings, context.console, upload_options)
        return 0

    return handle


def _write_crl_after_revocation(context: Context, names: list[str]) -> None:
    """Write the CRL for `revoke --gen-crl`, raising an error that reports the kept revocation if that fails."""
    from easyrsa_py.files import describe_os_error

    try:
        _gen_crl(context, [])
    except (EasyRSAError, OSError) as error:
        detail = describe_os_error(error) if isinstance(error, OSError) else str(error)
        raise EasyRSAError(
            f"Revoked {', '.join(names)}, but writing the CRL failed: {detail}\n"
            "The revocation stands and the old CRL is unchanged. Run 'gen-crl' once the problem is fixed."
        ) from error


def _reject_mistyped_reason(context: Context, request: RevokeRequest) -> None:
    """Raise UsageError when the second of two words is a reason in the wrong letter case.

    easy-rsa's reason words are case-sensitive, so 'KeyCompromise' is read
    as a second name. With no certificate of that name, the user meant a
    reason, and an error naming the reason helps more than "no certificate".
    """
    from easyrsa_py.revoke import reason_or_none

    if len(request.names) != 2 or request.reason is not None:
        return
    word = request.names[1]
    layout = context.layout
    if any(path.exists() for path in (layout.issued_cert(word), layout.expired_cert(word),
                                      layout.renewed_cert(word))):
        return
    for candidate in (word.lower(), word[:1].lower() + word[1:]):
        if reason_or_none(candidate) is not None:
            raise UsageError(
                f"Invalid revocation reason '{word}': reasons are case-sensitive, as in easy-rsa. "
                f"Did you mean '{reason_or_none(candidate)}'? See 'help revoke'."
            )


def _reject_name_read_as_reason(context: Context, arguments: list[str], request: RevokeRequest) -> None:
    """Raise UsageError when a second word that easy-rsa reads as a reason is also a certificate's name.

    easy-rsa takes any word starting with 'ca', 'key', 'sup' and so on as a
    reason, so 'revoke alice carol' revokes only alice, for CACompromise.
    With a certificate named carol, the user more likely meant two names,
    and revoking one of them with a wrong reason cannot be taken back.
    """
    from easyrsa_py.revoke import is_spelled_out_reason

    words = [word for word in arguments if word != "--gen-crl" and not word.startswith("--reason=")]
    if "--upload" in words:
        words = words[: words.index("--upload")]
    if len(words) != 2 or request.names != words[:1] or is_spelled_out_reason(words[1]):
        return
    word, layout = words[1], context.layout
    if not any(path.exists() for path in (layout.issued_cert(word), layout.expired_cert(word),
                                          layout.renewed_cert(word))):
        return
    raise UsageError(
        f"'{word}' is the name of a certificate, but easy-rsa reads it as the reason {request.reason}. "
        f"To revoke both, give a reason option: '{context.command_name} {words[0]} {word} "
        f"--reason=unspecified'. To revoke {words[0]} alone, spell the reason out: "
        f"'{context.command_name} {words[0]} {request.reason}'."
    )


def _option_hint(word: str) -> str:
    if not word.startswith("-"):
        return ""
    return " Options go before the command, as in 'easyrsa --batch revoke NAME'."


def _no_arguments(command: str, arguments: list[str]) -> None:
    if arguments:
        raise UsageError(
            f"Unexpected argument '{arguments[0]}': '{command}' takes no arguments."
            + _option_hint(arguments[0])
        )


# A CRL's nextUpdate must fit a GeneralizedTime year, so at most 9999; a
# million days (about 2,700 years) keeps any run before 7000 inside it.
_MAX_CRL_DAYS = 1_000_000


def _check_crl_days(days: int) -> None:
    if days > _MAX_CRL_DAYS:
        raise UsageError(
            f"Invalid CRL lifetime of {days} days (--days or EASYRSA_CRL_DAYS): "
            f"use at most {_MAX_CRL_DAYS} days."
        )
    if days < 1:
        raise UsageError(
            f"Invalid CRL lifetime of {days} days (--days or EASYRSA_CRL_DAYS): a CRL "
            "valid for 0 days is already expired, and servers that check it reject every "
            "client. Use 1 or more; the default is 180."
        )


def _gen_crl(context: Context, arguments: list[str]) -> int:
    from easyrsa_py.database import generate_crl

    _no_arguments("gen-crl", arguments)
    settings = context.settings
    _check_crl_days(settings.crl_days)
    crl = generate_crl(context.layout, passin=settings.passin, digest=settings.digest, days=settings.crl_days)
    context.console.notice(
        f"Wrote the CRL with {crl.entry_count} revoked certificate(s):\n"
        f"* {context.layout.crl_pem}\n* {context.layout.crl_der} (DER copy)\n\n"
        f"It expires on {crl.next_update:%Y-%m-%d %H:%M:%S} UTC. After that date an OpenVPN "
        "server that checks it rejects every new connection, so generate and install a new "
        "CRL before then."
    )
    return 0


def _show_crl(context: Context, arguments: list[str]) -> int:
    from cryptography import x509

    from easyrsa_py.crl_text import render_crl

    path = context.layout.crl_pem
    if not path.is_file():
        raise CertificateNotFound(path, f"No CRL at {path}. Run 'gen-crl' to create it.")
    try:
        crl = x509.load_pem_x509_crl(path.read_bytes())
    except ValueError:
        raise FileFormatError(path, None, "not a valid PEM CRL. Run 'gen-crl' to replace it.") from None
    context.console.notice(f"Showing the CRL stored at:\n* {path}")
    context.console.output(render_crl(crl))
    return 0


def _update_db(context: Context, arguments: list[str]) -> int:
    from easyrsa_py.database import update_database

    _no_arguments("update-db", arguments)
    result = update_database(context.layout, passin=context.settings.passin)
    if result.expired_serials:
        context.console.notice(
            f"Marked {len(result.expired_serials)} certificate(s) as expired in index.txt: "
            + ", ".join(result.expired_serials)
        )
    else:
        context.console.notice("No certificates needed to be marked as expired.")
    return 0


def _upload(context: Context, arguments: list[str]) -> int:
    from easyrsa_py.upload import parse_upload_arguments, upload_crl

    options = parse_upload_arguments(arguments)
    return upload_crl(context.layout, context.settings, context.console, options)


def _download(context: Context, arguments: list[str]) -> int:
    from easyrsa_py.upload import download_crl, parse_download_arguments

    options = parse_download_arguments(arguments)
    return download_crl(context.layout, context.settings, context.console, options)


def _crl_status(context: Context, arguments: list[str]) -> int:
    from easyrsa_py.upload import crl_status, parse_status_arguments

    min_days, json_output = parse_status_arguments(arguments)
    return crl_status(context.layout, context.console, min_days, json_output)


def _show_status(report: str) -> Handler:
    def handle(context: Context, arguments: list[str]) -> int:
        from easyrsa_py import status

        request = status.parse_status_arguments(context.command_name, arguments)
        layout = context.layout
        window = context.settings.pre_expiry_window
        if report == status.REPORT_EXPIRE:
            entries = status.expiring_certificates(layout, window, request.name)
        elif report == status.REPORT_REVOKE:
            entries = status.revoked_certificates(layout, request.name)
        else:
            entries = status.renewed_certificates(layout, request.name)
        if request.json_output:
            context.console.output(status.render_json(entries))
            return 0
        if request.name is None:
            context.console.notice(status.report_heading(report, window))
        elif request.name not in status.names_in_index(layout):
            context.console.warn(f"No certificate named '{request.name}' in {layout.index}.")
        if entries:
            context.console.output(status.render_text(entries))
        return 0

    return handle


def _rand(context: Context, arguments: list[str]) -> int:
    from easyrsa_py.smallcommands import random_hex

    context.console.output(random_hex(arguments))
    return 0


def _check_serial(context: Context, arguments: list[str]) -> int:
    from easyrsa_py.smallcommands import check_serial

    status = check_serial(context.layout.index, arguments)
    # As in easy-rsa, batch mode prints nothing and reports through the exit
    # code, while an interactive run prints the result and exits 0.
    if context.settings.batch:
        return 1 if status.present else 0
    context.console.output(status.describe(context.layout.index))
    return 0


def _renewable(context: Context, arguments: list[str]) -> int:
    from datetime import UTC, datetime

    from easyrsa_py.smallcommands import renewable_names

    window = context.settings.raw.get("EASYRSA_CERT_RENEW")
    names = renewable_names(context.layout.index, window, arguments, datetime.now(UTC))
    if not names:
        # As in easy-rsa 3.1, finding nothing is exit 1, so scripts can test it.
        context.console.notice("No valid certificate ends within the renewal window.")
        return 1
    context.console.output("\n".join(names))
    return 0


def _display_dn(context: Context, arguments: list[str]) -> int:
    from easyrsa_py.smallcommands import display_dn

    context.console.output(display_dn(arguments))
    return 0


def _show_eku(context: Context, arguments: list[str]) -> int:
    from easyrsa_py.smallcommands import certificate_key_usage

    usage = certificate_key_usage(context.settings.pki_dir, arguments)
    if not context.console.silent:
        context.console.output(usage.describe())
    # As in easy-rsa, only a usage that matches an easy-rsa type succeeds.
    return 0 if usage.known else 1


_EKU_HELP = (
    "Print which easy-rsa type (client, server, serverClient, codeSigning) the\n"
    "extendedKeyUsage of FILE, or of issued/NAME.crt, matches, with a 'self-signed-'\n"
    "prefix for a CA certificate. Exits 1 when it matches none."
)


_SERIAL_HELP = (
    "Look SERIAL (lowercase hex) up in index.txt. With --batch, print nothing and\n"
    "exit 0 when no certificate has it and 1 when one does; otherwise print the\n"
    "certificate's status and exit 0."
)


_AWS_SELECTION = (
    "Endpoints: --endpoint SPEC (repeatable), where SPEC is an endpoint id\n"
    "(cvpn-endpoint-...), REGION:ID, or the endpoint's ARN\n"
    "(arn:aws:ec2:REGION:ACCOUNT:client-vpn-endpoint/cvpn-endpoint-...); and the\n"
    "SPECs in EASYRSA_AWS_ENDPOINTS (vars file or environment, separated by spaces\n"
    "or commas). --tag KEY=VALUE (repeatable) adds every endpoint that carries all\n"
    "the given tags, searched in each --region (repeatable) or the default region.\n"
    "\n"
    "AWS settings, as the AWS CLI reads them: --region, then AWS_REGION, then\n"
    "AWS_DEFAULT_REGION, then the profile's region; --profile or AWS_PROFILE;\n"
    "--endpoint-url, or AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL. Each AWS call makes\n"
    "at most EASYRSA_AWS_MAX_ATTEMPTS attempts (default 5; throttling and server\n"
    "errors are retried with backoff), and each request times out after\n"
    "EASYRSA_AWS_TIMEOUT seconds to connect or to read (default 30)."
)

_UPLOAD_HELP = (
    "Upload crl.pem to AWS Client VPN endpoints. The CRL must parse, be signed by\n"
    "ca.crt, hold at most 20,000 entries and have a nextUpdate more than --min-days\n"
    "(default 7) days away; --force uploads an expiring or expired CRL anyway.\n"
    "Each endpoint is described and its CRL exported; ours is imported only when\n"
    "it differs, because an import resets every client connection (--force\n"
    "imports it anyway).\n"
    "\n"
    "  --dry-run       check and compare, then ask EC2 whether the import is allowed;\n"
    "                  nothing changes\n"
    "  --wait SECONDS  poll until the endpoint returns our CRL with status active\n"
    "  --json          print one JSON document instead of one line per endpoint\n"
    "\n"
    + _AWS_SELECTION + "\n"
    "\n"
    "Exit codes: 0 every endpoint succeeded; 1 usage, AWS setup or local CRL problem\n"
    "(nothing was sent); 2 at least one endpoint failed."
)

_DOWNLOAD_HELP = (
    "Export one endpoint's CRL to FILE (--out) or stdout, and say on stderr how it\n"
    "differs from crl.pem: serials added or missing, and nextUpdate.\n"
    "\n"
    + _AWS_SELECTION + "\n"
    "\n"
    "Exit codes: 0 exported; 1 usage or AWS setup problem; 2 the export failed."
)

_CRL_STATUS_HELP = (
    "Print crl.pem's lastUpdate, nextUpdate, days left and entry count, as JSON with\n"
    "--json. Sends nothing to AWS.\n"
    "\n"
    "Exit codes: 0 more than --min-days (default 7) days left; 3 that many days or\n"
    "fewer, or expired; 1 the CRL is missing or invalid."
)


_REVOKE_REASONS = (
    "REASON is one of: unspecified (us), keyCompromise (kc), CACompromise (cc),\n"
    "affiliationChanged (ac), superseded (ss), cessationOfOperation (co),\n"
    "certificateHold (ch).\n\n"
    "easyrsa_py also takes several names (NAME NAME ...), revoked together with one\n"
    "confirmation, and these options after the names:\n"
    "  --reason=REASON   the reason for every name\n"
    "  --gen-crl         write the new CRL in the same locked run\n"
    "  --upload [OPTS]   also upload the new CRL to AWS Client VPN (implies --gen-crl);\n"
    "                    OPTS are the options of 'upload'"
)

_COMMAND_LIST = (
    Command("revoke", _revoke_handler("issued"), "revoke NAME [REASON]",
            "Revoke the issued certificate NAME.\nWhen an expired or renewed certificate of "
            "the same name exists too, use revoke-issued,\nrevoke-expired or revoke-renewed "
            "instead (or --batch to revoke the issued one).\n" + _REVOKE_REASONS),
    Command("revoke-issued", _revoke_handler("issued"), "revoke-issued NAME [REASON]",
            "Revoke the current certificate in issued/ and move it, its key and request "
            "to revoked/.\n" + _REVOKE_REASONS),
    Command("revoke-expired", _revoke_handler("expired"), "revoke-expired NAME [REASON]",
            "Revoke the certificate moved to expired/ by the 'expire' command.\n" + _REVOKE_REASONS),
    Command("revoke-renewed", _revoke_handler("renewed"), "revoke-renewed NAME [REASON]",
            "Revoke the old certificate kept in renewed/issued/ by 'renew'.\n" + _REVOKE_REASONS),
    Command("gen-crl", _gen_crl, "gen-crl",
            "Write crl.pem and crl.der from index.txt, valid for EASYRSA_CRL_DAYS days "
            "(--days sets it; default 180).", days_variable="EASYRSA_CRL_DAYS"),
    Command("show-crl", _show_crl, "show-crl", "Print crl.pem as text."),
    Command("update-db", _update_db, "update-db", "Mark certificates whose end date has passed as expired in index.txt."),
    Command("show-expire", _show_status("expire"), "show-expire [NAME] [--json]",
            "List the certificates in issued/ (all, or NAME) that expire within\n"
            "EASYRSA_PRE_EXPIRY_WINDOW days (--days sets it; default 90), and the CA\n"
            "when it does. --json prints one JSON list instead.",
            days_variable="EASYRSA_PRE_EXPIRY_WINDOW"),
    Command("show-revoke", _show_status("revoke"), "show-revoke [NAME] [--json]",
            "List the revoked certificates (all, or NAME) with revocation date and reason.\n"
            "--json prints one JSON list instead."),
    Command("show-renew", _show_status("renew"), "show-renew [NAME] [--json]",
            "List the old certificates of renewals (all, or NAME) that are not revoked\n"
            "yet. --json prints one JSON list instead."),
    Command("serial", _check_serial, "serial SERIAL", _SERIAL_HELP),
    Command("check-serial", _check_serial, "check-serial SERIAL", _SERIAL_HELP),
    Command("display-dn", _display_dn, "display-dn x509|req FILE",
            "Print the subject of the PEM certificate (x509) or request (req) in FILE,\n"
            "one attribute per line.", needs_ca=False, takes_lock=False, needs_pki=False),
    Command("show-eku", _show_eku, "show-eku NAME|FILE", _EKU_HELP,
            needs_ca=False, takes_lock=False, needs_pki=False),
    Command("x509-eku", _show_eku, "x509-eku NAME|FILE", _EKU_HELP + "\nSame as 'show-eku'.",
            needs_ca=False, takes_lock=False, needs_pki=False),
    Command("renewable", _renewable, "renewable [NAME...]",
            "easy-rsa 3.1: print the commonName of each valid certificate (all, or those\n"
            "named) that ends within EASYRSA_CERT_RENEW days (--renew-days; default 30).\n"
            "Exits 1 when there is none."),
    Command("rand", _rand, "rand N", "Print N random bytes as lowercase hex.",
            needs_ca=False, takes_lock=False, needs_pki=False),
    Command("random", _rand, "random N", "Print N random bytes as lowercase hex (same as 'rand').",
            needs_ca=False, takes_lock=False, needs_pki=False),
    Command("upload", _upload,
            "upload [--endpoint SPEC]... [--tag KEY=VALUE]... [--region R] [--profile P]\n"
            "         [--endpoint-url URL] [--dry-run] [--force] [--wait SECONDS] [--min-days N] [--json]",
            _UPLOAD_HELP, needs_ca=False, takes_lock=False),
    Command("download", _download,
            "download [--endpoint SPEC | --tag KEY=VALUE] [--region R] [--profile P]\n"
            "         [--endpoint-url URL] [--out FILE]",
            _DOWNLOAD_HELP, needs_ca=False, takes_lock=False),
    Command("crl-status", _crl_status, "crl-status [--min-days N] [--json]", _CRL_STATUS_HELP,
            needs_ca=False, takes_lock=False),
)

# Each command below lives in its own module, imported only when it runs.
def _delegate(module: str, function: str, *extra: str) -> Handler:
    def handle(context: Context, arguments: list[str]) -> int:
        from importlib import import_module

        handler = getattr(import_module(f"easyrsa_py.{module}"), function)
        result: int = handler(context, arguments, *extra)
        return result

    return handle


_BUILD_FULL = (
    "Generate a key and request for NAME and sign it as a {kind} certificate in one step.\n"
    "'nopass' leaves the key unencrypted."
)
_EXPORT = "Write {what} for NAME to {where}."

_MORE_COMMANDS = (
    Command("init-pki", _delegate("pkisetup", "init_pki"), "init-pki [soft|hard] [rsa|ec|ed|CURVE]",
            "Create an empty PKI folder. An existing PKI is emptied after confirmation;\n"
            "'soft' keeps its requests, vars file and TLS key. A key algorithm or curve\n"
            "writes a vars file that selects it. Only a folder holding nothing but PKI\n"
            "files is ever emptied.", needs_ca=False, needs_pki=False, takes_lock=False,
            reads_vars=False),
    Command("clean-all", _delegate("pkisetup", "init_pki"), "clean-all [soft|hard] [rsa|ec|ed|CURVE]",
            "Same as 'init-pki'.", needs_ca=False, needs_pki=False, takes_lock=False,
            reads_vars=False),
    Command("build-ca", _delegate("pkisetup", "build_ca"), "build-ca [nopass] [subca]",
            "Create the CA key and self-signed certificate ('subca': a request to be signed\n"
            "by a parent CA instead).", needs_ca=False, days_variable="EASYRSA_CA_EXPIRE"),
    Command("renew-ca", _delegate("pkisetup", "renew_ca"), "renew-ca",
            "Issue a new CA certificate for the existing CA key, keeping the old one.",
            days_variable="EASYRSA_CA_EXPIRE"),
    Command("self-sign-server", _delegate("pkisetup", "self_sign", "server"),
            "self-sign-server NAME [nopass]",
            "Create a key and a self-signed server certificate for NAME, without a CA.",
            needs_ca=False, days_variable="EASYRSA_CERT_EXPIRE"),
    Command("self-sign-client", _delegate("pkisetup", "self_sign", "client"),
            "self-sign-client NAME [nopass]",
            "Create a key and a self-signed client certificate for NAME, without a CA.",
            needs_ca=False, days_variable="EASYRSA_CERT_EXPIRE"),
    Command("import-ca", _delegate("pkisetup", "import_ca"), "import-ca FILE",
            "Add a certificate of another CA to inline/external-ca.list, which inline files\n"
            "include after ca.crt. ca.crt itself is not changed."),
    Command("gen-req", _delegate("issuing", "gen_req"), "gen-req NAME [nopass] [text]",
            "Generate a private key (private/NAME.key) and a certificate request\n"
            "(reqs/NAME.req) for NAME. 'nopass' leaves the key unencrypted; 'text' puts the\n"
            "request's text before the PEM block. Without --batch, asks for the subject.",
            needs_ca=False),
    Command("sign-req", _delegate("issuing", "sign_req"), "sign-req TYPE NAME [newsubj] [preserve]",
            "Sign the request reqs/NAME.req as a certificate of TYPE (client, server,\n"
            "serverClient, ca, code-signing, email, kdc, or a profile in x509-types/).\n"
            "'newsubj' replaces the subject with --new-subject; 'preserve' keeps the\n"
            "request's subject fields in their order.",
            days_variable="EASYRSA_CERT_EXPIRE"),
    Command("sign", _delegate("issuing", "sign_req"), "sign TYPE NAME [newsubj] [preserve]",
            "Same as 'sign-req' (easy-rsa 3.1 name).",
            days_variable="EASYRSA_CERT_EXPIRE"),
    Command("import-req", _delegate("issuing", "import_req"), "import-req FILE NAME",
            "Copy a request made elsewhere into reqs/NAME.req, ready for sign-req.",
            needs_ca=False),
    Command("build-client-full", _delegate("issuing", "build_full", "client"),
            "build-client-full NAME [nopass]", _BUILD_FULL.format(kind="client"),
            days_variable="EASYRSA_CERT_EXPIRE"),
    Command("build-server-full", _delegate("issuing", "build_full", "server"),
            "build-server-full NAME [nopass]", _BUILD_FULL.format(kind="server"),
            days_variable="EASYRSA_CERT_EXPIRE"),
    Command("build-serverClient-full", _delegate("issuing", "build_full", "serverClient"),
            "build-serverClient-full NAME [nopass]", _BUILD_FULL.format(kind="serverClient"),
            days_variable="EASYRSA_CERT_EXPIRE"),
    Command("renew", _delegate("renewal", "renew"), "renew NAME",
            "Sign the existing request of NAME again as a new certificate; the old one\n"
            "moves to renewed/ until it is revoked with 'revoke-renewed'.",
            days_variable="EASYRSA_CERT_EXPIRE"),
    Command("expire", _delegate("renewal", "expire"), "expire NAME",
            "Move issued/NAME.crt to expired/, so that NAME can be signed again; revoke\n"
            "the old certificate later with 'revoke-expired'."),
    Command("inline", _delegate("inline", "inline"), "inline NAME",
            "Write the certificate, key, CA and TLS key of NAME in one file, ready to paste\n"
            "into an OpenVPN configuration: inline/private/NAME.inline (0600), or\n"
            "inline/NAME.inline when there is no key.", needs_ca=False),
    Command("set-pass", _delegate("exports", "set_pass"), "set-pass NAME [nopass|file]",
            "Change or remove the passphrase of private/NAME.key ('file': the key file\n"
            "given as NAME).", needs_ca=False),
    Command("set-rsa-pass", _delegate("exports", "set_pass"), "set-rsa-pass NAME [nopass|file]",
            "Same as 'set-pass' (easy-rsa 3.1 name).", needs_ca=False),
    Command("set-ec-pass", _delegate("exports", "set_pass"), "set-ec-pass NAME [nopass|file]",
            "Same as 'set-pass' (easy-rsa 3.1 name).", needs_ca=False),
    Command("set-ed-pass", _delegate("exports", "set_pass"), "set-ed-pass NAME [nopass|file]",
            "Same as 'set-pass'.", needs_ca=False),
    Command("export-p12", _delegate("exports", "export", "p12"),
            "export-p12 NAME [nopass|noca|nokey|nofn|legacy]",
            _EXPORT.format(what="a PKCS#12 bundle (key, certificate and CA)",
                           where="private/NAME.p12 and inline/private/NAME.p12-inline")
            + "\n'nopass': no passphrase; 'noca': without the CA; 'nokey': without the key;\n"
            "'nofn': no friendlyName (--usefn=NAME sets one); 'legacy': 3DES and a SHA-1 MAC\n"
            "for old clients.", needs_ca=False),
    Command("export-p7", _delegate("exports", "export", "p7"), "export-p7 NAME [noca]",
            _EXPORT.format(what="a PKCS#7 bundle of the certificate and CA", where="issued/NAME.p7b"),
            needs_ca=False),
    Command("export-p8", _delegate("exports", "export", "p8"), "export-p8 NAME [nopass]",
            _EXPORT.format(what="the key in PKCS#8 form", where="private/NAME.p8"), needs_ca=False),
    Command("export-p1", _delegate("exports", "export", "p1"), "export-p1 NAME [nopass]",
            _EXPORT.format(what="the RSA key in PKCS#1 form", where="private/NAME.p1"),
            needs_ca=False),
    Command("show-req", _delegate("show", "show", "req"), "show-req NAME [full]",
            "Print the request reqs/NAME.req as text ('full': with its public key).",
            needs_ca=False),
    Command("show-cert", _delegate("show", "show", "cert"), "show-cert NAME [full]",
            "Print the certificate issued/NAME.crt as text ('full': with its public key).",
            needs_ca=False),
    Command("show-ca", _delegate("show", "show_ca"), "show-ca [full]",
            "Print ca.crt as text ('full': with its public key)."),
    Command("show-host", _delegate("show", "show_host"), "show-host",
            "Print what easyrsa_py knows of this machine and its settings.",
            needs_ca=False, needs_pki=False, takes_lock=False),
    Command("verify-cert", _delegate("verify", "verify_cert"), "verify-cert NAME [batch]",
            "Check that issued/NAME.crt was signed by this CA and is within its dates, as\n"
            "'openssl verify' does. With --batch or the word 'batch', exit 1 when it fails."),
    Command("verify", _delegate("verify", "verify_cert"), "verify NAME",
            "Same as 'verify-cert' (easy-rsa 3.1 name)."),
    Command("gen-dh", _delegate("tlskeys", "gen_dh"), "gen-dh",
            "Generate Diffie-Hellman parameters of EASYRSA_KEY_SIZE bits in dh.pem.",
            needs_ca=False),
    Command("gen-tls-auth-key", _delegate("tlskeys", "gen_tls_key", "tls-auth"),
            "gen-tls-auth-key", "Generate an OpenVPN tls-auth key in private/easyrsa-tls.key.",
            needs_ca=False),
    Command("gen-tls-crypt-key", _delegate("tlskeys", "gen_tls_key", "tls-crypt"),
            "gen-tls-crypt-key", "Generate an OpenVPN tls-crypt key in private/easyrsa-tls.key.",
            needs_ca=False),
    Command("gen-tls-cryptv2-key", _delegate("tlskeys", "gen_tls_key", "tls-crypt-v2"),
            "gen-tls-cryptv2-key",
            "Not available, as in easy-rsa: tls-crypt-v2 keys need the openvpn binary. Prints\n"
            "the 'openvpn --genkey' commands that make them, and exits 1.", needs_ca=False),
    Command("import-tls-key", _delegate("tlskeys", "import_tls_key"), "import-tls-key FILE",
            "Copy an OpenVPN tls-auth or tls-crypt key into private/easyrsa-tls.key.",
            needs_ca=False),
    Command("write", _delegate("tlskeys", "write"),
            "write TYPE [FILE|FOLDER [overwrite]] | legacy | legacy-hard",
            "Print or write one of the files easy-rsa keeps beside the script\n"
            "(vars, safe-cnf, COMMON and the x509-types profiles).",
            needs_ca=False, needs_pki=False, takes_lock=False),
)

COMMANDS: dict[str, Command] = {command.name: command for command in _COMMAND_LIST + _MORE_COMMANDS}

# easy-rsa commands that easyrsa_py does not implement: only 3.1's upgrade,
# which converts easy-rsa 2 PKIs.
NOT_YET_IMPLEMENTED = frozenset({
    "upgrade",
})


# The overview lists the commands in the order of an operator's work, each
# with a few words. `help COMMAND` prints the details.
_OVERVIEW_GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Set up a PKI", (
        ("init-pki", "create an empty PKI (clean-all: the same)"),
        ("build-ca", "create the CA, or a sub-CA request"),
        ("renew-ca", "new CA certificate for the same CA key"),
        ("import-ca", "add another CA to the inline files' CA list"),
        ("self-sign-server", "self-signed server certificate, no CA"),
        ("self-sign-client", "self-signed client certificate, no CA"),
    )),
    ("Issue certificates", (
        ("gen-req", "private key and request for NAME"),
        ("import-req", "take a request made elsewhere"),
        ("sign-req", "sign a request as client, server, ... (sign: the same)"),
        ("build-client-full", "key, request and client certificate in one step"),
        ("build-server-full", "the same for a server"),
        ("build-serverClient-full", "the same for a server that is also a client"),
    )),
    ("Renew and revoke", (
        ("renew", "sign NAME's request again; the old certificate waits in renewed/"),
        ("expire", "set NAME's certificate aside in expired/"),
        ("revoke", "revoke NAME's certificate (also several names)"),
        ("revoke-issued", "revoke the current certificate of NAME"),
        ("revoke-expired", "revoke the certificate set aside by expire"),
        ("revoke-renewed", "revoke the old certificate kept by renew"),
        ("gen-crl", "write crl.pem and crl.der"),
        ("update-db", "mark certificates past their end date as expired"),
        ("renewable", "easy-rsa 3.1: list certificates due for renewal"),
    )),
    ("Files for clients and servers", (
        ("inline", "OpenVPN inline file: certificate, key, CA, TLS key"),
        ("export-p12", "PKCS#12 bundle"),
        ("export-p7", "PKCS#7 bundle of certificate and CA"),
        ("export-p8", "key in PKCS#8 form"),
        ("export-p1", "RSA key in PKCS#1 form"),
        ("set-pass", "change or remove a key's passphrase (set-rsa-pass, set-ec-pass, set-ed-pass)"),
        ("gen-dh", "Diffie-Hellman parameters in dh.pem"),
        ("gen-tls-auth-key", "OpenVPN tls-auth key for inline files"),
        ("gen-tls-crypt-key", "OpenVPN tls-crypt key for inline files"),
        ("gen-tls-cryptv2-key", "not available, as in easy-rsa"),
        ("import-tls-key", "take an OpenVPN TLS key made elsewhere"),
        ("write", "easyrsa_py's own vars, OpenSSL config and x509-types files"),
    )),
    ("Show and check", (
        ("show-req", "a request as text"),
        ("show-cert", "a certificate as text"),
        ("show-ca", "the CA certificate as text"),
        ("show-crl", "the CRL as text"),
        ("show-expire", "certificates that expire soon (--json: as JSON)"),
        ("show-revoke", "revoked certificates (--json: as JSON)"),
        ("show-renew", "renewed certificates not revoked yet (--json: as JSON)"),
        ("show-eku", "a certificate's easy-rsa type (x509-eku: the same)"),
        ("display-dn", "the subject of a certificate or request file"),
        ("verify-cert", "check a certificate against the CA (verify: the same)"),
        ("serial", "is a serial in index.txt? (check-serial: the same)"),
        ("show-host", "versions and settings"),
        ("rand", "random bytes as hex (random: the same)"),
    )),
    ("AWS Client VPN (easyrsa_py's own)", (
        ("upload", "import crl.pem into Client VPN endpoints"),
        ("download", "export an endpoint's CRL and compare it with crl.pem"),
        ("crl-status", "the CRL's dates; exit 3 when it expires soon"),
    )),
    ("Help", (
        ("help", "this list, 'help COMMAND' or 'help options'"),
        ("version", "easyrsa_py's version"),
    )),
)


def help_text(topic: str | None) -> str:
    """Return the overview, or the help for one command."""
    if topic == "options":
        return _options_help()
    if topic == "help":
        return "Usage: easyrsa help [COMMAND | options]\n\nShow the command list, one command's help, or the global options."
    if topic:
        command = COMMANDS.get(topic)
        if topic in NOT_YET_IMPLEMENTED:
            raise UsageError(
                f"'{topic}' is an easy-rsa command that easyrsa_py does not implement yet. "
                "Run the real easy-rsa script's 'help' for it."
            )
        if command is None:
            raise UsageError(f"No help for unknown command '{topic}'. Run 'easyrsa help' for the list.")
        return f"Usage: easyrsa [OPTIONS] {command.usage}\n\n{command.summary}"
    lines = [
        "Usage: easyrsa [OPTIONS] COMMAND [ARGUMENTS]",
        "",
        "easyrsa_py: a drop-in reimplementation of easy-rsa that works on the same PKI.",
    ]
    for heading, entries in _OVERVIEW_GROUPS:
        lines += ["", f"{heading}:"]
        lines += [f"  {name:<24} {blurb}" for name, blurb in entries]
    lines += [
        "",
        "Run 'easyrsa help COMMAND' for details, 'easyrsa help options' for the global",
        "options, and see compat.md for differences from easy-rsa.",
    ]
    return "\n".join(lines)


def _options_help() -> str:
    from easyrsa_py.options import OPTIONS, Kind

    lines = ["Global options (before the command; values as --option=VALUE):", ""]
    for option in OPTIONS:
        spelling = ", ".join(option.spellings)
        if option.kind is not Kind.FLAG:
            spelling += "=VALUE"
        lines.append(f"  {spelling:<34} {option.help}")
    return "\n".join(lines)


def version_text() -> str:
    return f"easyrsa_py {__version__} (compatible with easy-rsa {EASYRSA_COMPAT_VERSION})"
