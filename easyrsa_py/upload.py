"""Upload the PKI's CRL to AWS Client VPN endpoints, download it back, and report its expiry.

`upload` first checks `crl.pem` locally: it parses, ca.crt signed it, it
has at most 20,000 entries and it does not expire soon. It then resolves
the endpoints. For each one it describes the endpoint, exports its current
CRL and imports ours only when the two differ. An import replaces the endpoint's
CRL and resets every client connection, so an unchanged CRL is never sent
again unless `--force` asks for it.

Exit codes: 0 when every endpoint succeeded, 1 for a usage or local CRL
problem (nothing was sent), 2 when at least one endpoint failed, and, for
`crl-status`, 3 when the CRL expires within the margin.

boto3 is imported only inside the functions that call AWS, through
`easyrsa_py.aws`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from easyrsa_py import journal
from easyrsa_py.errors import (
    CertificateNotFound,
    CryptoMismatch,
    EasyRSAError,
    FileFormatError,
    UsageError,
)

if TYPE_CHECKING:
    from easyrsa_py.aws import ClientHook, EC2Connection, EndpointFailure, EndpointRef
    from easyrsa_py.console import Console
    from easyrsa_py.pki import PKILayout
    from easyrsa_py.settings import Settings

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_LOCAL_ERROR = 1
EXIT_ENDPOINT_FAILED = 2
EXIT_CRL_EXPIRING = 3

# AWS Client VPN accepts at most 20,000 entries per CRL, a quota AWS cannot raise.
MAX_CRL_ENTRIES = 20_000
DEFAULT_MIN_DAYS = 7
ENDPOINTS_VARIABLE = "EASYRSA_AWS_ENDPOINTS"

RESULT_UPLOADED = "uploaded"
RESULT_UNCHANGED = "unchanged"
RESULT_WOULD_UPLOAD = "would upload"
RESULT_FAILED = "failed"

# Bounds of the pause between two exports while --wait polls.
_MIN_POLL_SECONDS = 0.2
_MAX_POLL_SECONDS = 5.0


class CRLNotUploadable(EasyRSAError):
    """The local CRL fails a check that must pass before it may be sent to AWS."""


@dataclass(frozen=True)
class UploadOptions:
    """The choices of one upload run, as the command line or another command sets them.

    `client_hook` is called with every EC2 client created; tests use it to
    attach an in-process fake of EC2.
    """

    endpoints: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    profile: str | None = None
    endpoint_url: str | None = None
    dry_run: bool = False
    force: bool = False
    wait_seconds: float = 0.0
    min_days: float = DEFAULT_MIN_DAYS
    json_output: bool = False
    environ: Mapping[str, str] | None = None
    client_hook: ClientHook | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DownloadOptions:
    """The choices of one download run; `out` None means stdout."""

    selection: UploadOptions
    out: Path | None = None


@dataclass(frozen=True)
class LocalCRL:
    """The PKI's crl.pem, parsed."""

    path: Path
    pem: str
    der: bytes
    crl: x509.CertificateRevocationList
    entries: int
    last_update: datetime
    next_update: datetime

    def time_left(self, now: datetime) -> timedelta:
        return self.next_update - now

    def days_left(self, now: datetime) -> int:
        """Return the whole days until nextUpdate, negative once it has passed."""
        days = self.time_left(now).total_seconds() / 86400
        # An expired CRL is never "0 days left": -1 for the first day after
        # nextUpdate, -2 for the second, so a monitor can alert on < 0.
        return int(days) if days >= 0 else min(-1, int(days))

    def summary(self, now: datetime) -> dict[str, Any]:
        return {
            "next_update": self.next_update.isoformat(),
            "entries": self.entries,
            "days_left": self.days_left(now),
        }


@dataclass(frozen=True)
class EndpointResult:
    """The outcome of one endpoint; `error_code` is None unless `result` is failed."""

    endpoint: str
    region: str
    result: str
    error_code: str | None = None
    message: str | None = None

    def line(self) -> str:
        text = f"{self.endpoint} ({self.region}): {self.result}"
        if self.result == RESULT_FAILED:
            return f"{text}: {self.error_code}: {self.message}"
        return f"{text} ({self.message})" if self.message else text


# -- command-line parsing ---------------------------------------------------


