"""Error paths of `upload`, `download` and `crl-status`, run in-process.

`upload_crl` runs with the in-process fake of EC2 attached to every client
through `UploadOptions.client_hook`, so botocore's real serializer, signer,
parser and retry handler run without a socket. The environment contains
dummy keys only, and AWS_ENDPOINT_URL_EC2 points at a closed loopback port
so that a client without the fake fails locally instead of reaching AWS.
Retry backoff is set to zero by the `no_retry_sleep` fixture.
"""

# The fixtures imported from fake_ec2 are requested by parameter name, which
# ruff reports as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import io
import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from fake_ec2 import (
    DESCRIBE,
    EXPORT,
    IMPORT,
    FakeEC2State,
    aws_environment,
    install_in_process,
    no_retry_sleep,  # noqa: F401
)

from easyrsa_py.aws import (
    AWSSetupError,
    parse_endpoint_spec,
    parse_tag,
    read_max_attempts,
    read_timeout,
)
from easyrsa_py.console import Console
from easyrsa_py.database import generate_crl
from easyrsa_py.errors import (
    CertificateNotFound,
    CryptoMismatch,
    FileFormatError,
    UsageError,
)
from easyrsa_py.pki import PKILayout
from easyrsa_py.settings import build_settings
from easyrsa_py.upload import (
    EXIT_CRL_EXPIRING,
    EXIT_ENDPOINT_FAILED,
    EXIT_OK,
    CRLNotUploadable,
    crl_status,
    download_crl,
    parse_download_arguments,
    parse_upload_arguments,
    upload_crl,
)

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
# Nothing listens on the discard port, so a request that escapes the fake fails fast.
UNREACHABLE_URL = "http://127.0.0.1:9"


class Outcome:
    """The exit code and the two output streams of one in-process run."""

    def __init__(self, code: int, console: Console) -> None:
        self.code = code
        self.stdout = console.stdout.getvalue()  # type: ignore[attr-defined]
        self.stderr = console.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def aws(monkeypatch, tmp_path, no_retry_sleep):
    for name in list(os.environ):
        if name.upper().startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in aws_environment(tmp_path, UNREACHABLE_URL).items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)


@pytest.fixture
def state() -> FakeEC2State:
    return FakeEC2State()


def gen_crl(pki: Path, days: int = 180, now: datetime | None = None) -> Path:
    """Write a new CRL, with the CA passphrase that the fixture's manifest records."""
    passphrase = json.loads((pki.parent / "fixture.json").read_text())["ca_passphrase"]
    passin = f"pass:{passphrase}" if passphrase else None
    generate_crl(PKILayout(pki), passin=passin, digest="sha256", days=days, now=now)
    return pki


@pytest.fixture
def pki(pki_copy) -> Path:
    return gen_crl(pki_copy("v3.2.7-rsa"))


def new_console() -> Console:
    return Console(stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO())


def settings_for(pki: Path, **raw: str):
    return build_settings({"EASYRSA_PKI": str(pki), **raw}, os.environ, pki.parent)


def upload(pki: Path, state: FakeEC2State, *args: str, attempts: str = "2", **raw: str) -> Outcome:
    options = parse_upload_arguments(args)
    options = replace(options, client_hook=lambda client: install_in_process(client, state))
    settings = settings_for(pki, EASYRSA_AWS_MAX_ATTEMPTS=attempts, **raw)
    console = new_console()
    code = upload_crl(PKILayout(pki), settings, console, options)
    return Outcome(code, console)


def download(pki: Path, state: FakeEC2State, *args: str) -> Outcome:
    options = parse_download_arguments(args)
    selection = replace(options.selection, client_hook=lambda client: install_in_process(client, state))
    console = new_console()
    code = download_crl(PKILayout(pki), settings_for(pki), console, replace(options, selection=selection))
    return Outcome(code, console)


def crl_text(pki: Path) -> str:
    return (pki / "crl.pem").read_text()


# -- service errors and retries ---------------------------------------------------


def test_html_500_gives_up(pki, state):
    endpoint = state.add_endpoint(REGION)
    state.inject(DESCRIBE, "html-500", count=10)
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id)
    assert outcome.code == EXIT_ENDPOINT_FAILED
    assert "failed: 500:" in outcome.stdout
    assert "gave up after 2 attempts" in outcome.stdout
    assert len(state.actions(DESCRIBE)) == 2


