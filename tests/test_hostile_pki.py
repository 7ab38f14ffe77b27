"""Hostile PKI contents given to the issuing commands.

Each case damages one file the commands read (cut short, garbage, empty),
swaps the CA key, expires the CA, plants symbolic links, or adds a huge
index.txt line. The command must stop with exit code 1 and an error that
names the file, and print no traceback. It must leave the PKI byte for
byte as it was. Input that is valid, such as a linked private/ folder,
must work.

Symbolic links: a write goes through a link whose target exists, as
`cp -p` and OpenSSL write, so a user who links private/ or crl.pem
elsewhere keeps that layout. A link whose target does not exist is
rejected, because following it would create a file (a new private key,
for example) wherever the link points, and the user would not know.
easy-rsa 3.2.7's build-*-full replaces such a link with a new file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from forked_cli import run_forked
from pkitools import pki_state, run_product
from test_hostile_issuing import expire_ca_certificate

from easyrsa_py import csr, exports, inline, issuing, keys, renewal, signing, verify  # noqa: F401 - loaded before fork

FIXTURE = "v3.2.7-ed25519"
ED25519 = ("--batch", "--use-algo=ed", "--curve=ed25519")
COMMANDS = {
    "build-client-full": [*ED25519, "build-client-full", "zed", "nopass"],
    "sign-req": ["--batch", "sign-req", "client", "zed"],
    "renew": ["--batch", "renew", "alice"],
    "export-p12": ["--batch", "export-p12", "alice", "nopass"],
    "set-pass": ["--batch", "--passout=pass:hostile-pass-1", "set-pass", "alice"],
    "expire": ["--batch", "expire", "alice"],
    "gen-crl": ["--batch", "gen-crl"],
    "show-crl": ["--batch", "show-crl"],
    "verify-cert": ["--batch", "verify-cert", "alice"],
    "inline": ["--batch", "inline", "alice"],
}
# Each file and the commands that read it. serial is missing on purpose:
# with random serials, the default, easy-rsa 3.2.7 overwrites it unread.
READERS = {
    "ca.crt": ["build-client-full", "sign-req", "renew", "export-p12", "verify-cert", "inline"],
    "private/ca.key": ["build-client-full", "sign-req", "renew", "gen-crl"],
    "issued/alice.crt": ["renew", "export-p12", "expire", "verify-cert", "inline"],
    "reqs/alice.req": ["renew"],
    "reqs/zed.req": ["sign-req"],
    "private/alice.key": ["set-pass", "export-p12", "inline"],
    "crl.pem": ["show-crl"],
    "index.txt.attr": ["build-client-full", "sign-req", "renew"],
}
DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: b"garbage \x00\xff here\n",
    "empty": lambda data: b"",
}
# OpenSSL reads an empty index.txt.attr as one with no settings.
VALID_WHEN_EMPTY = {"index.txt.attr"}


def damage_cases() -> list[tuple[str, str, str]]:
    return [
        (relative, damage, command)
        for relative, commands in READERS.items()
        for damage in DAMAGE
        for command in commands
        if not (damage == "empty" and relative in VALID_WHEN_EMPTY)
    ]


def prepared(pki_copy, fixture: str = FIXTURE) -> Path:
    """Copy the fixture and add reqs/zed.req, a copy of alice's request, for sign-req."""
    pki = pki_copy(fixture)
    shutil.copy(pki / "reqs" / "alice.req", pki / "reqs" / "zed.req")
    return pki


def assert_rejected(pki: Path, arguments: list[str], named: Path, *words: str) -> str:
    """Run the command and check that it fails cleanly, naming `named`; return stderr."""
    before = pki_state(pki)
    result = run_forked(pki, arguments)
    assert result.returncode == 1, result.stderr
    assert str(named) in result.stderr
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.stderr
    assert "child failed" not in result.stderr
    assert pki_state(pki) == before
    return result.stderr


@pytest.mark.parametrize(("relative", "damage", "command"), damage_cases())
def test_damaged_file_named(pki_copy, relative: str, damage: str, command: str) -> None:
    pki = prepared(pki_copy)
    if command == "build-client-full":
        (pki / "reqs" / "zed.req").unlink()
    path = pki / relative
    path.write_bytes(DAMAGE[damage](path.read_bytes()))

    stderr = assert_rejected(pki, COMMANDS[command], path)

    # Library text such as cryptography's FAQ link is no help to the user.
    assert "https://" not in stderr


def test_serial_garbage_without_random_serials(pki_copy) -> None:
    pki = pki_copy(FIXTURE)
    (pki / "serial").write_text("zz\n")
    before = pki_state(pki)

    result = run_product(pki, *COMMANDS["build-client-full"], env={"EASYRSA_RAND_SN": "no"})

    assert result.returncode == 1
    assert f"{pki / 'serial'}:1" in result.stderr
    assert "'zz'" in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize("command", ["build-client-full", "sign-req", "renew", "gen-crl"])