class _ArgumentParser(argparse.ArgumentParser):
    """An argparse parser that raises UsageError instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}. Run 'easyrsa help {self.prog}' for the options.")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError(message or f"Invalid options for '{self.prog}'.")


def _selection_parser(prog: str) -> _ArgumentParser:
    parser = _ArgumentParser(prog=prog, add_help=False, allow_abbrev=False)
    parser.add_argument("--endpoint", action="append", default=[])
    parser.add_argument("--tag", action="append", default=[])
    parser.add_argument("--region", action="append", default=[])
    parser.add_argument("--profile")
    parser.add_argument("--endpoint-url")
    return parser


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1_000_000:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range (0 to 999999)")
    return value


def _selection_from(parsed: argparse.Namespace, environ: Mapping[str, str] | None) -> dict[str, Any]:
    regions = tuple(region for text in parsed.region for region in text.replace(",", " ").split())
    return {
        "endpoints": tuple(parsed.endpoint),
        "tags": tuple(parsed.tag),
        "regions": regions,
        "profile": parsed.profile,
        "endpoint_url": parsed.endpoint_url,
        "environ": environ,
    }


def parse_upload_arguments(arguments: Sequence[str], environ: Mapping[str, str] | None = None) -> UploadOptions:
    """Parse the options after `upload`; raises UsageError."""
    parser = _selection_parser("upload")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--wait", type=_number, default=0.0)
    parser.add_argument("--min-days", type=_number, default=float(DEFAULT_MIN_DAYS))
    parser.add_argument("--json", action="store_true")
    parsed = parser.parse_args(list(arguments))
    return UploadOptions(
        **_selection_from(parsed, environ),
        dry_run=parsed.dry_run,
        force=parsed.force,
        wait_seconds=parsed.wait,
        min_days=parsed.min_days,
        json_output=parsed.json,
    )


def parse_download_arguments(arguments: Sequence[str], environ: Mapping[str, str] | None = None) -> DownloadOptions:
    """Parse the options after `download`; raises UsageError."""
    parser = _selection_parser("download")
    parser.add_argument("--out", type=Path)
    parsed = parser.parse_args(list(arguments))
    return DownloadOptions(UploadOptions(**_selection_from(parsed, environ)), parsed.out)


def parse_status_arguments(arguments: Sequence[str]) -> tuple[float, bool]:
    """Parse the options after `crl-status` into (min_days, json_output)."""
    parser = _ArgumentParser(prog="crl-status", add_help=False, allow_abbrev=False)
    parser.add_argument("--min-days", type=_number, default=float(DEFAULT_MIN_DAYS))
    parser.add_argument("--json", action="store_true")
    parsed = parser.parse_args(list(arguments))
    return parsed.min_days, parsed.json


# -- the local CRL ------------------------------------------------------------


def read_local_crl(layout: PKILayout) -> LocalCRL:
    """Read and parse pki/crl.pem; raises CertificateNotFound or FileFormatError."""
    path = layout.crl_pem
    if not path.is_file():
        raise CertificateNotFound(path, f"No CRL at {path}. Run 'easyrsa gen-crl' to create it.")
    data = path.read_bytes()
    try:
        crl = x509.load_pem_x509_crl(data)
        # Only the CRL itself is sent, re-encoded: any text or other PEM
        # blocks around it in crl.pem (a key, by mistake) stay local.
        pem = crl.public_bytes(serialization.Encoding.PEM).decode("ascii")
        entries = len(crl)
    except (ValueError, UnicodeDecodeError):
        raise FileFormatError(
            path, None, "not a valid PEM CRL. Run 'easyrsa gen-crl' to write a new one."
        ) from None
    if crl.next_update_utc is None:
        raise FileFormatError(path, None, "the CRL has no nextUpdate. Run 'easyrsa gen-crl' to write a new one.")
    return LocalCRL(
        path=path,
        pem=pem,
        der=crl.public_bytes(serialization.Encoding.DER),
        crl=crl,
        entries=entries,
        last_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
    )


def _verify_signature(crl: x509.CertificateRevocationList, public_key: Any) -> None:
    """Verify the CRL's signature over its TBSCertList; raises InvalidSignature."""
    tbs, signature, digest = crl.tbs_certlist_bytes, crl.signature, crl.signature_hash_algorithm
    if isinstance(public_key, rsa.RSAPublicKey) and digest is not None:
        public_key.verify(signature, tbs, padding.PKCS1v15(), digest)
    elif isinstance(public_key, ec.EllipticCurvePublicKey) and digest is not None:
        public_key.verify(signature, tbs, ec.ECDSA(digest))
    elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        public_key.verify(signature, tbs)
    else:
        raise InvalidSignature()


