"""Mixed use: easyrsa_py and the real easy-rsa take turns on one PKI.

Each test runs one tool after the other on the same copy of a fixture and
checks that the second tool accepts what the first wrote. CRLs list the
revocations of either tool, and `openssl verify -crl_check` rejects a revoked
certificate and accepts a valid one whichever tool made the CRL. The lock
file keeps the two tools from running on one PKI at the same time.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from pkitools import (
    crl_summary,
    openssl_crl_verify,
    pki_state,
    read_index,
    run_product,
    serial_of,
)
from reference import reference_env

from easyrsa_py.lock import PKILock

VERSION_FIXTURES = {"3.1.0": "v3.1.0-rsa", "3.2.2": "v3.2.2-ec", "3.2.7": "v3.2.7-rsa"}
EC_PASSPHRASE = "fixture-ec-ca-pass"
# A second certificate each fixture can revoke after alice.
SECOND_NAME = {"v3.1.0-rsa": "carol", "v3.2.2-ec": "server", "v3.2.7-rsa": "carol"}
KEY_COMPROMISE = x509.ReasonFlags.key_compromise
LOCK_WAIT_SECONDS = 20


def passin_args(fixture: str) -> list[str]:
    return [f"--passin=pass:{EC_PASSPHRASE}"] if fixture == "v3.2.2-ec" else []


def openssl_verify(pki: Path, certificate: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", "-crl_check", "-CAfile", str(pki / "ca.crt"),
         "-CRLfile", str(pki / "crl.pem"), str(certificate)],
        capture_output=True, text=True, timeout=60, check=False,
    )


def revoked_certificate(pki: Path, serial: str) -> Path:
    return pki / "revoked" / "certs_by_serial" / f"{serial}.crt"


def crl_reason(pki: Path, serial: str) -> x509.ReasonFlags | None:
    crl = x509.load_pem_x509_crl((pki / "crl.pem").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
    assert entry is not None, f"serial {serial} is not in {pki / 'crl.pem'}"
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def assert_crl_rejects_and_accepts(pki: Path, revoked: Path, valid: Path) -> None:
    rejected = openssl_verify(pki, revoked)
    assert rejected.returncode != 0
    assert "certificate revoked" in rejected.stdout + rejected.stderr
    accepted = openssl_verify(pki, valid)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert f"{valid}: OK" in accepted.stdout


def test_product_revokes_reference_generates_crl(reference, pki_copy):
    fixture = VERSION_FIXTURES[reference.version]
    pki = pki_copy(fixture)
    serial = serial_of(pki / "issued" / "alice.crt")

    revoked = run_product(pki, *passin_args(fixture), "revoke", "alice", "keyCompromise")
    assert revoked.returncode == 0, revoked.stderr
    reference.run(pki, *passin_args(fixture), "gen-crl")

    assert crl_reason(pki, serial) == KEY_COMPROMISE
    assert "verify OK" in openssl_crl_verify(pki).stderr
    assert_crl_rejects_and_accepts(pki, revoked_certificate(pki, serial),
                                   pki / "issued" / "server.crt")


def test_reference_revokes_product_generates_crl(reference, pki_copy):
    fixture = VERSION_FIXTURES[reference.version]
    pki = pki_copy(fixture)
    serial = serial_of(pki / "issued" / "alice.crt")

    reference.run(pki, *passin_args(fixture), "revoke", "alice", "keyCompromise")
    generated = run_product(pki, *passin_args(fixture), "gen-crl")

    assert generated.returncode == 0, generated.stderr
    assert crl_reason(pki, serial) == KEY_COMPROMISE
    assert "verify OK" in openssl_crl_verify(pki).stderr
    assert_crl_rejects_and_accepts(pki, revoked_certificate(pki, serial),
                                   pki / "issued" / "server.crt")


def test_product_crl_rejects_revoked(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")
    serial = serial_of(pki / "issued" / "alice.crt")

    assert run_product(pki, "revoke", "alice").returncode == 0
    assert run_product(pki, "gen-crl").returncode == 0

    assert crl_reason(pki, serial) is None
    assert_crl_rejects_and_accepts(pki, revoked_certificate(pki, serial),
                                   pki / "issued" / "server.crt")


@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
def test_reference_show_revoke_on_product_pki(reference_for, pki_copy, version):
    fixture = VERSION_FIXTURES[version]
    pki = pki_copy(fixture)
    serial = serial_of(pki / "issued" / "alice.crt")
    assert run_product(pki, *passin_args(fixture), "revoke", "alice", "kc").returncode == 0

    shown = reference_for(version).run(pki, "show-revoke", "alice")

    assert f"Serial: {serial}" in shown.stdout
    assert "Reason: keyCompromise" in shown.stdout


def test_reference_keeps_working_on_product_pki(reference, pki_copy):
    fixture = VERSION_FIXTURES[reference.version]
    pki = pki_copy(fixture)
    passin = passin_args(fixture)
    first = serial_of(pki / "issued" / "alice.crt")
    second = serial_of(pki / "issued" / f"{SECOND_NAME[fixture]}.crt")
    for step in (["revoke", "alice", "superseded"], ["gen-crl"], ["update-db"]):
        result = run_product(pki, *passin, *step)
        assert result.returncode == 0, f"{step}: {result.stderr}"

    reference.run(pki, *passin, "revoke", SECOND_NAME[fixture], "affiliationChanged")
    reference.run(pki, *passin, "gen-crl")
    reference.run(pki, *passin, "update-db")

    assert crl_reason(pki, first) == x509.ReasonFlags.superseded
    assert crl_reason(pki, second) == x509.ReasonFlags.affiliation_changed
    assert "verify OK" in openssl_crl_verify(pki).stderr
    again = run_product(pki, *passin, "gen-crl")
    assert again.returncode == 0, again.stderr
    assert {first, second} <= {row[3] for row in read_index(pki) if row[0] == "R"}


def test_product_revokes_after_reference_crl(reference, pki_copy):
    fixture = VERSION_FIXTURES[reference.version]
    pki = pki_copy(fixture)
    passin = passin_args(fixture)
    reference.run(pki, *passin, "revoke", "alice")
    reference.run(pki, *passin, "gen-crl")
    second = serial_of(pki / "issued" / f"{SECOND_NAME[fixture]}.crt")

    assert run_product(pki, *passin, "revoke", SECOND_NAME[fixture], "ch").returncode == 0
    reference.run(pki, *passin, "gen-crl")

    assert crl_reason(pki, second) == x509.ReasonFlags.certificate_hold
    assert len(crl_summary(pki / "crl.pem").entries) == 3


# --- the lock ------------------------------------------------------------------


def test_reference_exits_17_on_product_lock(reference_for, pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    with PKILock(pki):
        before = pki_state(pki)
        result = reference_for("3.2.7").run(pki, "revoke", "alice", check=False)
        after = pki_state(pki)

    assert result.returncode == 17
    assert after == before
    assert not (pki / "lock.file").exists()


def test_product_exits_17_on_live_lock(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    # This test process is alive, so the lock is held, not stale.
    (pki / "lock.file").write_text(f"{os.getpid()}\n")
    before = pki_state(pki)

    result = run_product(pki, "revoke", "alice")

    assert result.returncode == 17
    assert pki_state(pki) == before
    assert str(pki / "lock.file") in result.stderr
    assert "still running" in result.stderr


def test_product_takes_over_stale_lock(pki_copy, reference_for):
    pki = pki_copy("v3.2.7-rsa")
    # PIDs are not reused at once, so a just-finished child's PID is free.
    child = subprocess.Popen(["true"])
    child.wait()
    (pki / "lock.file").write_text(f"{child.pid}\n")
    before = pki_state(pki)

    script = reference_for("3.2.7").run(pki, "gen-crl", check=False)

    assert script.returncode == 17
    assert pki_state(pki) == before

    result = run_product(pki, "gen-crl")

    assert result.returncode == 0, result.stderr
    assert f"Took over the stale lock file {pki / 'lock.file'}" in result.stderr
    assert f"process {child.pid}" in result.stderr
    assert not (pki / "lock.file").exists()


def wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


def test_product_exits_17_while_reference_runs(pki_copy, reference_for):
    pki = pki_copy("v3.2.7-rsa")
    script = reference_for("3.2.7").script_dir / "easyrsa"
    home = pki.parent
    # Without --batch the real script waits at its confirmation prompt,
    # holding the lock until its input closes.
    waiting = subprocess.Popen(
        [str(script), "revoke", "alice"], cwd=home, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=reference_env(pki, home, False, None),
    )
    try:
        assert wait_for(pki / "lock.file", LOCK_WAIT_SECONDS)
        holder = (pki / "lock.file").read_text().strip()

        result = run_product(pki, "gen-crl")

        assert result.returncode == 17
        assert holder in result.stderr
    finally:
        waiting.communicate("no\n", timeout=60)
    assert waiting.returncode == 1
    assert not (pki / "lock.file").exists()
    assert (pki / "issued" / "alice.crt").exists()


def test_product_releases_lock(pki_copy, reference_for):
    pki = pki_copy("v3.2.7-rsa")
    assert run_product(pki, "revoke", "alice").returncode == 0

    assert not (pki / "lock.file").exists()
    reference_for("3.2.7").run(pki, "gen-crl")
