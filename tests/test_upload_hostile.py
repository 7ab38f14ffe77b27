"""Hostile inputs for `upload`, `download`, `crl-status` and `revoke --upload`.

Each test runs `python -m easyrsa_py` as a subprocess against the loopback
fake of EC2 in `fake_ec2.py`, with the isolated AWS environment from
`aws_environment` (dummy keys, no profile files, no instance metadata).
"""

# The fixtures imported from fake_ec2 are requested by parameter name, which
# ruff reports as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fake_ec2 import DESCRIBE, EXPORT, IMPORT, aws_env, fake_ec2  # noqa: F401

from easyrsa_py.database import generate_crl
from easyrsa_py.pki import PKILayout

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


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


def run(pki: Path, env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "easyrsa_py", f"--pki={pki}", *args],
        env=env, cwd=pki.parent, capture_output=True, text=True, timeout=timeout, check=False,
    )


def crl_text(pki: Path) -> str:
    return (pki / "crl.pem").read_text()


PRIVATE_KEY_BLOCK = (
    "-----BEGIN PRIVATE KEY-----\n"
    "TUlJRXZRSUJBREFOQmdrcWhraUc5dzBCQVFFRkFBU0NCS2N3Z2dTakFnRUFBb0lCQVFD\n"
    "-----END PRIVATE KEY-----\n"
)


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


# -- defects: each test below fails until the product is fixed ------------------


def test_unicode_digit_attempts_no_traceback(pki, env, fake_ec2):
    # "²" passes str.isdigit() but int() rejects it.
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, {**env, "EASYRSA_AWS_MAX_ATTEMPTS": "²"}, "upload", "--endpoint", endpoint.endpoint_id)
    assert_no_traceback(result)
    assert result.returncode == 1
    assert "EASYRSA_AWS_MAX_ATTEMPTS" in result.stderr
    assert fake_ec2.state.requests == []


def test_expired_crl_days_left_negative(pki_copy, env):
    # nextUpdate passed 12 hours ago; int() truncates -0.5 days to 0.
    now = datetime.now(UTC) - timedelta(days=1, hours=12)
    pki = gen_crl(pki_copy("v3.2.7-rsa"), days=1, now=now)
    result = run(pki, env, "crl-status", "--json")
    assert result.returncode == 3
    assert json.loads(result.stdout)["days_left"] < 0


def test_trailing_private_key_not_sent(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    (pki / "crl.pem").write_text(crl_text(pki) + PRIVATE_KEY_BLOCK)
    run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    for request in fake_ec2.state.actions(IMPORT):
        assert "PRIVATE KEY" not in request.params["CertificateRevocationList"]


def test_leading_text_not_sent(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    (pki / "crl.pem").write_text("Certificate Revocation List (CRL):\n" + crl_text(pki))
    run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    for request in fake_ec2.state.actions(IMPORT):
        assert request.params["CertificateRevocationList"].startswith("-----BEGIN X509 CRL-----")


def test_revoke_bad_upload_option_revokes_nothing(pki_copy, env, fake_ec2):
    pki = pki_copy("v3.2.7-rsa")
    index_before = (pki / "index.txt").read_text()
    result = run(pki, env, "--batch", "revoke", "alice", "--upload", "--bogus")
    assert_no_traceback(result)
    assert result.returncode == 1
    assert "--bogus" in result.stderr
    assert (pki / "index.txt").read_text() == index_before


def test_invalid_env_region_exits_1(pki, env, fake_ec2):
    # --region=üs-east-1 exits 1 before any request; the same value from the
    # environment becomes a per-endpoint failure with exit code 2.
    result = run(pki, {**env, "AWS_DEFAULT_REGION": "üs-east-1"}, "upload", "--endpoint", "cvpn-endpoint-0a1")
    assert_no_traceback(result)
    assert result.returncode == 1
    assert fake_ec2.state.requests == []


# -- behaviour that works and is pinned here ---------------------------------------


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"\x00" * 64, b"-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n"])
def test_bad_crl_sends_nothing(pki, env, fake_ec2, content):
    (pki / "crl.pem").write_bytes(content)
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert_no_traceback(result)
    assert result.returncode == 1
    assert fake_ec2.state.requests == []


def test_der_crl_sends_nothing(pki, env, fake_ec2):
    der = x509.load_pem_x509_crl(crl_text(pki).encode()).public_bytes(serialization.Encoding.DER)
    (pki / "crl.pem").write_bytes(der)
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 1
    assert fake_ec2.state.requests == []


def test_crl_linked_to_dev_zero(pki, env, fake_ec2):
    (pki / "crl.pem").unlink()
    (pki / "crl.pem").symlink_to("/dev/zero")
    endpoint = fake_ec2.state.add_endpoint(REGION)
    status = run(pki, env, "crl-status", timeout=30)
    upload = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id, timeout=30)
    assert status.returncode == 1
    assert upload.returncode == 1
    assert fake_ec2.state.requests == []


def test_same_subject_other_key_rejected(pki, env, fake_ec2):
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    forged = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now)
        .next_update(now + timedelta(days=180))
        .sign(key, hashes.SHA256())
    )
    (pki / "crl.pem").write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id)
    assert result.returncode == 1
    assert "does not verify" in result.stderr
    assert fake_ec2.state.requests == []


def der_elements(data: bytes) -> list[bytes]:
    """Split concatenated DER TLVs (definite lengths only) into whole elements."""
    elements = []
    while data:
        length, offset = data[1], 2
        if length & 0x80:
            size = length & 0x7F
            length, offset = int.from_bytes(data[2 : 2 + size], "big"), 2 + size
        elements.append(data[: offset + length])
        data = data[offset + length :]
    return elements