def check_issuer(local: LocalCRL, layout: PKILayout) -> x509.Certificate:
    """Check that ca.crt issued and signed the CRL; raises CryptoMismatch."""
    ca_path = layout.ca_cert
    if not ca_path.is_file():
        raise CertificateNotFound(ca_path, f"No CA certificate at {ca_path}, so the CRL's signer cannot be checked.")
    try:
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    except ValueError:
        raise FileFormatError(ca_path, None, "not a valid PEM certificate.") from None
    if local.crl.issuer != ca.subject:
        raise CryptoMismatch(
            f"The CRL {local.path} was issued by '{local.crl.issuer.rfc4514_string()}', not by this "
            f"PKI's CA '{ca.subject.rfc4514_string()}' ({ca_path}). Run 'easyrsa gen-crl' to "
            "write the CRL of this CA."
        )
    try:
        _verify_signature(local.crl, ca.public_key())
    except InvalidSignature:
        raise CryptoMismatch(
            f"The signature of {local.path} does not verify with the key in {ca_path}. Run "
            "'easyrsa gen-crl' to write a CRL signed by this CA."
        ) from None
    return ca


def check_expiry(local: LocalCRL, min_days: float, now: datetime) -> None:
    """Raise CRLNotUploadable if nextUpdate is not more than `min_days` away."""
    left = local.time_left(now)
    when = f"{local.next_update:%Y-%m-%d %H:%M:%S} UTC"
    fix = (
        "Run 'easyrsa gen-crl' to renew it (a longer --days or EASYRSA_CRL_DAYS keeps it "
        "valid longer), or pass --force to upload it anyway."
    )
    if left <= timedelta(0):
        raise CRLNotUploadable(
            f"The CRL {local.path} expired on {when}. Client VPN rejects every certificate "
            f"client while its CRL is expired. {fix}"
        )
    if left <= timedelta(days=min_days):
        raise CRLNotUploadable(
            f"The CRL {local.path} expires on {when}, in {_days_text(left)}, which is not more "
            f"than --min-days={min_days:g} days away. {fix}"
        )


def _days_text(left: timedelta) -> str:
    return f"{left.total_seconds() / 86400:.1f} days"


def check_local_crl(
    layout: PKILayout, console: Console, *, min_days: float, force: bool, now: datetime
) -> LocalCRL:
    """Run every local check before anything is sent; raises EasyRSAError subclasses."""
    local = read_local_crl(layout)
    ca = check_issuer(local, layout)
    if local.entries > MAX_CRL_ENTRIES:
        raise CRLNotUploadable(
            f"The CRL {local.path} has {local.entries} entries; AWS Client VPN accepts at most "
            f"{MAX_CRL_ENTRIES} per CRL and cannot raise that limit."
        )
    try:
        check_expiry(local, min_days, now)
    except CRLNotUploadable as error:
        if not force:
            raise
        console.warn(f"{error}\n--force is set, so the CRL is uploaded anyway.")
    if not isinstance(ca.public_key(), rsa.RSAPublicKey):
        console.warn(
            f"The CA key in {layout.ca_cert} is not RSA. AWS Client VPN documents RSA keys "
            "only (1024 or 2048 bits), so the endpoint may reject this CRL or its clients."
        )
    return local


# -- endpoints ------------------------------------------------------------------


def _connection(options: UploadOptions, settings: Settings) -> EC2Connection:
    from easyrsa_py.aws import (
        ClientSettings,
        EC2Connection,
        read_max_attempts,
        read_timeout,
    )

    client_settings = ClientSettings(
        profile=options.profile,
        regions=options.regions,
        endpoint_url=options.endpoint_url,
        max_attempts=read_max_attempts(settings.raw),
        timeout=read_timeout(settings.raw),
    )
    environ = options.environ if options.environ is not None else os.environ
    return EC2Connection(client_settings, environ=environ, client_hook=options.client_hook)