def test_foreign_ca_key_rejected(pki_copy, command: str) -> None:
    pki = prepared(pki_copy)
    if command == "build-client-full":
        (pki / "reqs" / "zed.req").unlink()
    rsa_key = pki_copy("v3.2.7-rsa") / "private" / "ca.key"
    shutil.copy(rsa_key, pki / "private" / "ca.key")

    assert_rejected(pki, COMMANDS[command], pki / "private" / "ca.key", "does not match")


@pytest.mark.parametrize("command", ["renew", "sign-req"])
def test_expired_ca_rejected(pki_copy, command: str) -> None:
    # The RSA fixture, because the helper signs with SHA-256.
    pki = prepared(pki_copy, "v3.2.7-rsa")
    expire_ca_certificate(pki)

    assert_rejected(pki, COMMANDS[command], pki / "ca.crt", "expired on 2021-01-01")


# --- symbolic links ----------------------------------------------------------------


LINK_CASES = [
    ("issued/zed.crt", "build-client-full"),
    ("private/zed.key", "build-client-full"),
    ("reqs/zed.req", "build-client-full"),
    ("issued/zed.crt", "sign-req"),
    ("private/alice.p12", "export-p12"),
]


@pytest.mark.parametrize(("relative", "command"), LINK_CASES)
def test_dangling_link_not_followed(pki_copy, tmp_path: Path, relative: str, command: str) -> None:
    pki = prepared(pki_copy)
    if command == "build-client-full":
        (pki / "reqs" / "zed.req").unlink()
    outside = tmp_path / "outside" / "planted"
    outside.parent.mkdir()
    (pki / relative).symlink_to(outside)

    assert_rejected(pki, COMMANDS[command], pki / relative)

    assert not outside.exists()
    assert list(outside.parent.iterdir()) == []


@pytest.mark.parametrize("relative", ["private/zed.key", "reqs/zed.req"])
def test_gen_req_dangling_link_not_followed(pki_copy, tmp_path: Path, relative: str) -> None:
    pki = pki_copy(FIXTURE)
    outside = tmp_path / "planted"
    (pki / relative).symlink_to(outside)

    assert_rejected(pki, [*ED25519, "gen-req", "zed", "nopass"], pki / relative)

    assert not outside.exists()


def test_linked_key_updated_in_place(pki_copy, tmp_path: Path) -> None:
    # set-pass replaces the file a key link points to, as `cp -p` would.
    pki = pki_copy(FIXTURE)
    moved = tmp_path / "alice.key"
    shutil.move(pki / "private" / "alice.key", moved)
    (pki / "private" / "alice.key").symlink_to(moved)

    result = run_forked(pki, COMMANDS["set-pass"])

    assert result.returncode == 0, result.stderr
    assert (pki / "private" / "alice.key").is_symlink()
    assert b"ENCRYPTED PRIVATE KEY" in moved.read_bytes()
    assert moved.stat().st_mode & 0o077 == 0


def test_linked_private_folder_used(pki_copy, tmp_path: Path) -> None:
    # A user who moves private/ to other storage and links it keeps that layout.
    pki = pki_copy(FIXTURE)
    storage = tmp_path / "private"
    shutil.move(pki / "private", storage)
    (pki / "private").symlink_to(storage)

    result = run_forked(pki, COMMANDS["build-client-full"])

    assert result.returncode == 0, result.stderr
    assert (storage / "zed.key").is_file()
    assert (pki / "private").is_symlink()


# --- size and code in the input -------------------------------------------------------


def test_huge_index_line_kept_by_issuing(pki_copy) -> None:
    pki = pki_copy(FIXTURE)
    index = pki / "index.txt"
    huge_row = b"V\t290308155129Z\t\t01\tunknown\t/CN=" + b"A" * 50_000_000 + b"\n"
    index.write_bytes(index.read_bytes() + huge_row)

    issued = run_forked(pki, COMMANDS["build-client-full"])
    renewed = run_forked(pki, COMMANDS["renew"])

    assert issued.returncode == 0, issued.stderr
    assert renewed.returncode == 0, renewed.stderr
    rows = index.read_bytes().split(b"\n")
    assert huge_row.rstrip(b"\n") in rows
    assert any(row.endswith(b"/CN=zed") for row in rows)


VARS_SHELL_CODE = [
    'set_var EASYRSA_REQ_CN "$(touch {marker})"',
    "touch {marker}",
    'set_var EASYRSA_REQ_ORG "`touch {marker}`"',
]


@pytest.mark.parametrize("line", VARS_SHELL_CODE)
@pytest.mark.parametrize("command", ["build-client-full", "sign-req", "renew"])
def test_vars_shell_code_not_run_by_issuing(pki_copy, tmp_path: Path, line: str, command: str) -> None:
    pki = prepared(pki_copy)
    if command == "build-client-full":
        (pki / "reqs" / "zed.req").unlink()
    marker = tmp_path / "ran"
    vars_file = tmp_path / "vars"
    vars_file.write_text(line.format(marker=marker) + "\n")

    result = run_product(pki, f"--vars={vars_file}", *COMMANDS[command])

    assert not marker.exists()
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert str(vars_file) in result.stderr