def der_sequence(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def crl_without_next_update(pki: Path) -> bytes:
    """Re-sign pki's CRL with nextUpdate removed; cryptography cannot build one."""
    crl = x509.load_pem_x509_crl(crl_text(pki).encode())
    tbs = crl.tbs_certlist_bytes
    inner = der_elements(_content(tbs))
    # version, signature, issuer, thisUpdate, nextUpdate, ...
    del inner[4]
    new_tbs = der_sequence(0x30, b"".join(inner))
    key = serialization.load_pem_private_key((pki / "private" / "ca.key").read_bytes(), None)
    signature = key.sign(new_tbs, padding.PKCS1v15(), hashes.SHA256())
    algorithm = der_elements(_content(der_elements(crl.public_bytes(serialization.Encoding.DER))[0]))[1]
    return der_sequence(0x30, new_tbs + algorithm + der_sequence(0x03, b"\0" + signature))


def _content(element: bytes) -> bytes:
    length = element[1]
    offset = 2 + (length & 0x7F if length & 0x80 else 0)
    return element[offset:]


def test_crl_without_next_update(pki, env):
    der = crl_without_next_update(pki)
    assert x509.load_der_x509_crl(der).next_update_utc is None
    pem = "-----BEGIN X509 CRL-----\n" + "\n".join(
        textwrap.wrap(base64.b64encode(der).decode(), 64)) + "\n-----END X509 CRL-----\n"
    (pki / "crl.pem").write_text(pem)
    result = run(pki, env, "crl-status", "--json")
    assert_no_traceback(result)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "nextUpdate" in result.stderr


def test_silent_endpoint_times_out(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION)
    fake_ec2.state.inject(None, "slow", count=100, seconds=60)
    slow_env = {**env, "EASYRSA_AWS_TIMEOUT": "1", "EASYRSA_AWS_MAX_ATTEMPTS": "2"}
    # The fake answers after 60 s, so a Timeout error code shows that the 1 s limit held.
    result = run(pki, slow_env, "upload", "--endpoint", endpoint.endpoint_id, "--json", timeout=60)
    assert result.returncode == 2
    assert json.loads(result.stdout)["endpoints"][0]["error_code"] == "Timeout"
    assert endpoint.imports == 0


def test_wait_ends_while_pending(pki, env, fake_ec2):
    fake_ec2.state.pending_exports_before_active = 1000
    endpoint = fake_ec2.state.add_endpoint(REGION)
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id, "--wait", "2", timeout=60)
    assert result.returncode == 2
    assert "WaitTimeout" in result.stdout


def test_fifty_endpoints_one_fails(pki, env, fake_ec2):
    endpoints = [fake_ec2.state.add_endpoint(REGION, tags={"k": "a=b"}) for _ in range(50)]
    fake_ec2.state.inject(IMPORT, "server-error", count=2)
    arn = f"arn:aws:ec2:{REGION}:123456789012:client-vpn-endpoint/{endpoints[0].endpoint_id}"
    result = run(pki, env, "upload", "--tag", "k=a=b", "--json",
                 "--endpoint", endpoints[0].endpoint_id, "--endpoint", arn)
    document = json.loads(result.stdout)
    assert result.returncode == 2
    assert len(document["endpoints"]) == 50
    assert [entry["result"] for entry in document["endpoints"]].count("failed") == 1
    assert sum(endpoint.imports for endpoint in endpoints) == 49


@pytest.mark.parametrize("spec", ["", "us-east-1:", "cvpn-endpoint-ü1", "arn:aws:ec2:us-east-1:1:client-vpn-endpoint/", "us-east-1:cvpn-endpoint-0a1:x"])
def test_odd_spec_exits_1(pki, env, fake_ec2, spec):
    result = run(pki, env, "upload", "--endpoint", spec)
    assert_no_traceback(result)
    assert result.returncode == 1
    assert "Invalid Client VPN endpoint" in result.stderr
    assert fake_ec2.state.requests == []


def test_unchanged_bad_local_sends_no_import(pki, env, fake_ec2):
    endpoint = fake_ec2.state.add_endpoint(REGION, crl_pem=crl_text(pki))
    (pki / "crl.pem").write_text("garbage\n")
    result = run(pki, env, "upload", "--endpoint", endpoint.endpoint_id, "--force")
    assert result.returncode == 1
    assert fake_ec2.state.requests == []


def test_secrets_not_printed(pki_copy, env, fake_ec2):
    passphrase = "fixture-ec-ca-pass"
    pki = pki_copy("v3.2.2-ec")
    fake_ec2.state.inject(None, "auth-failure", count=10)
    result = run(pki, env, "-v", "--batch", f"--passin=pass:{passphrase}", "revoke", "alice",
                 "--upload", "--endpoint", "cvpn-endpoint-0a1")
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert passphrase not in output
    assert env["AWS_SECRET_ACCESS_KEY"] not in output
    assert not (pki / "lock.file").exists()


def test_revoke_upload_failure_releases_lock(pki_copy, env, fake_ec2):
    pki = pki_copy("v3.2.7-rsa")
    fake_ec2.state.inject(None, "drop", count=10)
    result = run(pki, env, "--batch", "revoke", "alice", "--upload", "--endpoint", "cvpn-endpoint-0a1")
    assert result.returncode == 2
    assert not (pki / "lock.file").exists()
    assert run(pki, env, "--batch", "gen-crl").returncode == 0
