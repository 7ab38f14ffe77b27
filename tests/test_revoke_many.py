"""Revoking several certificates in one run: one index.txt write, all or nothing."""

from __future__ import annotations

import io

import pytest

from easyrsa_py.console import Console
from easyrsa_py.errors import CertificateNotFound, ConfirmationAborted, UsageError
from easyrsa_py.pki import PKILayout
from easyrsa_py.revoke import revoke_all
from pkitools import load_crl, pki_state, read_index, run_product


def _console(answer: str | None = None) -> Console:
    if answer is None:
        return Console(batch=True, silent=True, stderr=io.StringIO())
    return Console(batch=False, silent=True, stdin=io.StringIO(answer), stderr=io.StringIO())


def _status(pki, common_name):
    return [row for row in read_index(pki) if row[5] == f"/CN={common_name}"][0]


def test_revoke_two_names(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    plans = revoke_all(PKILayout(pki), _console(), command="revoke", kind="issued",
                       names=["alice", "server"], reason="superseded", passin=None)

    assert [plan.name for plan in plans] == ["alice", "server"]
    for name in ("alice", "server"):
        row = _status(pki, name)
        assert row[0] == "R"
        assert row[2].endswith(",superseded")
        assert not (pki / "issued" / f"{name}.crt").exists()
        assert (pki / "revoked" / "certs_by_serial" / f"{row[3]}.crt").exists()


def test_revoke_many_writes_index_once(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    before = (pki / "index.txt").read_bytes()

    revoke_all(PKILayout(pki), _console(), command="revoke", kind="issued",
               names=["alice", "server"], reason=None, passin=None)

    # One write keeps the file from before both revocations as the backup.
    assert (pki / "index.txt.old").read_bytes() == before


def test_revoke_many_missing_name_changes_nothing(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)

    with pytest.raises(CertificateNotFound, match="zed"):
        revoke_all(PKILayout(pki), _console(), command="revoke", kind="issued",
                   names=["alice", "zed"], reason=None, passin=None)

    assert pki_state(pki) == before


def test_revoke_many_repeated_name(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)

    with pytest.raises(UsageError, match="repeated: alice"):
        revoke_all(PKILayout(pki), _console(), command="revoke", kind="issued",
                   names=["alice", "alice"], reason=None, passin=None)

    assert pki_state(pki) == before


def test_revoke_many_one_confirmation(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    console = _console("yes\n")

    revoke_all(PKILayout(pki), console, command="revoke", kind="issued",
               names=["alice", "server"], reason=None, passin=None)

    prompt = console.stderr.getvalue()
    assert prompt.count("Continue with revocation:") == 1
    assert "alice" in prompt
    assert "server" in prompt


def test_revoke_many_refused(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)

    with pytest.raises(ConfirmationAborted):
        revoke_all(PKILayout(pki), _console("no\n"), command="revoke", kind="issued",
                   names=["alice", "server"], reason=None, passin=None)

    assert pki_state(pki) == before


def test_cli_two_names_and_gen_crl(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, "revoke", "alice", "server", "--reason=kc", "--gen-crl")

    assert result.returncode == 0, result.stderr
    for name in ("alice", "server"):
        assert _status(pki, name)[2].endswith(",keyCompromise")
    revoked = {int(row[3], 16) for row in read_index(pki) if row[0] == "R"}
    assert {entry.serial_number for entry in load_crl(pki / "crl.pem")} == revoked


def test_cli_second_word_reason_when_valid(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, "revoke", "alice", "ss")

    assert result.returncode == 0, result.stderr
    assert _status(pki, "alice")[2].endswith(",superseded")
    assert _status(pki, "server")[0] == "V"


def test_cli_second_word_name_otherwise(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, "revoke", "alice", "server")

    assert result.returncode == 0, result.stderr
    assert _status(pki, "alice")[0] == "R"
    assert _status(pki, "server")[0] == "R"


def test_cli_option_after_names_is_a_name(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)

    result = run_product(pki, "revoke", "alice", "--frobnicate")

    assert result.returncode == 1
    assert "no certificate at" in result.stderr
    assert "Options go before the command" in result.stderr
    assert pki_state(pki) == before
