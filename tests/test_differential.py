"""Differential tests: the real easy-rsa and easyrsa_py run the same commands
on two copies of one PKI fixture, and the results must match.

"Match" is compat.md's "same": the same files with the same modes, the same
index.txt rows, the same .old, .attr and serial files, and CRLs with the same
issuer, entries, reasons, extensions, lifetime and signature algorithm that
`openssl crl` verifies. Revocation dates may differ by the seconds between
the two runs, so each is compared as a marker and checked to be recent. Each deliberate difference that compat.md lists (D1 to D9) is
asserted explicitly where it shows up, never excluded silently.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pkitools import (
    SAFESSL_CNF,
    append_index_rows,
    assert_recent,
    crl_der_matches_pem,
    crl_summary,
    normalized_rows,
    openssl_crl_verify,
    parse_index_time,
    read_index,
    revocation_dates,
    run_product,
    serial_of,
    tree_contents,
    tree_modes,
)

# The fixture each reference version made, so each version runs on its own
# layout.
VERSION_FIXTURES = {"3.1.0": "v3.1.0-rsa", "3.2.2": "v3.2.2-ec", "3.2.7": "v3.2.7-rsa"}
EC_PASSPHRASE = "fixture-ec-ca-pass"
FIXTURE_PASSPHRASES = {"v3.2.2-ec": EC_PASSPHRASE}

# Files compared by meaning rather than by bytes.
INDEX_FILES = ("index.txt", "index.txt.old")
CRL_FILES = ("crl.pem", "crl.der")

FULL_REASONS = (
    "unspecified",
    "keyCompromise",
    "CACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
)
# easy-rsa 3.2's two-letter codes and name prefixes, with the reason each
# one stands for.
ABBREVIATIONS = {
    "us": "unspecified",
    "uns": "unspecified",
    "kc": "keyCompromise",
    "key": "keyCompromise",
    "keyComp": "keyCompromise",
    "cc": "CACompromise",
    "ca": "CACompromise",
    "CA": "CACompromise",
    "Ca-anything": "CACompromise",
    "ac": "affiliationChanged",
    "aff": "affiliationChanged",
    "ss": "superseded",
    "sup": "superseded",
    "co": "cessationOfOperation",
    "ces": "cessationOfOperation",
    "ch": "certificateHold",
    "cer": "certificateHold",
}

# Every revocation-field shape `openssl ca` writes, as (label, field).
HAND_EDITED_FIELDS = (
    ("date only", "261101000000Z"),
    *((reason, f"261101000000Z,{reason}") for reason in FULL_REASONS),
    ("removeFromCRL", "261101000000Z,removeFromCRL"),
    ("keyTime", "261101000000Z,keyTime,20261001000000Z"),
    ("CAkeyTime", "261101000000Z,CAkeyTime,20261002000000Z"),
    ("hold reject", "261101000000Z,holdInstruction,holdInstructionReject"),
    ("hold call issuer", "261101000000Z,holdInstruction,holdInstructionCallIssuer"),
    ("hold none", "261101000000Z,holdInstruction,holdInstructionNone"),
    ("hold dotted OID", "261101000000Z,holdInstruction,1.2.840.10040.2.3"),
    ("reason in capitals", "261101000000Z,KEYCOMPROMISE"),
)


@dataclass
class Pair:
    """Two copies of one fixture after the same commands ran on each."""

    version: str
    fixture: str
    ref_pki: Path
    py_pki: Path
    original_index: list[list[str]]
    ref_results: list[subprocess.CompletedProcess[str]] = field(default_factory=list)
    py_results: list[subprocess.CompletedProcess[str]] = field(default_factory=list)


def passin_args(fixture: str) -> list[str]:
    passphrase = FIXTURE_PASSPHRASES.get(fixture)
    return [f"--passin=pass:{passphrase}"] if passphrase else []


def run_both(
    reference: object,
    pki_copy: Callable[[str], Path],
    fixture: str,
    *steps: Sequence[str],
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    prepare: Callable[[Path], None] | None = None,
    check: bool = True,
) -> Pair:
    """Run each step with the real script on one copy and easyrsa_py on another."""
    ref_pki, py_pki = pki_copy(fixture), pki_copy(fixture)
    if prepare is not None:
        prepare(ref_pki)
        prepare(py_pki)
    pair = Pair(reference.version, fixture, ref_pki, py_pki, read_index(ref_pki))  # type: ignore[attr-defined]
    for step in steps:
        ref = reference.run(ref_pki, *step, env=env, input=input, check=False)  # type: ignore[attr-defined]
        py = run_product(py_pki, *step, env=env, input=input)
        pair.ref_results.append(ref)
        pair.py_results.append(py)
        if check:
            assert ref.returncode == 0, f"easy-rsa {pair.version} {step}: {ref.stdout}{ref.stderr}"
            assert py.returncode == 0, f"easyrsa_py {step}: {py.stderr}"
    return pair


def tree_exclusions(pair: Pair) -> tuple[str, ...]:
    # 3.1.0 rewrites safessl-easyrsa.cnf with the PKI's own path each run.
    return (SAFESSL_CNF,) if pair.version == "3.1.0" else ()


def assert_same_modes(
    pair: Pair, differences: Mapping[str, tuple[int | None, int | None]] | None = None
) -> None:
    """Compare file sets and modes.

    `differences` maps each path that compat.md allows to differ to its
    expected (easy-rsa mode, easyrsa_py mode), None meaning absent.
    """
    ref_modes = tree_modes(pair.ref_pki, tree_exclusions(pair))
    py_modes = tree_modes(pair.py_pki, tree_exclusions(pair))
    for path, (ref_mode, py_mode) in (differences or {}).items():
        assert ref_modes.pop(path, None) == ref_mode, f"easy-rsa {pair.version}: {path}"
        assert py_modes.pop(path, None) == py_mode, f"easyrsa_py: {path}"
    only_ref = sorted(set(ref_modes) - set(py_modes))
    only_py = sorted(set(py_modes) - set(ref_modes))
    assert only_ref == [], f"only easy-rsa {pair.version} has {only_ref}"
    assert only_py == [], f"only easyrsa_py has {only_py} (easy-rsa {pair.version})"
    changed = {path: (oct(ref_modes[path]), oct(py_modes[path]))
               for path in ref_modes if ref_modes[path] != py_modes[path]}
    assert changed == {}, "modes differ as (easy-rsa, easyrsa_py)"


def assert_same_contents(pair: Pair, skip: Sequence[str] = ()) -> None:
    """Compare the bytes of every file both trees have, except index and CRL files."""
    ref_files = tree_contents(pair.ref_pki, tree_exclusions(pair))
    py_files = tree_contents(pair.py_pki, tree_exclusions(pair))
    ignored = {*INDEX_FILES, *CRL_FILES, *skip}
    differing = sorted(
        path for path in set(ref_files) & set(py_files)
        if path not in ignored and ref_files[path] != py_files[path]
    )
    assert differing == [], "these files differ in content"


def assert_same_index(pair: Pair) -> None:
    """Compare index.txt and index.txt.old with revocation dates normalised."""
    for name in INDEX_FILES:
        ref_exists = (pair.ref_pki / name).exists()
        assert ref_exists == (pair.py_pki / name).exists(), name
        if not ref_exists:
            continue
        ref_rows, py_rows = read_index(pair.ref_pki, name), read_index(pair.py_pki, name)
        assert normalized_rows(py_rows) == normalized_rows(ref_rows), name
    assert_new_revocations_recent(pair.original_index, read_index(pair.ref_pki))
    assert_new_revocations_recent(pair.original_index, read_index(pair.py_pki))


def assert_new_revocations_recent(before: list[list[str]], after: list[list[str]]) -> None:
    old_dates = revocation_dates(before)
    for serial, date in revocation_dates(after).items():
        if old_dates.get(serial) != date:
            assert_recent(date)


def assert_same_crl(pair: Pair) -> None:
    """Compare both crl.pem files after parsing, and check each verifies."""
    ref_crl = crl_summary(pair.ref_pki / "crl.pem")
    py_crl = crl_summary(pair.py_pki / "crl.pem")
    assert py_crl.issuer == ref_crl.issuer
    assert py_crl.version == ref_crl.version == 1
    assert py_crl.signature_algorithm == ref_crl.signature_algorithm
    assert py_crl.lifetime == ref_crl.lifetime
    assert py_crl.extensions == ref_crl.extensions
    assert py_crl.entries == ref_crl.entries
    assert_recent(py_crl.last_update)
    for pki, summary in ((pair.ref_pki, ref_crl), (pair.py_pki, py_crl)):
        assert_entry_dates_match_index(pki, summary.revocation_dates)
        verified = openssl_crl_verify(pki)
        assert "verify OK" in verified.stderr, f"{pki}: {verified.stderr}"
    assert crl_der_matches_pem(pair.py_pki)


def assert_entry_dates_match_index(pki: Path, dates: Mapping[int, object]) -> None:
    index_dates = {int(serial, 16): parse_index_time(text)
                   for serial, text in revocation_dates(read_index(pki)).items()}
    revoked = {int(row[3], 16) for row in read_index(pki) if row[0] == "R"}
    assert set(dates) == revoked, f"{pki}: CRL entries are not the R rows"
    for serial, when in dates.items():
        assert when == index_dates[serial], f"{pki}: serial {serial:X}"


def assert_same_outcome(
    pair: Pair, differences: Mapping[str, tuple[int | None, int | None]] | None = None
) -> None:
    assert_same_modes(pair, differences)
    assert_same_contents(pair, skip=tuple(differences or {}))
    assert_same_index(pair)


def version_fixture(reference: object) -> str:
    return VERSION_FIXTURES[reference.version]  # type: ignore[attr-defined]


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- revoke ------------------------------------------------------------------


def revoke_differences(pair: Pair, name: str) -> dict[str, tuple[int | None, int | None]]:
    """Return the paths compat.md lets differ after `revoke NAME`, per version.

    D11: easy-rsa 3.1.0 deletes certs_by_serial/SERIAL.pem; easyrsa_py keeps
    it. D10: easy-rsa 3.2.2 leaves the key and request in place; easyrsa_py
    moves them to revoked/*_by_serial/ as 3.2.7 does.
    """
    serial = [row for row in read_index(pair.py_pki) if row[5] == f"/CN={name}"][0][3]
    if pair.version == "3.1.0":
        return {f"certs_by_serial/{serial}.pem": (None, 0o600)}
    if pair.version == "3.2.2":
        return {
            f"private/{name}.key": (0o600, None),
            f"reqs/{name}.req": (0o600, None),
            f"revoked/private_by_serial/{serial}.key": (None, 0o600),
            f"revoked/reqs_by_serial/{serial}.req": (None, 0o600),
        }
    return {}


def test_revoke_without_reason(reference, pki_copy):
    fixture = version_fixture(reference)
    pair = run_both(reference, pki_copy, fixture,
                    [*passin_args(fixture), "revoke", "alice"])

    assert_same_outcome(pair, revoke_differences(pair, "alice"))
    alice = [row for row in read_index(pair.py_pki) if row[5] == "/CN=alice"][0]
    assert alice[0] == "R"
    assert "," not in alice[2]


@pytest.mark.parametrize("reason", FULL_REASONS)
def test_revoke_reason_word(reference, pki_copy, reason):
    fixture = version_fixture(reference)
    pair = run_both(reference, pki_copy, fixture,
                    [*passin_args(fixture), "revoke", "alice", reason],
                    [*passin_args(fixture), "gen-crl"])

    assert_same_index(pair)
    assert_same_crl(pair)
    alice = [row for row in read_index(pair.py_pki) if row[5] == "/CN=alice"][0]
    assert alice[2].endswith("," + reason)


ABBREVIATION_CASES = [
    *(("3.2.7", word) for word in sorted(ABBREVIATIONS)),
    # 3.2.2 parses reasons with the same patterns; a sample confirms it.
    *(("3.2.2", word) for word in ("kc", "Ca-anything", "cer")),
]


@pytest.mark.parametrize("version, word", ABBREVIATION_CASES)
def test_revoke_reason_abbreviation(reference_for, pki_copy, version, word):
    reference = reference_for(version)
    fixture = VERSION_FIXTURES[version]
    pair = run_both(reference, pki_copy, fixture,
                    [*passin_args(fixture), "revoke", "alice", word])

    assert_same_index(pair)
    alice = [row for row in read_index(pair.py_pki) if row[5] == "/CN=alice"][0]
    assert alice[2].endswith("," + ABBREVIATIONS[word])


def test_revoke_abbreviation_beyond_310(reference_for, pki_copy):
    # compat.md: 3.1.0 accepts only full reason names, easyrsa_py also 3.2's
    # abbreviations.
    pair = run_both(reference_for("3.1.0"), pki_copy, "v3.1.0-rsa",
                    ["revoke", "alice", "kc"], check=False)

    assert pair.ref_results[0].returncode == 1
    assert pair.py_results[0].returncode == 0
    alice = [row for row in read_index(pair.py_pki) if row[5] == "/CN=alice"][0]
    assert alice[2].endswith(",keyCompromise")


@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
def test_revoke_issued(reference_for, pki_copy, version):
    fixture = VERSION_FIXTURES[version]
    pair = run_both(reference_for(version), pki_copy, fixture,
                    [*passin_args(fixture), "revoke-issued", "alice", "superseded"])

    assert_same_outcome(pair, revoke_differences(pair, "alice"))


@pytest.mark.parametrize("version, name", [("3.2.2", "dave"), ("3.2.7", "erin")])
def test_revoke_expired(reference_for, pki_copy, version, name):
    # No current certificate of this name exists, so both delete its
    # inline file (D2 applies only when one does).
    fixture = VERSION_FIXTURES[version]
    pair = run_both(reference_for(version), pki_copy, fixture,
                    [*passin_args(fixture), "revoke-expired", name, "cessationOfOperation"],
                    [*passin_args(fixture), "gen-crl"])

    assert_same_outcome(pair)
    assert_same_crl(pair)
    assert not (pair.py_pki / "expired" / f"{name}.crt").exists()


def test_revoke_expired_cert_still_issued(reference_for, pki_copy):
    pair = run_both(reference_for("3.2.7"), pki_copy, "v3.2.7-rsa", ["revoke", "dave"])

    assert_same_outcome(pair)


def test_revoke_renewed_310(reference_for, pki_copy):
    # 3.1.0's own revoke-renewed moves the old key and request too (D3).
    pair = run_both(reference_for("3.1.0"), pki_copy, "v3.1.0-rsa",
                    ["revoke-renewed", "server", "superseded"])

    assert_same_outcome(pair)
    assert not (pair.py_pki / "renewed" / "private" / "server.key").exists()


@pytest.mark.parametrize("version, name", [("3.2.2", "server"), ("3.2.7", "carol")])
def test_revoke_renewed_keeps_current_exports(reference_for, pki_copy, version, name):
    # D2: the current issued/NAME.crt exists, so easyrsa_py keeps its inline
    # file, which easy-rsa 3.2.x deletes.
    fixture = VERSION_FIXTURES[version]
    inline = f"inline/private/{name}.inline"
    pair = run_both(reference_for(version), pki_copy, fixture,
                    [*passin_args(fixture), "revoke-renewed", name, "superseded"],
                    [*passin_args(fixture), "gen-crl"])

    assert_same_outcome(pair, {inline: (None, 0o600)})
    assert_same_crl(pair)
    assert (pair.py_pki / "issued" / f"{name}.crt").exists()


def test_revoke_renewed_310_layout_with_327(reference_for, pki_copy):
    # D3: on a 3.1.0 PKI, 3.2.7 leaves the old key and request orphaned in
    # renewed/; easyrsa_py moves them with the certificate.
    serial = "F1246060CACB9AE111BF3ECF3630D7E6"
    pair = run_both(reference_for("3.2.7"), pki_copy, "v3.1.0-rsa",
                    ["revoke-renewed", "server"])
    assert serial_of(pair.ref_pki / "revoked" / "certs_by_serial" / f"{serial}.crt") == serial

    assert_same_outcome(pair, {
        "renewed/private/server.key": (0o600, None),
        "renewed/reqs/server.req": (0o600, None),
        f"revoked/private_by_serial/{serial}.key": (None, 0o600),
        f"revoked/reqs_by_serial/{serial}.req": (None, 0o600),
    })


def test_revoke_finishes_interrupted_revocation(reference_for, pki_copy):
    # D7: the row is already R but the certificate is still in issued/.
    def mark_alice_revoked(pki: Path) -> None:
        rows = read_index(pki)
        for row in rows:
            if row[5] == "/CN=alice":
                row[0], row[2] = "R", "261201000000Z,superseded"
        (pki / "index.txt").write_text("".join("\t".join(row) + "\n" for row in rows))

    pair = run_both(reference_for("3.2.7"), pki_copy, "v3.2.7-rsa",
                    ["revoke", "alice"], prepare=mark_alice_revoked, check=False)

    assert pair.ref_results[0].returncode == 1
    assert (pair.ref_pki / "issued" / "alice.crt").exists()
    assert pair.py_results[0].returncode == 0
    assert not (pair.py_pki / "issued" / "alice.crt").exists()
    serial = "7C0895ABACCC34C8C33A3BF77B85058C"
    assert (pair.py_pki / "revoked" / "certs_by_serial" / f"{serial}.crt").exists()
    assert read_index(pair.py_pki) == read_index(pair.ref_pki)


def test_revoke_streams(reference_for, pki_copy):
    # D1: easy-rsa prints notices on stdout, easyrsa_py on stderr.
    pair = run_both(reference_for("3.2.7"), pki_copy, "v3.2.7-rsa", ["revoke", "alice"])

    assert "gen-crl" in pair.ref_results[0].stdout
    assert pair.py_results[0].stdout == ""
    assert "gen-crl" in pair.py_results[0].stderr


# --- gen-crl -----------------------------------------------------------------


def test_gen_crl(reference, pki_copy):
    fixture = version_fixture(reference)
    pair = run_both(reference, pki_copy, fixture, [*passin_args(fixture), "gen-crl"])

    if reference.version == "3.1.0":
        # compat.md: easyrsa_py also writes crl.der, which 3.1.0 does not.
        assert_same_outcome(pair, {"crl.der": (None, 0o600)})
    else:
        assert_same_outcome(pair)
        assert crl_der_matches_pem(pair.ref_pki)
    assert_same_crl(pair)


@pytest.mark.parametrize("days", ["1", "30", "3650"])
def test_gen_crl_days_option(reference, pki_copy, days):
    fixture = version_fixture(reference)
    pair = run_both(reference, pki_copy, fixture,
                    [*passin_args(fixture), f"--days={days}", "gen-crl"])

    assert_same_crl(pair)
    assert crl_summary(pair.py_pki / "crl.pem").lifetime.days == int(days)


def test_gen_crl_days_variable(reference, pki_copy):
    fixture = version_fixture(reference)
    pair = run_both(reference, pki_copy, fixture, [*passin_args(fixture), "gen-crl"],
                    env={"EASYRSA_CRL_DAYS": "45"})

    assert_same_crl(pair)
    assert crl_summary(pair.py_pki / "crl.pem").lifetime.days == 45


DIGEST_OIDS = {
    ("rsa", "sha256"): "1.2.840.113549.1.1.11",
    ("rsa", "sha384"): "1.2.840.113549.1.1.12",
    ("rsa", "sha512"): "1.2.840.113549.1.1.13",
    ("ec", "sha256"): "1.2.840.10045.4.3.2",
    ("ec", "sha384"): "1.2.840.10045.4.3.3",
    ("ec", "sha512"): "1.2.840.10045.4.3.4",
}


@pytest.mark.parametrize("digest", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("version, fixture, key", [
    ("3.1.0", "v3.1.0-rsa", "rsa"),
    ("3.2.7", "v3.2.7-rsa", "rsa"),
    ("3.2.2", "v3.2.2-ec", "ec"),
    ("3.2.7", "v3.2.2-ec", "ec"),
])
def test_gen_crl_digest_option(reference_for, pki_copy, version, fixture, key, digest):
    pair = run_both(reference_for(version), pki_copy, fixture,
                    [*passin_args(fixture), f"--digest={digest}", "gen-crl"])

    assert_same_crl(pair)
    assert crl_summary(pair.py_pki / "crl.pem").signature_algorithm == DIGEST_OIDS[key, digest]


@pytest.mark.parametrize("version, fixture", [("3.1.0", "v3.1.0-rsa"), ("3.2.2", "v3.2.2-ec")])
def test_gen_crl_digest_variable(reference_for, pki_copy, version, fixture):
    pair = run_both(reference_for(version), pki_copy, fixture,
                    [*passin_args(fixture), "gen-crl"], env={"EASYRSA_DIGEST": "sha512"})

    assert_same_crl(pair)
    key = "ec" if "ec" in fixture else "rsa"
    assert crl_summary(pair.py_pki / "crl.pem").signature_algorithm == DIGEST_OIDS[key, "sha512"]


@pytest.mark.parametrize("digest", ["sha256", "sha512"])
def test_gen_crl_ed25519_ignores_digest(reference_for, pki_copy, digest):
    pair = run_both(reference_for("3.2.7"), pki_copy, "v3.2.7-ed25519",
                    [f"--digest={digest}", "gen-crl"])

    assert_same_outcome(pair)
    assert_same_crl(pair)
    assert crl_summary(pair.py_pki / "crl.pem").signature_algorithm == "1.3.101.112"


def passphrase_sources(tmp_path: Path) -> dict[str, tuple[str, dict[str, str] | None, str | None]]:
    passphrase_file = tmp_path / "ca-passphrase.txt"
    passphrase_file.write_text(EC_PASSPHRASE + "\n")
    return {
        "pass": (f"pass:{EC_PASSPHRASE}", None, None),
        "env": ("env:FIXTURE_CA_PASS", {"FIXTURE_CA_PASS": EC_PASSPHRASE}, None),
        "file": (f"file:{passphrase_file}", None, None),
        "stdin": ("stdin", None, EC_PASSPHRASE + "\n"),
    }


@pytest.mark.parametrize("source", ["pass", "env", "file", "stdin"])
@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
def test_gen_crl_passin(reference_for, pki_copy, tmp_path, version, source):
    passin, env, stdin = passphrase_sources(tmp_path)[source]
    pair = run_both(reference_for(version), pki_copy, "v3.2.2-ec",
                    [f"--passin={passin}", "gen-crl"], env=env, input=stdin)

    assert_same_outcome(pair)
    assert_same_crl(pair)


def hand_edited_rows() -> list[list[str]]:
    return [
        ["R", "290101000000Z", revocation, f"{0x7A00 + number:04X}", "unknown",
         f"/CN=hand-edited {label}"]
        for number, (label, revocation) in enumerate(HAND_EDITED_FIELDS)
    ]


def test_gen_crl_hand_edited_rows(reference, pki_copy):
    fixture = version_fixture(reference)
    pair = run_both(reference, pki_copy, fixture, [*passin_args(fixture), "gen-crl"],
                    prepare=lambda pki: append_index_rows(pki, hand_edited_rows()))

    assert_same_crl(pair)
    entries = dict(crl_summary(pair.py_pki / "crl.pem").entries)
    assert all(0x7A00 + number in entries for number in range(len(HAND_EDITED_FIELDS)))


def test_gen_crl_date_after_2049(reference_for, pki_copy):
    # D4: OpenSSL 3.0's `ca -gencrl` rejects a 15-character revocation date.
    row = ["R", "20600101000000Z", "20500101000000Z,keyCompromise", "7B01", "unknown",
           "/CN=future"]
    pair = run_both(reference_for("3.2.7"), pki_copy, "v3.2.7-rsa", ["gen-crl"],
                    prepare=lambda pki: append_index_rows(pki, [row]), check=False)

    ref = pair.ref_results[0]
    assert ref.returncode == 1
    assert "20500101000000Z" in ref.stdout + ref.stderr
    assert pair.py_results[0].returncode == 0
    summary = crl_summary(pair.py_pki / "crl.pem")
    assert summary.revocation_dates[0x7B01].year == 2050
    # RFC 5280 section 5.1.2.6: dates from 2050 on are GeneralizedTime.
    assert b"\x18\x0f20500101000000Z" in (pair.py_pki / "crl.der").read_bytes()
    assert "verify OK" in openssl_crl_verify(pair.py_pki).stderr


def test_gen_crl_keeps_crl_pem_mode_310(reference_for, pki_copy):
    # D9: 3.1.0 moves a new 0600 file over crl.pem; easyrsa_py keeps 0644.
    pair = run_both(reference_for("3.1.0"), pki_copy, "v3.1.0-rsa", ["gen-crl"],
                    prepare=lambda pki: os.chmod(pki / "crl.pem", 0o644))

    assert file_mode(pair.ref_pki / "crl.pem") == 0o600
    assert file_mode(pair.py_pki / "crl.pem") == 0o644
    assert_same_outcome(pair, {"crl.pem": (0o600, 0o644), "crl.der": (None, 0o600)})


@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
def test_gen_crl_keeps_crl_pem_mode_32(reference_for, pki_copy, version):
    fixture = VERSION_FIXTURES[version]
    pair = run_both(reference_for(version), pki_copy, fixture,
                    [*passin_args(fixture), "gen-crl"],
                    prepare=lambda pki: os.chmod(pki / "crl.pem", 0o644))

    assert_same_outcome(pair)
    assert file_mode(pair.py_pki / "crl.pem") == 0o644


def test_gen_crl_after_revocations(reference, pki_copy):
    fixture = version_fixture(reference)
    passin = passin_args(fixture)
    pair = run_both(reference, pki_copy, fixture,
                    [*passin, "revoke", "alice", "keyCompromise"],
                    [*passin, "gen-crl"],
                    [*passin, "update-db"],
                    [*passin, "gen-crl"])

    assert_same_index(pair)
    assert_same_crl(pair)


# --- update-db ---------------------------------------------------------------


def test_update_db(reference, pki_copy):
    fixture = version_fixture(reference)
    pair = run_both(reference, pki_copy, fixture, [*passin_args(fixture), "update-db"])

    assert_same_outcome(pair)
    dave = [row for row in read_index(pair.py_pki) if row[5] == "/CN=dave"][0]
    assert dave[0] == "E"
    assert read_index(pair.py_pki, "index.txt.old") == pair.original_index


def test_update_db_nothing_expired(reference_for, pki_copy):
    pair = run_both(reference_for("3.2.7"), pki_copy, "v3.2.7-ed25519", ["update-db"])

    assert_same_outcome(pair)
    assert read_index(pair.py_pki) == pair.original_index
