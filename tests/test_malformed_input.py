"""Malformed input: every bad index.txt, CA, passphrase or argument stops the
command with a message naming the problem, and the PKI stays unchanged.

The index.txt cases run easyrsa_py alone, because compat.md makes it stricter
than OpenSSL there. The other cases also run the real easy-rsa 3.2.7 on a
second copy, and easyrsa_py must exit with the same code.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from pkitools import pki_state, read_index, run_product, serial_of

FIXTURE = "v3.2.7-rsa"
EC_FIXTURE = "v3.2.2-ec"
EC_PASSPHRASE = "fixture-ec-ca-pass"
FIXTURES_DIR = Path(__file__).resolve().parent.parent / "pki_fixtures"
ALICE_SERIAL = "7C0895ABACCC34C8C33A3BF77B85058C"

COMMANDS = {
    "revoke": ["revoke", "alice"],
    "gen-crl": ["gen-crl"],
    "update-db": ["update-db"],
}


def edit_line(number: int, edit: Callable[[list[str]], list[str]]) -> Callable[[str], str]:
    """Build an index.txt edit that changes the fields of one line (1-based)."""

    def apply(text: str) -> str:
        lines = text.split("\n")
        lines[number - 1] = "\t".join(edit(lines[number - 1].split("\t")))
        return "\n".join(lines)

    return apply


def set_field(position: int, value: str) -> Callable[[list[str]], list[str]]:
    def edit(fields: list[str]) -> list[str]:
        fields[position] = value
        return fields

    return edit


def insert_blank_line(text: str) -> str:
    first, rest = text.split("\n", 1)
    return f"{first}\n\n{rest}"


def duplicate_first_row(text: str) -> str:
    return text + text.split("\n", 1)[0] + "\n"


# Each case: (edit of index.txt text, line the message must name, a word of
# the message). The fixture's index.txt has 8 rows. Line 2 is bob's R row
# and line 3 carol's V row.
INDEX_CASES = {
    "wrong field count": (edit_line(3, lambda fields: fields[:4] + fields[5:]), 3, "6 tab-separated fields"),
    "bad expiry date": (edit_line(3, set_field(1, "291308155130Z")), 3, "291308155130Z"),
    "bad revocation date": (edit_line(2, set_field(2, "26120415513Z,keyCompromise")), 2, "26120415513Z"),
    "non-hex serial": (edit_line(3, set_field(3, "4EE3322C6FD4276A945836252CF76FXY")), 3, "4EE3322C6FD4276A945836252CF76FXY"),
    "CRLF endings": (lambda text: text.replace("\n", "\r\n"), 1, "CRLF"),
    "blank line": (insert_blank_line, 2, "blank line"),
    "duplicate serials": (duplicate_first_row, 9, ALICE_SERIAL),
    "unknown status": (edit_line(3, set_field(0, "X")), 3, "'X'"),
    "R row without date": (edit_line(3, set_field(0, "R")), 3, "revocation date"),
    "V row with a date": (edit_line(3, set_field(2, "261201000000Z")), 3, "261201000000Z"),
    "unknown reason": (edit_line(2, set_field(2, "261204155133Z,badReason")), 2, "badReason"),
    "missing final newline": (lambda text: text.rstrip("\n"), 8, "newline"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(INDEX_CASES))
def test_malformed_index(pki_copy, case, command):
    edit, line, word = INDEX_CASES[case]
    pki = pki_copy(FIXTURE)
    index = pki / "index.txt"
    index.write_bytes(edit(index.read_bytes().decode()).encode())
    before = pki_state(pki)

    result = run_product(pki, *COMMANDS[command])

    assert result.returncode == 1
    assert f"{index}:{line}" in result.stderr
    assert word in result.stderr
    assert pki_state(pki) == before


# --- the same case for both tools ---------------------------------------------------


@dataclass
class Outcome:
    ref_code: int
    py_code: int
    ref_unchanged: bool
    py_unchanged: bool
    py_message: str
    ref_pki: Path
    py_pki: Path


def run_case(
    reference_for: Callable[[str], object],
    pki_copy: Callable[[str], Path],
    args: list[str],
    *,
    fixture: str = FIXTURE,
    prepare: Callable[[Path], object] | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    relocate: Callable[[Path], Path] | None = None,
) -> Outcome:
    """Run one bad case with the real 3.2.7 and easyrsa_py on copies of one PKI.

    `relocate` maps the copied PKI to the path the commands receive, for
    cases where that path does not exist.
    """
    pkis = []
    for _ in range(2):
        pki = pki_copy(fixture)
        if prepare is not None:
            prepare(pki)
        pkis.append(pki)
    ref_pki, py_pki = pkis
    ref_before, py_before = pki_state(ref_pki.parent), pki_state(py_pki.parent)
    ref_target = relocate(ref_pki) if relocate else ref_pki
    py_target = relocate(py_pki) if relocate else py_pki

    ref = reference_for("3.2.7").run(ref_target, *args, env=env, input=input, check=False)  # type: ignore[attr-defined]
    py = run_product(py_target, *args, env=env, input=input)

    return Outcome(
        ref.returncode,
        py.returncode,
        pki_state(ref_pki.parent) == ref_before,
        pki_state(py_pki.parent) == py_before,
        py.stderr,
        ref_pki,
        py_pki,
    )


def assert_rejected_like_reference(outcome: Outcome, *words: str) -> None:
    assert outcome.ref_code != 0
    assert outcome.py_code == outcome.ref_code
    assert outcome.ref_unchanged
    assert outcome.py_unchanged
    for word in words:
        assert word in outcome.py_message


def missing_folder(pki: Path) -> Path:
    return pki.parent / "no-such-pki"


def test_missing_pki(reference_for, pki_copy):
    outcome = run_case(reference_for, pki_copy, ["revoke", "alice"], relocate=missing_folder)

    assert_rejected_like_reference(outcome, str(missing_folder(outcome.py_pki)), "does not exist")


@pytest.mark.parametrize("command", ["revoke", "gen-crl"])
def test_missing_ca_certificate(reference_for, pki_copy, command):
    outcome = run_case(reference_for, pki_copy, COMMANDS[command],
                       prepare=lambda pki: (pki / "ca.crt").unlink())

    assert_rejected_like_reference(outcome, str(outcome.py_pki / "ca.crt"), "missing", "build-ca")


@pytest.mark.parametrize("command", ["revoke", "gen-crl", "update-db"])
def test_garbage_ca_certificate(reference_for, pki_copy, command):
    outcome = run_case(reference_for, pki_copy, COMMANDS[command],
                       prepare=lambda pki: (pki / "ca.crt").write_text("not a certificate\n"))

    assert_rejected_like_reference(outcome, str(outcome.py_pki / "ca.crt"), "not a valid PEM certificate")


def replace_ca_key(pki: Path) -> None:
    shutil.copy(FIXTURES_DIR / "v3.1.0-rsa" / "pki" / "private" / "ca.key", pki / "private" / "ca.key")


@pytest.mark.parametrize("command", ["revoke", "gen-crl", "update-db"])
def test_ca_key_not_matching(reference_for, pki_copy, command):
    outcome = run_case(reference_for, pki_copy, COMMANDS[command], prepare=replace_ca_key)

    assert_rejected_like_reference(outcome, str(outcome.py_pki / "private" / "ca.key"), "does not match")


@pytest.mark.parametrize("source", ["pass", "env", "file", "stdin"])
def test_wrong_passphrase(reference_for, pki_copy, tmp_path, source):
    wrong_file = tmp_path / "wrong-passphrase.txt"
    wrong_file.write_text("not-the-passphrase\n")
    passin, env, stdin = {
        "pass": ("pass:not-the-passphrase", None, None),
        "env": ("env:CA_PASS", {"CA_PASS": "not-the-passphrase"}, None),
        "file": (f"file:{wrong_file}", None, None),
        "stdin": ("stdin", None, "not-the-passphrase\n"),
    }[source]

    outcome = run_case(reference_for, pki_copy, [f"--passin={passin}", "gen-crl"],
                       fixture=EC_FIXTURE, env=env, input=stdin)

    assert_rejected_like_reference(outcome, "passphrase", str(outcome.py_pki / "private" / "ca.key"))


@pytest.mark.parametrize("command", ["revoke", "update-db"])
def test_wrong_passphrase_other_commands(reference_for, pki_copy, command):
    outcome = run_case(reference_for, pki_copy, ["--passin=pass:not-the-passphrase", *COMMANDS[command]],
                       fixture=EC_FIXTURE)

    assert_rejected_like_reference(outcome, "passphrase", str(outcome.py_pki / "private" / "ca.key"))


def test_passphrase_variable_unset(reference_for, pki_copy):
    outcome = run_case(reference_for, pki_copy, ["--passin=env:UNSET_CA_PASS", "gen-crl"],
                       fixture=EC_FIXTURE)

    assert_rejected_like_reference(outcome, "UNSET_CA_PASS", "not set")


def test_passphrase_file_missing(reference_for, pki_copy, tmp_path):
    missing = tmp_path / "no-such-passphrase-file"
    outcome = run_case(reference_for, pki_copy, [f"--passin=file:{missing}", "gen-crl"],
                       fixture=EC_FIXTURE)

    assert_rejected_like_reference(outcome, str(missing))


def test_passphrase_source_invalid(reference_for, pki_copy):
    outcome = run_case(reference_for, pki_copy, ["--passin=secret", "gen-crl"], fixture=EC_FIXTURE)

    assert_rejected_like_reference(outcome, "pass:", "env:", "file:")


@pytest.mark.parametrize("word", ["badreason", "KeyCompromise", "removeFromCRL", "x"])
def test_unknown_reason(reference_for, pki_copy, word):
    outcome = run_case(reference_for, pki_copy, ["revoke", "alice", word])

    assert_rejected_like_reference(outcome, f"'{word}'", "reason")


def test_revoke_extra_argument(reference_for, pki_copy):
    outcome = run_case(reference_for, pki_copy, ["revoke", "alice", "kc", "extra"])

    assert_rejected_like_reference(outcome, "'extra'")


def test_revoke_missing_name(reference_for, pki_copy):
    outcome = run_case(reference_for, pki_copy, ["revoke"])

    assert_rejected_like_reference(outcome, "name")


@pytest.mark.parametrize("command", ["gen-crl", "update-db"])
def test_extra_argument_rejected(reference_for, pki_copy, command):
    # The real 3.2.7 ignores extra arguments here and runs the command, but
    # easyrsa_py rejects them.
    outcome = run_case(reference_for, pki_copy, [command, "extra"])

    assert outcome.ref_code == 0
    assert outcome.py_code == 1
    assert outcome.py_unchanged
    assert "'extra'" in outcome.py_message


@pytest.mark.parametrize("name", ["..", ".", "", "/etc/passwd", "issued/alice", "alice/"])
def test_path_like_name(reference_for, pki_copy, name):
    outcome = run_case(reference_for, pki_copy, ["revoke", name])

    assert_rejected_like_reference(outcome, repr(name), "name")


@pytest.mark.parametrize("name", ["./alice", "../issued/alice"])
def test_path_like_name_resolving_to_cert(reference_for, pki_copy, name):
    # The real 3.2.7 joins these names into paths that reach issued/alice.crt
    # and revokes it. easyrsa_py rejects any name with a '/'.
    outcome = run_case(reference_for, pki_copy, ["revoke", name])

    assert outcome.ref_code == 0
    assert outcome.py_code == 1
    assert outcome.py_unchanged
    assert repr(name) in outcome.py_message


def test_unknown_name(reference_for, pki_copy):
    outcome = run_case(reference_for, pki_copy, ["revoke", "nobody"])

    assert_rejected_like_reference(outcome, str(outcome.py_pki / "issued" / "nobody.crt"))


@pytest.mark.parametrize("folder, suffix, label", [
    ("certs_by_serial", "crt", "certificate"),
    ("private_by_serial", "key", "private key"),
    ("reqs_by_serial", "req", "request"),
])
def test_conflicting_revoked_file(reference_for, pki_copy, folder, suffix, label):
    def plant(pki: Path) -> None:
        (pki / "revoked" / folder / f"{ALICE_SERIAL}.{suffix}").write_text("in the way\n")

    outcome = run_case(reference_for, pki_copy, ["revoke", "alice"], prepare=plant)

    conflicting = outcome.py_pki / "revoked" / folder / f"{ALICE_SERIAL}.{suffix}"
    assert_rejected_like_reference(outcome, str(conflicting), label, "already exists")


def bob_serial(pki: Path) -> str:
    return [row[3] for row in read_index(pki) if row[5] == "/CN=bob"][0]


def restore_revoked_bob(pki: Path) -> None:
    """Put bob's revoked certificate back in issued/, as a careless restore would."""
    serial = bob_serial(pki)
    shutil.copy(pki / "revoked" / "certs_by_serial" / f"{serial}.crt", pki / "issued" / "bob.crt")