def test_empty_500_gives_up(pki, state):
    endpoint = state.add_endpoint(REGION)
    state.inject(EXPORT, "empty-500", count=10)
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id)
    assert "failed: 500:" in outcome.stdout
    assert len(state.actions(EXPORT)) == 2


def test_server_error_retried(pki, state):
    endpoint = state.add_endpoint(REGION)
    state.inject(IMPORT, "server-error", count=2)
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id, attempts="3")
    assert outcome.code == EXIT_OK, outcome.stdout
    assert [request.attempt for request in state.actions(IMPORT)] == [1, 2, 3]
    assert endpoint.imports == 1


def test_throttling_counts_attempts(pki, state):
    endpoint = state.add_endpoint(REGION)
    state.inject(DESCRIBE, "throttle", count=10)
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id, attempts="4")
    assert "failed: RequestLimitExceeded: Request limit exceeded. (gave up after 4 attempts" in outcome.stdout
    assert [request.attempt for request in state.actions(DESCRIBE)] == [1, 2, 3, 4]


def test_throttling_default_attempts(pki, state):
    endpoint = state.add_endpoint(REGION)
    state.inject(DESCRIBE, "throttle", count=10)
    options = replace(
        parse_upload_arguments(["--endpoint", endpoint.endpoint_id]),
        client_hook=lambda client: install_in_process(client, state),
    )
    upload_crl(PKILayout(pki), settings_for(pki), new_console(), options)
    assert len(state.actions(DESCRIBE)) == 5


def test_auth_failure_not_retried(pki, state):
    endpoint = state.add_endpoint(REGION)
    state.inject(None, "auth-failure", count=10)
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id)
    assert "failed: AuthFailure:" in outcome.stdout
    assert len(state.requests) == 1


def test_export_not_found(pki, state):
    endpoint = state.add_endpoint(REGION)
    state.inject(EXPORT, "not-found")
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id)
    assert "failed: InvalidClientVpnEndpointId.NotFound:" in outcome.stdout
    assert state.actions(IMPORT) == []


def test_import_unauthorized(pki, state):
    endpoint = state.add_endpoint(REGION)
    state.allowed_actions.discard(IMPORT)
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id)
    assert outcome.code == EXIT_ENDPOINT_FAILED
    assert "failed: UnauthorizedOperation:" in outcome.stdout


def test_malformed_import_not_retried(pki, state):
    endpoint = state.add_endpoint(REGION)
    state.inject(IMPORT, "malformed")
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id, attempts="3")
    assert "failed: MalformedResponse:" in outcome.stdout
    assert len(state.actions(IMPORT)) == 1


def test_dropped_connection(pki, state):
    endpoint = state.add_endpoint(REGION)
    state.inject(None, "drop", count=10)
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id)
    assert outcome.code == EXIT_ENDPOINT_FAILED
    assert "failed: ConnectionFailed:" in outcome.stdout


def test_import_rejected_by_service(pki, state):
    endpoint = state.add_endpoint(REGION)
    state.max_entries = 0
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id)
    assert "failed: InvalidParameterValue:" in outcome.stdout
    assert endpoint.crl_pem is None


# -- endpoint states ---------------------------------------------------------------


@pytest.mark.parametrize("status", ["deleting", "deleted"])
def test_gone_endpoint_fails(pki, state, status):
    endpoint = state.add_endpoint(REGION, status=status)
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id)
    assert "failed: EndpointDeleted:" in outcome.stdout
    assert state.actions(EXPORT) == []


def test_federated_endpoint_fails(pki, state):
    endpoint = state.add_endpoint(REGION, auth_type="federated-authentication")
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id)
    assert "failed: NotCertificateAuthenticated: The endpoint uses federated-authentication" in outcome.stdout


@pytest.mark.parametrize("without_crl", ["empty", "omit"])
def test_endpoint_without_crl(pki, state, without_crl):
    state.export_without_crl = without_crl
    endpoint = state.add_endpoint(REGION)
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id)
    assert outcome.code == EXIT_OK, outcome.stdout
    assert endpoint.imports == 1


