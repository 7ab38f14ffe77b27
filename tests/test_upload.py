"""End-to-end tests of `upload`, `download` and `crl-status`.

Each test runs `python -m easyrsa_py` as a subprocess against the loopback
fake of EC2 in `fake_ec2.py`. The AWS environment is isolated: dummy keys,
no profile files and no instance metadata. Each test checks the exit code,
the report and the exact requests the fake received. Retries and timeouts are
pinned small through EASYRSA_AWS_MAX_ATTEMPTS and EASYRSA_AWS_TIMEOUT.
"""

# The fixtures imported from fake_ec2 are requested by parameter name, which
# ruff reports as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fake_ec2 import DESCRIBE, EXPORT, IMPORT, aws_env, fake_ec2  # noqa: F401

from easyrsa_py.database import generate_crl
from easyrsa_py.pki import PKILayout

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"


def gen_crl(pki: Path, days: int = 180, now: datetime | None = None) -> Path:
    generate_crl(PKILayout(pki), passin=None, digest="sha256", days=days, now=now)
    return pki


@pytest.fixture
def pki(pki_copy) -> Path:
    """A copy of the 3.2.7 RSA fixture PKI with a freshly generated CRL."""
    return gen_crl(pki_copy("v3.2.7-rsa"))


@pytest.fixture
def env(aws_env) -> dict[str, str]:
    return {
        **aws_env,
        "PYTHONPATH": str(REPO_ROOT),
        "EASYRSA_AWS_MAX_ATTEMPTS": "2",
        "EASYRSA_AWS_TIMEOUT": "5",
    }


def run(pki: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "easyrsa_py", f"--pki={pki}", *args],
        env=env, cwd=pki.parent, capture_output=True, text=True, timeout=120, check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    return result


def crl_text(pki: Path) -> str:
    return (pki / "crl.pem").read_text()


