"""`revoke ... --upload`: revoke, write the CRL and upload it in one locked run."""

# The fixtures imported from fake_ec2 are requested by parameter name, which
# ruff reports as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fake_ec2 import IMPORT, aws_env, fake_ec2  # noqa: F401

from pkitools import read_index

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


@pytest.fixture
def env(aws_env) -> dict[str, str]:
    return {**aws_env, "PYTHONPATH": str(REPO_ROOT), "EASYRSA_AWS_MAX_ATTEMPTS": "2", "EASYRSA_AWS_TIMEOUT": "5"}


def _run(pki: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "easyrsa_py", "--batch", f"--pki={pki}", *args],
        env=env, cwd=pki.parent, capture_output=True, text=True, timeout=120, check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _serial(pki: Path, common_name: str) -> int:
    row = [row for row in read_index(pki) if row[5] == f"/CN={common_name}"][0]
    return int(row[3], 16)


def test_revoke_gen_crl_upload(pki_copy, fake_ec2, env):
    pki = pki_copy("v3.2.7-rsa")
    endpoint = fake_ec2.state.add_endpoint(REGION)

    result = _run(pki, env, "revoke-issued", "alice", "keyCompromise", "--upload",
                  f"--endpoint={REGION}:{endpoint.endpoint_id}")

    assert result.returncode == 0, result.stderr
    assert endpoint.imports == 1
    uploaded = x509.load_pem_x509_crl(endpoint.crl_pem.encode())
    assert _serial(pki, "alice") in {entry.serial_number for entry in uploaded}
    assert uploaded.public_bytes(serialization.Encoding.DER) == (pki / "crl.der").read_bytes()
    assert not (pki / "lock.file").exists()


def test_revoke_upload_failure_keeps_revocation(pki_copy, fake_ec2, env):
    pki = pki_copy("v3.2.7-rsa")

    result = _run(pki, env, "revoke", "alice", "--upload", f"--endpoint={REGION}:cvpn-endpoint-0000000000000dead")

    assert result.returncode == 2
    assert [row[0] for row in read_index(pki) if row[5] == "/CN=alice"] == ["R"]
    crl = x509.load_pem_x509_crl((pki / "crl.pem").read_bytes())
    assert _serial(pki, "alice") in {entry.serial_number for entry in crl}
    assert fake_ec2.state.actions(IMPORT) == []


def test_crl_status_ignores_held_lock(pki_copy, env):
    pki = pki_copy("v3.2.7-rsa")
    _run(pki, env, "gen-crl")
    (pki / "lock.file").write_text(f"{os.getppid()}\n")

    result = _run(pki, env, "crl-status")

    assert result.returncode == 0, result.stderr
    assert (pki / "lock.file").read_text() == f"{os.getppid()}\n"


def test_gen_crl_still_respects_held_lock(pki_copy, env):
    pki = pki_copy("v3.2.7-rsa")
    (pki / "lock.file").write_text(f"{os.getppid()}\n")

    result = _run(pki, env, "gen-crl")

    assert result.returncode == 17


def test_download_refuses_own_crl(pki_copy, fake_ec2, env):
    pki = pki_copy("v3.2.7-rsa")
    _run(pki, env, "gen-crl")
    before = (pki / "crl.pem").read_bytes()
    endpoint = fake_ec2.state.add_endpoint(REGION)

    result = _run(pki, env, "download", f"--endpoint={REGION}:{endpoint.endpoint_id}", f"--out={pki / 'crl.pem'}")

    assert result.returncode == 1
    assert "must not replace" in result.stderr
    assert (pki / "crl.pem").read_bytes() == before
    assert fake_ec2.state.requests == []