def test_unparseable_remote_crl_replaced(pki, state):
    endpoint = state.add_endpoint(REGION, crl_pem="not a CRL", crl_status="active")
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id)
    assert "uploaded" in outcome.stdout
    assert endpoint.crl_pem == crl_text(pki)


def test_duplicate_specs_upload_once(pki, state):
    endpoint = state.add_endpoint(REGION)
    arn = f"arn:aws:ec2:{REGION}:123456789012:client-vpn-endpoint/{endpoint.endpoint_id}"
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id, "--endpoint", arn,
                     EASYRSA_AWS_ENDPOINTS=f"{REGION}:{endpoint.endpoint_id}")
    assert outcome.stdout.count(endpoint.endpoint_id) == 1
    assert len(state.actions(DESCRIBE)) == 1


def test_tag_search_failure_in_one_region(pki, state):
    good = state.add_endpoint(REGION, tags={"env": "prod"})
    state.add_endpoint(OTHER_REGION, tags={"env": "prod"})
    state.inject(DESCRIBE, "unauthorized")
    outcome = upload(pki, state, "--tag", "env=prod", "--region", f"{OTHER_REGION},{REGION}")
    assert outcome.code == EXIT_ENDPOINT_FAILED
    assert f"tag env=prod ({OTHER_REGION}): failed: UnauthorizedOperation" in outcome.stdout
    assert good.imports == 1


def test_dry_run_never_waits(pki, state):
    endpoint = state.add_endpoint(REGION)
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id, "--dry-run", "--wait", "30")
    assert "would upload" in outcome.stdout
    assert len(state.actions(EXPORT)) == 1


def test_json_keeps_stdout_clean(pki_copy, state):
    pki = gen_crl(pki_copy("v3.2.2-ec"))
    endpoint = state.add_endpoint(REGION)
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id, "--json")
    assert json.loads(outcome.stdout)["endpoints"][0]["result"] == "uploaded"
    assert "not RSA" in outcome.stderr


# -- local checks --------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["v3.2.2-ec", "v3.2.7-ed25519"])
def test_non_rsa_ca_warns(pki_copy, state, fixture):
    pki = gen_crl(pki_copy(fixture))
    endpoint = state.add_endpoint(REGION)
    outcome = upload(pki, state, "--endpoint", endpoint.endpoint_id)
    assert outcome.code == EXIT_OK
    assert "AWS Client VPN documents RSA keys only" in outcome.stderr


def test_rsa_ca_does_not_warn(pki, state):
    endpoint = state.add_endpoint(REGION)
    assert upload(pki, state, "--endpoint", endpoint.endpoint_id).stderr == ""


def write_large_crl(pki: Path, entries: int) -> None:
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((pki / "private" / "ca.key").read_bytes(), None)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now)
        .next_update(now + timedelta(days=30))
    )
    for serial in range(1, entries + 1):
        revoked = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        builder = builder.add_revoked_certificate(revoked)
    crl = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    (pki / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))


def test_too_many_entries_refused(pki, state):
    write_large_crl(pki, 20_001)
    with pytest.raises(CRLNotUploadable, match="20001 entries"):
        upload(pki, state, "--endpoint", "cvpn-endpoint-0123456789abcdef0")
    assert state.requests == []


def test_expired_refused_before_requests(pki_copy, state):
    pki = gen_crl(pki_copy("v3.2.7-rsa"), days=1, now=datetime.now(UTC) - timedelta(days=2))
    with pytest.raises(CRLNotUploadable, match="expired on"):
        upload(pki, state, "--endpoint", "cvpn-endpoint-0123456789abcdef0")
    assert state.requests == []


def test_missing_crl(pki, state):
    (pki / "crl.pem").unlink()
    with pytest.raises(CertificateNotFound, match="gen-crl"):
        upload(pki, state, "--endpoint", "cvpn-endpoint-0123456789abcdef0")


def test_der_crl_not_converted(pki, state):
    (pki / "crl.pem").write_bytes((pki / "crl.der").read_bytes())
    with pytest.raises(FileFormatError, match="not a valid PEM CRL"):
        upload(pki, state, "--endpoint", "cvpn-endpoint-0123456789abcdef0")