def test_upload_imports_changed_crl(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 0, result.stderr
    assert f"{endpoint.endpoint_id} ({REGION}): uploaded" in result.stdout
    assert "CRL nextUpdate:" in result.stdout
    assert [r.action for r in fake_ec2.state.requests] == [DESCRIBE, EXPORT, IMPORT]
    assert fake_ec2.state.actions(IMPORT)[0].params["CertificateRevocationList"] == crl_text(pki)
    assert endpoint.crl_pem == crl_text(pki)


def test_second_upload_sends_no_import(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 0
    assert f"{endpoint.endpoint_id} ({REGION}): unchanged" in result.stdout
    assert len(fake_ec2.state.actions(IMPORT)) == 1
    assert endpoint.imports == 1


def test_unchanged_despite_other_line_endings(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(
        REGION, crl_pem=crl_text(pki).replace("\n", "\r\n"), crl_status="active"
    )
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert "unchanged" in result.stdout
    assert fake_ec2.state.actions(IMPORT) == []


def test_force_reimports_same_crl(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION, crl_pem=crl_text(pki))
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id, "--force")
    assert result.returncode == 0
    assert "uploaded" in result.stdout
    assert endpoint.imports == 1


def test_changed_crl_replaces_old(pki_copy, env, fake_ec2):
    pki = pki_copy("v3.2.7-rsa")
    old = crl_text(pki)
    endpoint = fake_ec2.state.add_endpoint(REGION, crl_pem=old)
    gen_crl(pki)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert "uploaded" in result.stdout
    assert endpoint.crl_pem == crl_text(pki)


def test_json_report(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id, "--json")
    document = json.loads(result.stdout)
    assert set(document) == {"crl", "endpoints"}
    assert set(document["crl"]) == {"next_update", "entries", "days_left"}
    assert document["crl"]["entries"] == 1
    assert document["crl"]["days_left"] in (179, 180)
    assert document["endpoints"] == [{
        "endpoint": endpoint.endpoint_id, "region": REGION, "result": "uploaded",
        "error_code": None, "message": None,
    }]


def test_json_report_failure(pki, env, fake_ec2):
    result = run(pki, env, "upload", "--endpoint", "cvpn-endpoint-0123456789abcdef0", "--json")
    assert result.returncode == 2
    entry = json.loads(result.stdout)["endpoints"][0]
    assert entry["result"] == "failed"
    assert entry["error_code"] == "InvalidClientVpnEndpointId.NotFound"
    assert entry["message"]


def test_dry_run_allowed(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id, "--dry-run")
    assert result.returncode == 0, result.stdout
    assert f"{endpoint.endpoint_id} ({REGION}): would upload" in result.stdout
    imports = fake_ec2.state.actions(IMPORT)
    assert [request.dry_run for request in imports] == [True]
    assert fake_ec2.state.actions(DESCRIBE)[0].dry_run is False
    assert fake_ec2.state.actions(EXPORT)[0].dry_run is False
    assert endpoint.crl_pem is None
    assert endpoint.imports == 0


def test_dry_run_denied(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    fake_ec2.state.allowed_actions.discard(IMPORT)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id, "--dry-run")
    assert result.returncode == 2
    assert "failed: UnauthorizedOperation:" in result.stdout
    assert endpoint.crl_pem is None


def test_dry_run_unchanged_sends_no_import(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION, crl_pem=crl_text(pki))
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id, "--dry-run")
    assert "unchanged" in result.stdout
    assert fake_ec2.state.actions(IMPORT) == []


def test_tag_selects_across_pages_and_regions(pki, env, fake_ec2):
    state = fake_ec2.state
    state.page_size = 2
    tagged = [state.add_endpoint(REGION, tags={"env": "prod"}) for _ in range(3)]
    state.add_endpoint(REGION, tags={"env": "dev"})
    state.add_endpoint(REGION)
    tagged.append(state.add_endpoint(OTHER_REGION, tags={"env": "prod", "team": "a"}))
    result = run(pki, env, "upload", "--tag", "env=prod", "--region", REGION, "--region", OTHER_REGION)
    assert result.returncode == 0, result.stdout
    for endpoint in tagged:
        assert f"{endpoint.endpoint_id} ({endpoint.region}): uploaded" in result.stdout
    assert sorted(r.region for r in state.actions(IMPORT)) == [OTHER_REGION] + [REGION] * 3
    listing = [r for r in state.actions(DESCRIBE) if "ClientVpnEndpointId.1" not in r.params]
    assert sum("NextToken" in r.params for r in listing) == 2


def test_tags_must_all_match(pki, env, fake_ec2):
    both = fake_ec2.state.add_endpoint(REGION, tags={"env": "prod", "team": "a"})
    fake_ec2.state.add_endpoint(REGION, tags={"env": "prod"})
    result = run(pki, env, "upload", "--tag", "env=prod", "--tag", "team=a")
    assert [r.params["ClientVpnEndpointId"] for r in fake_ec2.state.actions(IMPORT)] == [both.endpoint_id]
    assert result.returncode == 0


def test_tag_without_match_fails(pki, env, fake_ec2):
    fake_ec2.state.add_endpoint(REGION, tags={"env": "dev"})
    result = run(pki, env, "upload", "--tag", "env=prod")
    assert result.returncode == 2
    assert "NoMatchingEndpoints" in result.stdout


def test_region_prefix_and_arn_route_requests(pki, env, fake_ec2):
    east = fake_ec2.state.add_endpoint(REGION)
    west = fake_ec2.state.add_endpoint(OTHER_REGION)
    arn = f"arn:aws:ec2:{OTHER_REGION}:123456789012:client-vpn-endpoint/{west.endpoint_id}"
    result = run(pki, env, "upload", "--endpoint", f"{REGION}:{east.endpoint_id}", "--endpoint", arn)
    assert result.returncode == 0, result.stdout
    assert east.imports == 1
    assert west.imports == 1


def test_endpoint_in_other_region_not_found(pki, env, fake_ec2):
    west = fake_ec2.state.add_endpoint(OTHER_REGION)
    result = run(pki, env, "upload", "--endpoint", west.endpoint_id)
    assert result.returncode == 2
    assert "failed: InvalidClientVpnEndpointId.NotFound" in result.stdout


def test_endpoints_from_vars_file(pki, env, fake_ec2):
    first = fake_ec2.state.add_endpoint(REGION)
    second = fake_ec2.state.add_endpoint(OTHER_REGION)
    (pki / "vars").write_text(
        f'set_var EASYRSA_AWS_ENDPOINTS "{first.endpoint_id}, {OTHER_REGION}:{second.endpoint_id}"\n'
    )
    result = run(pki, env, "upload")
    assert result.returncode == 0, result.stdout + result.stderr
    assert first.imports == 1
    assert second.imports == 1


def test_endpoints_from_environment(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, {**env, "EASYRSA_AWS_ENDPOINTS": endpoint.endpoint_id}, "upload")
    assert result.returncode == 0
    assert endpoint.imports == 1


def test_one_failure_fails_run(pki, env, fake_ec2):
    good = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", good.endpoint_id,
                 "--endpoint", "cvpn-endpoint-00000000000000000")
    assert result.returncode == 2
    assert f"{good.endpoint_id} ({REGION}): uploaded" in result.stdout
    assert "cvpn-endpoint-00000000000000000 (us-east-1): failed: InvalidClientVpnEndpointId.NotFound" in result.stdout
    assert good.imports == 1


def test_deleted_endpoint_fails(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION, status="deleted")
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 2
    assert "failed: EndpointDeleted:" in result.stdout
    assert fake_ec2.state.actions(IMPORT) == []