def _explicit_targets(
    options: UploadOptions, settings: Settings, connection: EC2Connection
) -> list[EndpointRef]:
    from easyrsa_py.aws import EndpointRef, parse_endpoint_spec, split_endpoint_list

    texts = list(options.endpoints) + split_endpoint_list(settings.raw.get(ENDPOINTS_VARIABLE, ""))
    targets = []
    for text in texts:
        spec = parse_endpoint_spec(text)
        region = spec.region or connection.default_region()
        if region is None:
            raise _no_region(f"for the endpoint {text!r}")
        targets.append(EndpointRef(spec.endpoint_id, region))
    return targets


def _no_region(purpose: str) -> EasyRSAError:
    from easyrsa_py.aws import AWSSetupError

    return AWSSetupError(
        f"No AWS region {purpose}. Pass --region, set AWS_REGION or AWS_DEFAULT_REGION, set a "
        "region in your AWS profile, or write the endpoint as REGION:ID or as its ARN."
    )


def _tagged_targets(
    tags: list[tuple[str, str]], connection: EC2Connection
) -> tuple[list[EndpointRef], list[EndpointResult]]:
    from easyrsa_py.aws import EndpointFailure, EndpointRef, endpoints_with_tags

    regions = connection.search_regions()
    if not regions:
        raise _no_region("to search for tagged endpoints")
    label = "tag " + ",".join(f"{key}={value}" for key, value in tags)
    targets: list[EndpointRef] = []
    failures: list[EndpointResult] = []
    for region in regions:
        try:
            found = list(endpoints_with_tags(connection.client(region), tags))
        except EndpointFailure as failure:
            failures.append(EndpointResult(label, region, RESULT_FAILED, failure.code, failure.message))
            continue
        targets.extend(EndpointRef(endpoint_id, region) for endpoint_id in found)
    if not targets and not failures:
        where = ", ".join(regions)
        failures.append(
            EndpointResult(label, where, RESULT_FAILED, "NoMatchingEndpoints", f"No Client VPN endpoint in {where} has this tag.")
        )
    return targets, failures


def select_endpoints(
    options: UploadOptions, settings: Settings, connection: EC2Connection
) -> tuple[list[EndpointRef], list[EndpointResult]]:
    """Resolve --endpoint, EASYRSA_AWS_ENDPOINTS and --tag into endpoints, without duplicates.

    Returns the endpoints and a failure result for each region whose tag
    search failed. Raises UsageError when nothing selects an endpoint.
    """
    from easyrsa_py.aws import parse_tag

    tags = [parse_tag(text) for text in options.tags]
    targets = _explicit_targets(options, settings, connection)
    if not targets and not tags:
        raise UsageError(
            "No Client VPN endpoint given. Pass --endpoint ID (or REGION:ID, or the ARN), "
            f"--tag KEY=VALUE, or set {ENDPOINTS_VARIABLE} in the vars file or environment."
        )
    failures: list[EndpointResult] = []
    if tags:
        tagged, failures = _tagged_targets(tags, connection)
        targets += tagged
    return list(dict.fromkeys(targets)), failures


def _parse_exported(pem: str) -> bytes | None:
    """Return the DER of an exported CRL, or None when it is empty or unparseable."""
    if not pem.strip():
        return None
    try:
        crl = x509.load_pem_x509_crl(pem.encode("utf-8"))
    except ValueError:
        logger.info("the exported CRL does not parse; it counts as different")
        return None
    return crl.public_bytes(serialization.Encoding.DER)


def _poll_interval(wait_seconds: float) -> float:
    return max(_MIN_POLL_SECONDS, min(_MAX_POLL_SECONDS, wait_seconds / 10))


def wait_until_active(client: Any, target: EndpointRef, local: LocalCRL, wait_seconds: float) -> str:
    """Poll Export until it returns our CRL with status active; return the last status.

    Raises EndpointFailure with code WaitTimeout when `wait_seconds` pass first.
    """
    from easyrsa_py.aws import EndpointFailure, export_crl

    deadline = time.monotonic() + wait_seconds
    interval = _poll_interval(wait_seconds)
    while True:
        exported = export_crl(client, target.endpoint_id)
        matches = _parse_exported(exported.pem) == local.der
        if matches and exported.status == "active":
            return "active"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            state = "matches ours" if matches else "is not ours yet"
            raise EndpointFailure(
                "WaitTimeout",
                f"After {wait_seconds:g} s the endpoint's CRL {state} and its status is "
                f"{exported.status or 'unknown'}, not active. CRL changes can take up to "
                "about 4 hours to apply; check again with 'easyrsa download'.",
            )
        time.sleep(min(interval, remaining))