def test_serial_already_revoked(reference_for, pki_copy):
    outcome = run_case(reference_for, pki_copy, ["revoke", "bob"], prepare=restore_revoked_bob)

    serial = bob_serial(outcome.py_pki)
    assert serial_of(outcome.py_pki / "issued" / "bob.crt") == serial
    assert_rejected_like_reference(outcome, serial, "already exists")


def test_revoked_name_revoked_again(reference_for, pki_copy):
    outcome = run_case(reference_for, pki_copy, ["revoke", "bob"])

    assert_rejected_like_reference(outcome, str(outcome.py_pki / "issued" / "bob.crt"))


def test_revoke_ambiguous_name_interactive(reference_for, pki_copy):
    # compat.md: without --batch, revoke stops when a renewed certificate of
    # the same name exists and names the specific revoke commands.
    ref_pki, py_pki = pki_copy(FIXTURE), pki_copy(FIXTURE)
    ref_before, py_before = pki_state(ref_pki), pki_state(py_pki)

    ref = reference_for("3.2.7").run(ref_pki, "revoke", "carol", batch=False, input="yes\n", check=False)  # type: ignore[attr-defined]
    py = run_product(py_pki, "revoke", "carol", batch=False, input="yes\n")

    assert py.returncode == ref.returncode == 1
    assert pki_state(ref_pki) == ref_before
    assert pki_state(py_pki) == py_before
    assert str(py_pki / "renewed" / "issued" / "carol.crt") in py.stderr
    assert "revoke-renewed" in py.stderr