def test_directory_endpoint_fails(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION, auth_type="directory-service-authentication")
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 2
    assert "failed: NotCertificateAuthenticated:" in result.stdout
    assert fake_ec2.state.actions(EXPORT) == []


def test_throttling_retried_then_succeeds(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    fake_ec2.state.inject(DESCRIBE, "throttle", count=1)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 0, result.stdout
    assert [r.attempt for r in fake_ec2.state.actions(DESCRIBE)] == [1, 2]
    assert endpoint.imports == 1


def test_throttling_gives_up_after_max_attempts(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    fake_ec2.state.inject(DESCRIBE, "throttle", count=5)
    result = run(pki, {**env, "EASYRSA_AWS_MAX_ATTEMPTS": "1"}, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 2
    assert "failed: RequestLimitExceeded: Request limit exceeded." in result.stdout
    assert len(fake_ec2.state.actions(DESCRIBE)) == 1


def test_malformed_xml_fails_endpoint(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    fake_ec2.state.inject(EXPORT, "malformed")
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 2
    assert "failed: MalformedResponse:" in result.stdout
    assert endpoint.imports == 0


def test_dropped_connection_fails_endpoint(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    fake_ec2.state.inject(DESCRIBE, "drop", count=5)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 2
    assert "failed: ConnectionFailed:" in result.stdout
    assert len(fake_ec2.state.actions(DESCRIBE)) == 2


def test_slow_answer_times_out(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    fake_ec2.state.inject(DESCRIBE, "slow", seconds=5)
    slow_env = {**env, "EASYRSA_AWS_TIMEOUT": "0.5", "EASYRSA_AWS_MAX_ATTEMPTS": "1"}
    result = run(pki, slow_env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 2
    assert "failed: Timeout:" in result.stdout
    assert endpoint.imports == 0


def test_wait_until_active(pki, env, fake_ec2):
    fake_ec2.state.pending_exports_before_active = 2
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id, "--wait", "10")
    assert result.returncode == 0, result.stdout
    assert "uploaded (status active)" in result.stdout
    assert len(fake_ec2.state.actions(EXPORT)) == 4


def test_wait_times_out(pki, env, fake_ec2):
    fake_ec2.state.pending_exports_before_active = 1000
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id, "--wait", "1")
    assert result.returncode == 2
    assert "failed: WaitTimeout: After 1 s" in result.stdout
    assert endpoint.imports == 1


def test_expired_crl_refused(pki_copy, env, fake_ec2):
    pki = gen_crl(pki_copy("v3.2.7-rsa"), days=1, now=datetime.now(UTC) - timedelta(days=3))
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 1
    assert "expired on" in result.stderr
    assert "easyrsa gen-crl" in result.stderr
    assert fake_ec2.state.requests == []


def test_expired_crl_forced(pki_copy, env, fake_ec2):
    pki = gen_crl(pki_copy("v3.2.7-rsa"), days=1, now=datetime.now(UTC) - timedelta(days=3))
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id, "--force")
    assert result.returncode == 0
    assert "expired on" in result.stderr
    assert endpoint.imports == 1


def test_expiring_crl_refused(pki_copy, env, fake_ec2):
    pki = gen_crl(pki_copy("v3.2.7-rsa"), days=3)
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 1
    assert "--min-days=7" in result.stderr
    assert "--days" in result.stderr
    assert fake_ec2.state.requests == []


def test_expiring_crl_within_min_days(pki_copy, env, fake_ec2):
    pki = gen_crl(pki_copy("v3.2.7-rsa"), days=3)
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id, "--min-days", "2")
    assert result.returncode == 0
    assert endpoint.imports == 1


def test_crl_of_other_ca_refused(pki, pki_copy, env, fake_ec2):
    other = gen_crl(pki_copy("v3.1.0-rsa"))
    (pki / "crl.pem").write_bytes((other / "crl.pem").read_bytes())
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 1
    assert "does not verify" in result.stderr or "not by this PKI's CA" in result.stderr
    assert fake_ec2.state.requests == []


def test_missing_region_exits_1(pki, env, fake_ec2):
    env = {k: v for k, v in env.items() if k != "AWS_DEFAULT_REGION"}
    result = run(pki, env, "upload", "--endpoint", "cvpn-endpoint-0123456789abcdef0")
    assert result.returncode == 1
    assert "No AWS region" in result.stderr
    assert fake_ec2.state.requests == []


def test_aws_region_beats_default_region(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(OTHER_REGION)
    result = run(pki, {**env, "AWS_REGION": OTHER_REGION}, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 0, result.stdout
    assert endpoint.imports == 1


def test_missing_credentials_exits_1(pki, env, fake_ec2):
    env = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    result = run(pki, env, "upload", "--endpoint", "cvpn-endpoint-0123456789abcdef0")
    assert result.returncode == 1
    assert "No AWS credentials found" in result.stderr
    assert fake_ec2.state.requests == []


def test_bad_profile_exits_1(pki, env, fake_ec2):
    result = run(pki, env, "upload", "--profile", "nosuch", "--endpoint", "cvpn-endpoint-0123456789abcdef0")
    assert result.returncode == 1
    assert "nosuch" in result.stderr
    assert fake_ec2.state.requests == []


def test_endpoint_url_option(pki, env, fake_ec2):
    env = {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL_EC2"}
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint-url", fake_ec2.url, "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 0, result.stdout
    assert endpoint.imports == 1


def test_unknown_option_exits_1(pki, env, fake_ec2):
    result = run(pki, env, "upload", "--bogus")
    assert result.returncode == 1
    assert "--bogus" in result.stderr
    assert fake_ec2.state.requests == []


def test_no_endpoint_exits_1(pki, env, fake_ec2):
    result = run(pki, env, "upload")
    assert result.returncode == 1
    assert "EASYRSA_AWS_ENDPOINTS" in result.stderr


def test_help_names_exit_codes(pki, env):
    result = run(pki, env, "help", "upload")
    assert "Exit codes: 0" in result.stdout
    assert "EASYRSA_AWS_MAX_ATTEMPTS" in result.stdout
    assert "EASYRSA_AWS_TIMEOUT" in result.stdout


def test_download_same(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION, crl_pem=crl_text(pki))
    result = run(pki, env, "download", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 0
    assert result.stdout == crl_text(pki)
    assert "is the same as" in result.stderr
    assert fake_ec2.state.actions(IMPORT) == []


def test_download_reports_difference(pki_copy, env, fake_ec2, tmp_path):
    pki = gen_crl(pki_copy("v3.2.7-rsa"))
    endpoint = fake_ec2.state.add_endpoint(REGION, crl_pem=crl_text(pki))
    run(pki, env, "--batch", "revoke", "alice")
    run(pki, env, "gen-crl")
    out = tmp_path / "endpoint.pem"
    result = run(pki, env, "download", "--endpoint", endpoint.endpoint_id, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text() == endpoint.crl_pem
    assert "revoked locally, missing on the endpoint" in result.stderr


def test_download_unknown_endpoint(pki, env, fake_ec2):
    result = run(pki, env, "download", "--endpoint", "cvpn-endpoint-0123456789abcdef0")
    assert result.returncode == 2
    assert "InvalidClientVpnEndpointId.NotFound" in result.stderr


def test_crl_status_current(pki, env):
    result = run(pki, env, "crl-status")
    assert result.returncode == 0
    assert "nextUpdate:" in result.stdout
    assert "entries:    1" in result.stdout


def test_crl_status_expiring(pki_copy, env):
    pki = gen_crl(pki_copy("v3.2.7-rsa"), days=3)
    result = run(pki, env, "crl-status")
    assert result.returncode == 3
    assert run(pki, env, "crl-status", "--min-days", "2").returncode == 0


def test_crl_status_json(pki, env):
    document = json.loads(run(pki, env, "crl-status", "--json").stdout)
    assert document["entries"] == 1
    assert document["expiring"] is False
    assert {"last_update", "next_update", "days_left"} <= set(document)


def test_crl_status_missing(pki, env):
    (pki / "crl.pem").unlink()
    result = run(pki, env, "crl-status")
    assert result.returncode == 1
    assert "gen-crl" in result.stderr


def test_pki_commands_skip_boto3(pki, env):
    script = (
        "import sys; from easyrsa_py.cli import main; "
        f"main(['--pki={pki}', 'show-crl']); "
        "sys.stderr.write(str(sorted(m for m in sys.modules if m.startswith(('boto3', 'botocore')))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stderr.endswith("[]"), result.stderr


def test_profile_supplies_region_and_keys(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(OTHER_REGION)
    Path(env["AWS_CONFIG_FILE"]).write_text(f"[profile ops]\nregion = {OTHER_REGION}\n")
    Path(env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        f"[ops]\naws_access_key_id = {env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    hidden = ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    env = {k: v for k, v in env.items() if k not in hidden}
    result = run(pki, env, "upload", "--profile", "ops", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert endpoint.imports == 1


def test_bad_aws_profile_variable(pki, env, fake_ec2):
    result = run(pki, {**env, "AWS_PROFILE": "nosuch"}, "upload", "--endpoint", "cvpn-endpoint-0a1")
    assert result.returncode == 1
    assert "AWS_PROFILE" in result.stderr
    assert fake_ec2.state.requests == []
