"""Global option parsing, with easy-rsa's spellings and value rules."""

from __future__ import annotations

import pytest

from easyrsa_py.errors import UsageError
from easyrsa_py.options import parse_command_line


def test_options_before_command():
    parsed = parse_command_line(["--batch", "--pki=/tmp/p", "revoke", "alice", "kc"])
    assert parsed.options == {"EASYRSA_BATCH": "1", "EASYRSA_PKI": "/tmp/p"}
    assert parsed.command == "revoke"
    assert parsed.arguments == ["alice", "kc"]


def test_option_after_command_is_an_argument():
    parsed = parse_command_line(["gen-crl", "--batch"])
    assert parsed.command == "gen-crl"
    assert parsed.arguments == ["--batch"]
    assert parsed.options == {}


@pytest.mark.parametrize("spelling", ["--pki", "--pki-dir"])
def test_pki_spellings(spelling):
    assert parse_command_line([f"{spelling}=x", "gen-crl"]).options == {"EASYRSA_PKI": "x"}


def test_silent_batch_sets_both():
    options = parse_command_line(["--sbatch", "gen-crl"]).options
    assert options == {"EASYRSA_SILENT": "1", "EASYRSA_BATCH": "1"}


def test_missing_value_is_an_error():
    with pytest.raises(UsageError, match="Missing value for option --pki"):
        parse_command_line(["--pki", "gen-crl"])


@pytest.mark.parametrize("value", ["abc", "030", "-1", "1.5"])
def test_days_must_be_a_number(value):
    with pytest.raises(UsageError, match=f"'{value}'"):
        parse_command_line([f"--days={value}", "gen-crl"])


def test_days_zero_allowed():
    assert parse_command_line(["--days=0", "gen-crl"]).options == {"EASYRSA_ALIAS_DAYS": "0"}


def test_keysize_zero_rejected():
    with pytest.raises(UsageError):
        parse_command_line(["--keysize=0", "gen-req"])


def test_unknown_option():
    with pytest.raises(UsageError, match="Unknown option '--frobnicate'"):
        parse_command_line(["--frobnicate", "gen-crl"])


def test_san_repeats_accumulate():
    options = parse_command_line(["--san=DNS:a", "--san=DNS:b", "gen-req"]).options
    assert options["EASYRSA_SAN"] == "DNS:a, DNS:b"


def test_curve_selects_algorithm():
    assert parse_command_line(["--curve=ed25519", "x"]).options["EASYRSA_ALGO"] == "ed"
    assert parse_command_line(["--curve=secp384r1", "x"]).options["EASYRSA_ALGO"] == "ec"


def test_help_and_version_stop_parsing():
    assert parse_command_line(["--batch", "--help", "--bogus"]).command == "help"
    assert parse_command_line(["--version"]).command == "version"


def test_no_command():
    parsed = parse_command_line(["--batch"])
    assert parsed.command == ""
    assert parsed.arguments == []