def _process_endpoint(
    connection: EC2Connection, target: EndpointRef, local: LocalCRL, options: UploadOptions
) -> EndpointResult:
    from easyrsa_py.aws import (
        check_import_allowed,
        describe_endpoint,
        export_crl,
        import_crl,
        require_certificate_authentication,
    )

    client = connection.client(target.region)
    endpoint = describe_endpoint(client, target.endpoint_id)
    require_certificate_authentication(endpoint)
    current = export_crl(client, target.endpoint_id)
    same = _parse_exported(current.pem) == local.der
    if same and not options.force:
        result = RESULT_UNCHANGED
        message: str | None = f"status {current.status or 'unknown'}"
    elif options.dry_run:
        check_import_allowed(client, target.endpoint_id, local.pem)
        return EndpointResult(target.endpoint_id, target.region, RESULT_WOULD_UPLOAD)
    else:
        import_crl(client, target.endpoint_id, local.pem)
        logger.info("imported the CRL into %s in %s", target.endpoint_id, target.region)
        result, message = RESULT_UPLOADED, None
    if options.wait_seconds > 0 and not options.dry_run:
        message = f"status {wait_until_active(client, target, local, options.wait_seconds)}"
    return EndpointResult(target.endpoint_id, target.region, result, message=message)


def process_endpoint(
    connection: EC2Connection, target: EndpointRef, local: LocalCRL, options: UploadOptions
) -> EndpointResult:
    """Bring one endpoint's CRL up to date; any failure becomes a failed result."""
    from easyrsa_py.aws import AWSSetupError, EndpointFailure

    try:
        return _process_endpoint(connection, target, local, options)
    except EndpointFailure as failure:
        return _failed(target, failure)
    except AWSSetupError as error:
        return EndpointResult(target.endpoint_id, target.region, RESULT_FAILED, "InvalidConfiguration", str(error))


def _failed(target: EndpointRef, failure: EndpointFailure) -> EndpointResult:
    logger.info("%s in %s failed: %s", target.endpoint_id, target.region, failure)
    return EndpointResult(target.endpoint_id, target.region, RESULT_FAILED, failure.code, failure.message)


# -- reports --------------------------------------------------------------------


def _report_text(local: LocalCRL, results: list[EndpointResult], now: datetime) -> str:
    lines = [result.line() for result in results]
    lines.append(
        f"CRL nextUpdate: {local.next_update:%Y-%m-%d %H:%M:%S} UTC "
        f"({local.days_left(now)} days left, {local.entries} entries)"
    )
    return "\n".join(lines)


def _report_json(local: LocalCRL, results: list[EndpointResult], now: datetime) -> str:
    document = {
        "crl": local.summary(now),
        "endpoints": [
            {
                "endpoint": result.endpoint,
                "region": result.region,
                "result": result.result,
                "error_code": result.error_code,
                "message": result.message,
            }
            for result in results
        ],
    }
    return json.dumps(document, indent=2)


def upload_crl(layout: PKILayout, settings: Settings, console: Console, options: UploadOptions) -> int:
    """Upload pki/crl.pem to the selected endpoints and print the report.

    Returns EXIT_OK when every endpoint succeeded and EXIT_ENDPOINT_FAILED
    when at least one failed. Local problems (the CRL, the options, the AWS
    region, profile or credentials) raise an EasyRSAError before any
    request is sent.
    """
    # An upload cannot be taken back, and a failed one must not undo the
    # revocation and CRL of `revoke --upload`, so they are made final first.
    journal.commit()
    now = datetime.now(UTC)
    local = check_local_crl(layout, console, min_days=options.min_days, force=options.force, now=now)
    connection = _connection(options, settings)
    connection.open()
    targets, results = select_endpoints(options, settings, connection)
    results = results + [process_endpoint(connection, target, local, options) for target in targets]
    render = _report_json if options.json_output else _report_text
    console.output(render(local, results, now))
    failed = any(result.result == RESULT_FAILED for result in results)
    return EXIT_ENDPOINT_FAILED if failed else EXIT_OK


# -- download and crl-status ----------------------------------------------------


