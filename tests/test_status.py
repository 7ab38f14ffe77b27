"""show-expire, show-revoke and show-renew, compared with the real easy-rsa."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime

import pytest
from pkitools import pki_state, read_index, run_product

FIXTURES_32 = ("v3.2.2-ec", "v3.2.7-ed25519", "v3.2.7-rsa")
COMMANDS = (
    ("show-expire",),
    ("--days=1000", "show-expire"),
    ("show-revoke",),
    ("show-renew",),
)
NAMED_COMMANDS = (("show-revoke", "bob"), ("--days=1000", "show-expire", "server"))
# easy-rsa 3.1.0 cannot run on a 3.2 PKI, which has no openssl-easyrsa.cnf,
# and prints only "Coming soon.." when given a NAME.
CASES = [
    (fixture, version, args)
    for fixture in FIXTURES_32
    for version in ("3.2.2", "3.2.7")
    for args in COMMANDS + NAMED_COMMANDS
]
CASES += [
    ("v3.1.0-rsa", version, args)
    for version in ("3.2.2", "3.2.7")
    for args in COMMANDS + NAMED_COMMANDS
]
CASES += [("v3.1.0-rsa", "3.1.0", args) for args in COMMANDS]
REFERENCE_LINE = re.compile(
    r"^(?P<rewind>\*\*\* )?(?P<status>[VER]) \| Serial: (?P<serial>\S+) \| "
    r"(?P<middle>.*) \| CN: (?P<name>.*)$"
)
REFERENCE_DATE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)Z")


def reference_entries(output: str) -> list[dict[str, str | bool | None]]:
    """Parse easy-rsa's report lines into the fields easyrsa_py's JSON has."""
    entries = []
    for line in output.splitlines():
        match = REFERENCE_LINE.match(line)
        if match is None:
            continue
        reason = re.search(r"Reason: ([^|]+?) \|", line + " |")
        entries.append(
            {
                "name": match["name"],
                "serial": match["serial"],
                "status": match["status"],
                "reason": reason[1] if reason else None,
                "needs_rewind": bool(match["rewind"]),
                "date": _reference_date(match["middle"]),
            }
        )
    return entries


def _reference_date(text: str) -> str | None:
    match = REFERENCE_DATE.search(text)
    if match:
        return match[1].replace(" ", "T") + "Z"
    renewed = re.search(r"Expires: (\w{3} +\d+ \d\d:\d\d:\d\d \d{4}) GMT", text)
    if renewed:
        parsed = datetime.strptime(" ".join(renewed[1].split()), "%b %d %H:%M:%S %Y")
        return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def product_entries(pki, *args):
    result = run_product(pki, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def comparable(entries, with_dates):
    rows = []
    for entry in entries:
        if entry.get("ca"):
            continue
        date = entry.get("date", entry.get("revoked") or entry.get("expires"))
        reason = entry["reason"]
        rows.append(
            (
                entry["name"],
                entry["serial"],
                entry["status"],
                None if reason in (None, "None given") else reason,
                entry["needs_rewind"],
                date if with_dates else None,
            )
        )
    return sorted(rows)


def names_with_one_row(pki):
    names = [row[5].partition("/CN=")[2] for row in read_index(pki)]
    return {name for name in names if names.count(name) == 1}


@pytest.mark.reference
@pytest.mark.parametrize(
    "fixture,version,args", CASES, ids=[f"{f}-{v}-{' '.join(a)}" for f, v, a in CASES]
)
def test_lists_same_as_reference(pki_copy, reference_for, fixture, version, args):
    pki = pki_copy(fixture)
    reference_args = args
    env = None
    if version == "3.1.0" and "show-expire" in args:
        # easy-rsa 3.1.0 ignores --days here and uses EASYRSA_CERT_RENEW (default 30).
        reference_args = tuple(arg for arg in args if not arg.startswith("--days"))
        env = {"EASYRSA_CERT_RENEW": "1000" if "--days=1000" in args else "30"}
    product_args = (
        args if version != "3.1.0" or "--days=1000" in args else ("--days=30", *args)
    )

    reference = reference_for(version).run(pki, *reference_args, env=env, check=False)
    ours = product_entries(pki, *product_args)

    assert reference.returncode == 0, reference.stdout + reference.stderr
    expected = reference_entries(reference.stdout)
    # Only 3.2.7 prints every date as ISO 8601. 3.2.2 prints an empty
    # revocation date, and 3.1.0 prints it in the local date format.
    with_dates = version == "3.2.7" or "show-renew" in args
    if "show-expire" in args:
        # easy-rsa dates every row of a name by issued/NAME.crt, so the old
        # row of a renewal gets the new certificate's date (compat.md).
        single = names_with_one_row(pki)
        expected = [
            entry for entry in expected if entry["name"] in single or not with_dates
        ]
        ours = [entry for entry in ours if entry["name"] in single or not with_dates]
    assert comparable(ours, with_dates) == comparable(expected, with_dates)


@pytest.mark.reference
@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
def test_renew_marks_certs_by_serial(pki_copy, reference_for, version):
    pki = pki_copy("v3.2.7-rsa")
    serial = next(row[3] for row in read_index(pki) if row[5] == "/CN=carol")
    by_serial = pki / "renewed" / "certs_by_serial"
    by_serial.mkdir(exist_ok=True)
    shutil.move(pki / "renewed" / "issued" / "carol.crt", by_serial / f"{serial}.crt")

    reference = reference_for(version).run(pki, "show-renew", check=False)
    ours = product_entries(pki, "show-renew")

    assert comparable(ours, True) == comparable(
        reference_entries(reference.stdout), True
    )
    assert ours[0]["needs_rewind"] is True


def test_renew_text_marks_rewind(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    serial = next(row[3] for row in read_index(pki) if row[5] == "/CN=carol")
    by_serial = pki / "renewed" / "certs_by_serial"
    by_serial.mkdir(exist_ok=True)
    shutil.move(pki / "renewed" / "issued" / "carol.crt", by_serial / f"{serial}.crt")

    result = run_product(pki, "show-renew")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"*** V | Serial: {serial} | Expires: ")


def test_json_revoke_complete(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    row = next(row for row in read_index(pki) if row[0] == "R")
    revoked_at = datetime.strptime(row[2].partition(",")[0], "%y%m%d%H%M%SZ")

    entries = product_entries(pki, "show-revoke")

    assert entries == [
        {
            "name": "bob",
            "serial": row[3],
            "status": "R",
            "expires": datetime.strptime(row[1], "%y%m%d%H%M%SZ").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "revoked": revoked_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "reason": "keyCompromise",
            "needs_rewind": False,
            "ca": False,
        }
    ]


def test_json_expire_dates_iso(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    entries = product_entries(pki, "--days=1000", "show-expire")

    assert len(entries) == 5
    for entry in entries:
        assert entry["revoked"] is None
        parsed = datetime.fromisoformat(entry["expires"])
        assert parsed.tzinfo == UTC


def test_json_empty_list(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")

    assert product_entries(pki, "show-renew") == []


def test_json_stdout_only(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, "show-revoke", "--json")

    assert json.loads(result.stdout)[0]["name"] == "bob"
    assert result.stderr == ""


def test_days_zero_lists_expired(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    entries = product_entries(pki, "--days=0", "show-expire")

    assert [entry["name"] for entry in entries] == ["dave"]


def test_days_window_default_90(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    assert product_entries(pki, "show-expire") == product_entries(
        pki, "--days=90", "show-expire"
    )


def test_days_window_from_vars(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    entries = product_entries(pki, "show-expire")
    widened = run_product(
        pki, "show-expire", "--json", env={"EASYRSA_PRE_EXPIRY_WINDOW": "1000"}
    )

    assert len(entries) == 1
    assert len(json.loads(widened.stdout)) == 5


def test_days_window_includes_ca(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    entries = product_entries(pki, "--days=40000", "show-expire")

    assert entries[-1]["ca"] is True
    assert entries[-1]["expires"].startswith("2123-")
    assert [entry for entry in entries if entry["ca"]] == [entries[-1]]


def test_expire_skips_missing_issued(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    (pki / "issued" / "alice.crt").unlink()

    entries = product_entries(pki, "--days=1000", "show-expire")

    assert "alice" not in [entry["name"] for entry in entries]


def test_name_filter(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    entries = product_entries(pki, "--days=1000", "show-expire", "carol")

    assert {entry["name"] for entry in entries} == {"carol"}
    assert len(entries) == 2


def test_unknown_name_warns(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, "show-revoke", "nobody")

    assert result.returncode == 0
    assert result.stdout == ""
    assert "No certificate named 'nobody'" in result.stderr


def test_text_revoke_line(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    serial = next(row[3] for row in read_index(pki) if row[0] == "R")

    result = run_product(pki, "show-revoke")

    assert result.stdout.startswith(f"R | Serial: {serial} | Revoked: 20")
    assert result.stdout.endswith(" | Reason: keyCompromise | CN: bob\n")
    assert "Revoked certificates:" in result.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ("show-expire", "--frobnicate"),
            "Unknown option '--frobnicate' for 'show-expire'",
        ),
        (("show-revoke", "alice", "bob"), "Unexpected argument 'bob'"),
        (("show-renew", ""), "Empty certificate name"),
        (("show-expire", "--days=5"), "Unknown option '--days=5'"),
        (("--days=abc", "show-expire"), "--days"),
        (("--days=0", "show-revoke"), "Invalid --days=0"),
    ],
)
def test_bad_arguments(pki_copy, args, message):
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)

    result = run_product(pki, *args)

    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""
    assert pki_state(pki) == before


def test_missing_index(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    (pki / "index.txt").unlink()

    result = run_product(pki, "show-revoke")

    assert result.returncode == 1
    assert "index.txt" in result.stderr


def test_reads_leave_pki_unchanged(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)

    for command in ("show-expire", "show-revoke", "show-renew"):
        assert run_product(pki, command).returncode == 0

    assert pki_state(pki) == before


@pytest.mark.reference
def test_expire_missing_issued_vs_310(pki_copy, reference_for):
    pki = pki_copy("v3.1.0-rsa")
    (pki / "issued" / "alice.crt").unlink()

    reference = reference_for("3.1.0").run(
        pki, "show-expire", env={"EASYRSA_CERT_RENEW": "1000"}, check=False
    )
    ours = product_entries(pki, "--days=1000", "show-expire")

    # compat.md: 3.1.0 dates a row without issued/NAME.crt from index.txt.
    assert "alice" in [entry["name"] for entry in reference_entries(reference.stdout)]
    assert "alice" not in [entry["name"] for entry in ours]


def test_text_ca_line(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, "--days=40000", "show-expire")

    last_line = result.stdout.splitlines()[-1]
    assert last_line.startswith("CA | Serial: ")
    assert last_line.endswith(" | File: ca.crt")
    assert " | Expires: 2123-" in last_line