def test_missing_ca_certificate(pki, state):
    (pki / "ca.crt").unlink()
    with pytest.raises(CertificateNotFound, match="ca.crt"):
        upload(pki, state, "--endpoint", "cvpn-endpoint-0123456789abcdef0")


def test_other_ca_refused(pki, pki_copy, state):
    other = gen_crl(pki_copy("v3.2.2-ec"))
    (pki / "crl.pem").write_bytes((other / "crl.pem").read_bytes())
    with pytest.raises(CryptoMismatch):
        upload(pki, state, "--endpoint", "cvpn-endpoint-0123456789abcdef0")
    assert state.requests == []


# -- options and setup -----------------------------------------------------------------


@pytest.mark.parametrize("spec", ["", "cvpn-endpoint-", "us-east-1:", "vpn-123", "arn:aws:ec2:us-east-1:1:vpc/vpc-1"])
def test_invalid_spec(spec):
    with pytest.raises(UsageError, match="Invalid Client VPN endpoint"):
        parse_endpoint_spec(spec)


def test_spec_forms():
    assert parse_endpoint_spec("cvpn-endpoint-0a1").region is None
    assert parse_endpoint_spec("eu-west-1:cvpn-endpoint-0a1").region == "eu-west-1"
    arn = "arn:aws:ec2:ap-southeast-2:123456789012:client-vpn-endpoint/cvpn-endpoint-0a1"
    assert parse_endpoint_spec(arn).endpoint_id == "cvpn-endpoint-0a1"


def test_invalid_tag():
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_tag("env")


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_invalid_max_attempts(value):
    with pytest.raises(UsageError, match="EASYRSA_AWS_MAX_ATTEMPTS"):
        read_max_attempts({"EASYRSA_AWS_MAX_ATTEMPTS": value})


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan"])
def test_invalid_timeout(value):
    with pytest.raises(UsageError, match="EASYRSA_AWS_TIMEOUT"):
        read_timeout({"EASYRSA_AWS_TIMEOUT": value})


@pytest.mark.parametrize("args", [["--wait"], ["--min-days", "x"], ["--wait", "-1"], ["extra"]])
def test_invalid_upload_options(args):
    with pytest.raises(UsageError):
        parse_upload_arguments(args)


def test_tag_without_region(pki, state, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(AWSSetupError, match="No AWS region"):
        upload(pki, state, "--tag", "env=prod")


def test_download_needs_one_endpoint(pki, state):
    first = state.add_endpoint(REGION)
    second = state.add_endpoint(REGION)
    with pytest.raises(UsageError, match="exactly one endpoint"):
        download(pki, state, "--endpoint", first.endpoint_id, "--endpoint", second.endpoint_id)


def test_download_empty_remote(pki, state):
    endpoint = state.add_endpoint(REGION)
    outcome = download(pki, state, "--endpoint", endpoint.endpoint_id)
    assert outcome.code == EXIT_OK
    assert "empty or cannot be parsed" in outcome.stderr


def test_crl_status_expired(pki_copy):
    pki = gen_crl(pki_copy("v3.2.7-rsa"), days=1, now=datetime.now(UTC) - timedelta(days=2))
    console = new_console()
    assert crl_status(PKILayout(pki), console, 7, False) == EXIT_CRL_EXPIRING
    assert "days left:  -1" in console.stdout.getvalue()  # type: ignore[attr-defined]


def test_crl_status_invalid(pki):
    (pki / "crl.pem").write_text("garbage\n")
    with pytest.raises(FileFormatError):
        crl_status(PKILayout(pki), new_console(), 7, False)


def test_invalid_endpoint_url(pki, state):
    with pytest.raises(AWSSetupError, match="Invalid --endpoint-url 'notaurl'"):
        upload(pki, state, "--endpoint-url", "notaurl", "--endpoint", "cvpn-endpoint-0a1")
    assert state.requests == []


def test_invalid_region(pki, state):
    with pytest.raises(AWSSetupError, match="Invalid AWS region 'us_east'"):
        upload(pki, state, "--region", "us_east", "--endpoint", "cvpn-endpoint-0a1")
    assert state.requests == []