def _compare_text(local: LocalCRL | None, exported_der: bytes | None) -> str:
    if exported_der is None:
        return "The endpoint's CRL is empty or cannot be parsed."
    if local is None:
        return "There is no readable local CRL to compare it with."
    if exported_der == local.der:
        return f"The endpoint's CRL is the same as {local.path}."
    remote = x509.load_der_x509_crl(exported_der)
    remote_serials = {entry.serial_number for entry in remote}
    local_serials = {entry.serial_number for entry in local.crl}
    lines = [f"The endpoint's CRL differs from {local.path}:"]
    for label, serials in (
        ("revoked locally, missing on the endpoint", local_serials - remote_serials),
        ("on the endpoint, not in the local CRL", remote_serials - local_serials),
    ):
        if serials:
            lines.append(f"* {label}: " + ", ".join(f"{serial:X}" for serial in sorted(serials)))
    remote_next = remote.next_update_utc
    if remote_next != local.next_update:
        remote_text = f"{remote_next:%Y-%m-%d %H:%M:%S} UTC" if remote_next else "none"
        lines.append(f"* nextUpdate: endpoint {remote_text}, local {local.next_update:%Y-%m-%d %H:%M:%S} UTC")
    if len(lines) == 1:
        lines.append("* same entries and nextUpdate, but other fields (lastUpdate, CRL number or signature) differ")
    return "\n".join(lines)


def _check_download_target(layout: PKILayout, out: Path | None) -> None:
    """Reject an --out that would replace the PKI's own CRL with the endpoint's copy."""
    if out is None:
        return
    target = out.resolve()
    for own in (layout.crl_pem, layout.crl_der):
        if target == own.resolve():
            raise UsageError(
                f"Invalid --out {out}: it is the PKI's own {own.name}, which 'download' must not "
                "replace. Write the endpoint's CRL to another file."
            )


def download_crl(layout: PKILayout, settings: Settings, console: Console, options: DownloadOptions) -> int:
    """Export one endpoint's CRL to `options.out` or stdout and describe how it differs from ours."""
    from easyrsa_py import files
    from easyrsa_py.aws import EndpointFailure, export_crl

    _check_download_target(layout, options.out)
    connection = _connection(options.selection, settings)
    connection.open()
    targets, failures = select_endpoints(options.selection, settings, connection)
    if failures:
        console.warn("\n".join(result.line() for result in failures))
        return EXIT_ENDPOINT_FAILED
    if len(targets) != 1:
        names = ", ".join(target.endpoint_id for target in targets)
        raise UsageError(f"'download' needs exactly one endpoint, but {len(targets)} were selected: {names}.")
    target = targets[0]
    try:
        exported = export_crl(connection.client(target.region), target.endpoint_id)
    except EndpointFailure as failure:
        console.warn(_failed(target, failure).line())
        return EXIT_ENDPOINT_FAILED
    try:
        local: LocalCRL | None = read_local_crl(layout)
    except EasyRSAError:
        local = None
    if options.out is None:
        console.output(exported.pem)
    else:
        files.atomic_write(options.out, exported.pem.encode("utf-8"))
    status = exported.status or "unknown"
    console.notice(f"Exported the CRL of {target.endpoint_id} ({target.region}), status {status}.\n"
                   + _compare_text(local, _parse_exported(exported.pem)))
    return EXIT_OK


def crl_status(layout: PKILayout, console: Console, min_days: float, json_output: bool) -> int:
    """Print the local CRL's dates and entry count; return 0, or 3 if it expires within `min_days`.

    A missing or invalid CRL raises an EasyRSAError (exit code 1).
    """
    now = datetime.now(UTC)
    local = read_local_crl(layout)
    left = local.time_left(now)
    expiring = left <= timedelta(days=min_days)
    if json_output:
        document = {
            "last_update": local.last_update.isoformat(),
            **local.summary(now),
            "expiring": expiring,
        }
        console.output(json.dumps(document, indent=2))
    else:
        console.output(
            f"lastUpdate: {local.last_update:%Y-%m-%d %H:%M:%S} UTC\n"
            f"nextUpdate: {local.next_update:%Y-%m-%d %H:%M:%S} UTC\n"
            f"days left:  {local.days_left(now)}\n"
            f"entries:    {local.entries}"
        )
    if expiring:
        console.warn(
            f"The CRL {local.path} expires within {min_days:g} days. Run 'easyrsa gen-crl' "
            "and upload the new CRL."
        )
        return EXIT_CRL_EXPIRING
    return EXIT_OK
