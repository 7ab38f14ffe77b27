"""Rebuild every PKI in pki_fixtures/ with the real easy-rsa.

Run it by hand from the repository root:

    python pki_fixtures/build.py            # all fixtures
    python pki_fixtures/build.py v3.2.7-rsa # only the ones named

It needs openssl, faketime (Debian package ``faketime``) and the reference
easy-rsa versions that tests/reference.py locates. Each fixture is built in
a fixed folder (``--build-dir``, default /tmp/easyrsa-py-fixtures), because
easy-rsa 3.1.0 writes that absolute path into safessl-easyrsa.cnf. The
result is copied to pki_fixtures/NAME/pki, NAME/fixture.json records how it
was made, and pki_fixtures/README.md is rewritten from the same definitions.

Keys, serial numbers and issue dates differ on every build. Names, states,
the CA start date and the dates of the expired certificates do not.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES_DIR = Path(__file__).resolve().parent
REPO_ROOT = FIXTURES_DIR.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

from reference import cached_reference, run_reference

logger = logging.getLogger("build")

DEFAULT_BUILD_DIR = Path("/tmp/easyrsa-py-fixtures")
MANIFEST_NAME = "fixture.json"

# Every CA starts on this date so that the past-dated certificates below
# fall inside the CA's own validity. Only faketime can set it, because
# build-ca in these versions takes no start date.
CA_FAKE_TIME = "2024-01-01 00:00:00"
CA_DAYS = "--days=36500"
# The expired certificates were valid from 2024-02-01 to 2024-03-02.
EXPIRED_FAKE_TIME = "2024-02-01 00:00:00"
EXPIRED_START = "--startdate=20240201000000Z"
EXPIRED_END = "--enddate=20240302000000Z"

EC_CA_PASSPHRASE = "fixture-ec-ca-pass"
EC_PASSIN = f"--passin=pass:{EC_CA_PASSPHRASE}"
EC_ALGO = ("--use-algo=ec", "--curve=secp384r1")

# easy-rsa runs under umask 077, so every folder it makes is 0700 and
# every file 0600. Git keeps neither, and pki_copy restores both.
DIR_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True)
class Step:
    """One easy-rsa command line, optionally run under faketime."""

    args: tuple[str, ...]
    fake_time: str | None = None

    def prefix(self) -> tuple[str, ...]:
        if self.fake_time is None:
            return ()
        # "@" starts the clock at that time and lets it run.
        return ("faketime", "-f", f"@{self.fake_time}")

    def render(self) -> str:
        command = "easyrsa " + " ".join(quote(arg) for arg in self.args)
        if self.fake_time is None:
            return command
        return f"faketime -f '@{self.fake_time}' {command}"


@dataclass(frozen=True)
class Certificate:
    """A certificate the fixture contains, by its file name base."""

    name: str
    profile: str
    state: str
    location: str
    note: str = ""


@dataclass(frozen=True)
class Fixture:
    name: str
    version: str
    summary: str
    key_type: str
    ca_passphrase: str | None
    steps: tuple[Step, ...]
    certificates: tuple[Certificate, ...]
    notes: tuple[str, ...] = field(default=())


def quote(arg: str) -> str:
    if arg and all(ch.isalnum() or ch in "-_=.:/@" for ch in arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


def step(*args: str, fake_time: str | None = None) -> Step:
    return Step(tuple(args), fake_time)


# --- fixture definitions ---------------------------------------------------


def fixture_v310_rsa() -> Fixture:
    return Fixture(
        name="v3.1.0-rsa",
        version="3.1.0",
        summary="RSA CA without passphrase, in easy-rsa 3.1.0's layout.",
        key_type="RSA 2048",
        ca_passphrase=None,
        steps=(
            step("init-pki"),
            step(
                CA_DAYS,
                "--req-cn=Fixture 3.1.0 RSA CA",
                "build-ca",
                "nopass",
                fake_time=CA_FAKE_TIME,
            ),
            step("build-client-full", "alice", "nopass"),
            step("build-client-full", "bob", "nopass"),
            step("build-client-full", "carol", "nopass"),
            step("build-server-full", "server", "nopass"),
            step("build-server-full", "backup-server", "nopass"),
            step("revoke", "bob", "keyCompromise"),
            # 3.1.0 renews only inside the renewal window (30 days by
            # default), so the window is widened past the 825-day lifetime.
            step("--renew-days=1000", "renew", "server", "nopass"),
            # 3.1.0 has no --startdate, so the clock itself is moved.
            step(
                "--days=30",
                "build-client-full",
                "dave",
                "nopass",
                fake_time=EXPIRED_FAKE_TIME,
            ),
            step("gen-crl"),
        ),
        certificates=(
            Certificate("alice", "client", "valid", "issued/alice.crt"),
            Certificate(
                "bob",
                "client",
                "revoked",
                "revoked/certs_by_serial/SERIAL.crt",
                "reason keyCompromise",
            ),
            Certificate("carol", "client", "valid", "issued/carol.crt"),
            Certificate(
                "server",
                "server",
                "renewed",
                "issued/server.crt (new), renewed/issued/server.crt (old)",
                "old key and request in renewed/private, renewed/reqs",
            ),
            Certificate("backup-server", "server", "valid", "issued/backup-server.crt"),
            Certificate(
                "dave",
                "client",
                "expired",
                "issued/dave.crt",
                "valid 2024-02-01 to 2024-03-02, index row still V",
            ),
        ),
        notes=(
            (
                "3.1.0 keeps `vars`, `openssl-easyrsa.cnf` and "
                "`safessl-easyrsa.cnf` in the PKI and writes no `crl.der`."
            ),
            (
                "`revoke` moved bob's certificate, key and request to "
                "`revoked/certs_by_serial/`, `revoked/private_by_serial/` and "
                "`revoked/reqs_by_serial/`, and deleted its copy in "
                "`certs_by_serial/`."
            ),
            (
                "`renew` moved the old certificate, key and request of server to "
                "`renewed/issued/`, `renewed/private/` and `renewed/reqs/` by "
                "name, deleted the old copy in `certs_by_serial/`, and issued a "
                "new certificate with a new key."
            ),
        ),
    )


def fixture_v322_ec() -> Fixture:
    return Fixture(
        name="v3.2.2-ec",
        version="3.2.2",
        summary="EC CA whose key is protected by a passphrase.",
        key_type="EC secp384r1",
        ca_passphrase=EC_CA_PASSPHRASE,
        steps=(
            step("init-pki"),
            step(
                *EC_ALGO,
                CA_DAYS,
                "--req-cn=Fixture 3.2.2 EC CA",
                f"--passout=pass:{EC_CA_PASSPHRASE}",
                EC_PASSIN,
                "build-ca",
                fake_time=CA_FAKE_TIME,
            ),
            step(*EC_ALGO, EC_PASSIN, "build-client-full", "alice", "nopass"),
            step(*EC_ALGO, EC_PASSIN, "build-client-full", "bob", "nopass"),
            step(*EC_ALGO, EC_PASSIN, "build-server-full", "server", "nopass"),
            step(EC_PASSIN, "revoke", "bob", "superseded"),
            step(EC_PASSIN, "renew", "server"),
            step(
                *EC_ALGO,
                EC_PASSIN,
                EXPIRED_START,
                EXPIRED_END,
                "build-client-full",
                "dave",
                "nopass",
            ),
            step("expire", "dave"),
            step(EC_PASSIN, "gen-crl"),
        ),
        certificates=(
            Certificate("alice", "client", "valid", "issued/alice.crt"),
            Certificate(
                "bob",
                "client",
                "revoked",
                "revoked/certs_by_serial/SERIAL.crt",
                "reason superseded; 3.2.2 leaves the key in private/",
            ),
            Certificate(
                "server",
                "server",
                "renewed",
                "issued/server.crt (new), renewed/issued/server.crt (old)",
            ),
            Certificate(
                "dave",
                "client",
                "moved-to-expired",
                "expired/dave.crt",
                "valid 2024-02-01 to 2024-03-02",
            ),
        ),
        notes=(
            (
                "Every signing command needs the CA passphrase, given here as "
                f"`--passin=pass:{EC_CA_PASSPHRASE}`. Client and server keys "
                "have no passphrase."
            ),
            (
                "`revoke` in 3.2.2 moves only the certificate, because the "
                "variable that would move the key and request is never set: "
                "bob's key and request stay in `private/` and `reqs/`, and "
                "`revoked/private_by_serial/` and `revoked/reqs_by_serial/` "
                "are empty."
            ),
            (
                "`renew` kept server's key and request and moved only the old "
                "certificate to `renewed/issued/`."
            ),
            (
                "`build-*-full` wrote `inline/private/NAME.inline` files, and "
                "`revoke` deleted bob's."
            ),
        ),
    )


def fixture_v327_ed25519() -> Fixture:
    ed_algo = ("--use-algo=ed", "--curve=ed25519")
    return Fixture(
        name="v3.2.7-ed25519",
        version="3.2.7",
        summary="Ed25519 CA without passphrase.",
        key_type="Ed25519",
        ca_passphrase=None,
        steps=(
            step("init-pki"),
            step(
                *ed_algo,
                CA_DAYS,
                "--req-cn=Fixture 3.2.7 Ed25519 CA",
                "build-ca",
                "nopass",
                fake_time=CA_FAKE_TIME,
            ),
            step(*ed_algo, "build-client-full", "alice", "nopass"),
            step(*ed_algo, "build-client-full", "bob", "nopass"),
            step(*ed_algo, "build-server-full", "server", "nopass"),
            step("revoke", "bob", "cessationOfOperation"),
            step("gen-crl"),
        ),
        certificates=(
            Certificate("alice", "client", "valid", "issued/alice.crt"),
            Certificate(
                "bob",
                "client",
                "revoked",
                "revoked/certs_by_serial/SERIAL.crt",
                "reason cessationOfOperation",
            ),
            Certificate("server", "server", "valid", "issued/server.crt"),
        ),
    )


def fixture_v327_rsa() -> Fixture:
    return Fixture(
        name="v3.2.7-rsa",
        version="3.2.7",
        summary="RSA CA without passphrase: the sample PKI the README uses.",
        key_type="RSA 2048",
        ca_passphrase=None,
        steps=(
            step("init-pki"),
            step(
                CA_DAYS,
                "--req-cn=Example VPN CA",
                "build-ca",
                "nopass",
                fake_time=CA_FAKE_TIME,
            ),
            step("build-client-full", "alice", "nopass"),
            step("build-client-full", "bob", "nopass"),
            step("build-client-full", "carol", "nopass"),
            step("build-server-full", "server", "nopass"),
            step(
                "--dn-mode=org",
                "--req-c=DE",
                "--req-st=Bayern",
                "--req-city=München",
                "--req-org=Bäckerei Müller",
                "--req-ou=Qualité",
                "--req-email=francois@example.org",
                "--req-cn=François Dupré",
                "gen-req",
                "francois",
                "nopass",
            ),
            step("sign-req", "client", "francois"),
            step(EXPIRED_START, EXPIRED_END, "build-client-full", "dave", "nopass"),
            step(EXPIRED_START, EXPIRED_END, "build-client-full", "erin", "nopass"),
            step("expire", "erin"),
            step("revoke", "bob", "keyCompromise"),
            step("renew", "carol"),
            step("gen-crl"),
        ),
        certificates=(
            Certificate("alice", "client", "valid", "issued/alice.crt"),
            Certificate(
                "bob",
                "client",
                "revoked",
                "revoked/certs_by_serial/SERIAL.crt",
                "reason keyCompromise",
            ),
            Certificate(
                "carol",
                "client",
                "renewed",
                "issued/carol.crt (new), renewed/issued/carol.crt (old)",
            ),
            Certificate("server", "server", "valid", "issued/server.crt"),
            Certificate(
                "francois",
                "client",
                "valid",
                "issued/francois.crt",
                "non-ASCII org-mode subject, escaped as \\xC3\\xA7 in index.txt",
            ),
            Certificate(
                "dave",
                "client",
                "expired",
                "issued/dave.crt",
                "valid 2024-02-01 to 2024-03-02, index row still V",
            ),
            Certificate(
                "erin",
                "client",
                "moved-to-expired",
                "expired/erin.crt",
                "valid 2024-02-01 to 2024-03-02",
            ),
        ),
        notes=(
            (
                "francois's request was made with `--dn-mode=org`, so its "
                "subject has C, ST, L, O, OU, CN and emailAddress; `index.txt` "
                "stores the UTF-8 bytes as escapes such as `Fran\\xC3\\xA7ois`."
            ),
            (
                "`revoke` moved bob's certificate, key and request to "
                "`revoked/*_by_serial/`. `renew` kept carol's key and request "
                "and moved only the old certificate to `renewed/issued/`."
            ),
            (
                "Without a TLS key in the PKI, `inline/private/NAME.inline` "
                "files are marked incomplete by the script."
            ),
        ),
    )


FIXTURES = (
    fixture_v310_rsa(),
    fixture_v322_ec(),
    fixture_v327_ed25519(),
    fixture_v327_rsa(),
)


# --- building --------------------------------------------------------------


def run_step(fixture: Fixture, pki: Path, current: Step) -> None:
    logger.info("%s: %s", fixture.name, current.render())
    try:
        run_reference(fixture.version, pki, *current.args, prefix=current.prefix())
    except subprocess.CalledProcessError as error:
        raise SystemExit(
            f"{fixture.name}: '{current.render()}' failed with exit code "
            f"{error.returncode}.\nstdout:\n{error.stdout}\nstderr:\n{error.stderr}"
        ) from error


def collect_layout(pki: Path) -> tuple[list[str], list[str]]:
    """List empty folders and paths whose mode is not easy-rsa's usual one."""
    empty_dirs: list[str] = []
    odd_modes: list[str] = []
    for entry in sorted(pki.rglob("*")):
        relative = entry.relative_to(pki).as_posix()
        mode = stat.S_IMODE(entry.lstat().st_mode)
        if entry.is_dir():
            if not any(entry.iterdir()):
                empty_dirs.append(relative)
            if mode != DIR_MODE:
                odd_modes.append(f"{relative} {mode:o}")
        elif mode != FILE_MODE:
            odd_modes.append(f"{relative} {mode:o}")
    return empty_dirs, odd_modes


def manifest_for(fixture: Fixture, empty_dirs: list[str]) -> dict[str, object]:
    source = cached_reference(fixture.version)
    return {
        "name": fixture.name,
        "easyrsa_version": fixture.version,
        "reference_package": source.origin.name,
        "key_type": fixture.key_type,
        "ca_passphrase": fixture.ca_passphrase,
        "commands": [current.render() for current in fixture.steps],
        "certificates": {
            cert.name: {"profile": cert.profile, "state": cert.state}
            for cert in fixture.certificates
        },
        "empty_dirs": empty_dirs,
    }


def build_fixture(fixture: Fixture, build_dir: Path) -> None:
    work = build_dir / fixture.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pki = work / "pki"

    for current in fixture.steps:
        run_step(fixture, pki, current)

    empty_dirs, odd_modes = collect_layout(pki)
    if odd_modes:
        raise SystemExit(
            f"{fixture.name}: unexpected modes (expected {DIR_MODE:o} for "
            f"folders, {FILE_MODE:o} for files): {', '.join(odd_modes)}"
        )

    target = FIXTURES_DIR / fixture.name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    shutil.copytree(pki, target / "pki")
    manifest = manifest_for(fixture, empty_dirs)
    (target / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    logger.info("%s: written to %s", fixture.name, target)


# --- README ----------------------------------------------------------------

README_INTRO = """\
# PKI fixtures

PKIs made by the real easy-rsa, so that tests can run easyrsa_py and the
real script on copies of the same PKI. `build.py` in this folder makes all
of them and rewrites this file; run it by hand from the repository root:

    python pki_fixtures/build.py             # every fixture
    python pki_fixtures/build.py v3.2.7-rsa  # only the ones named

It needs `openssl`, `faketime` (Debian package `faketime`) and the reference
easy-rsa versions that `tests/reference.py` finds. Each run makes new keys
and serial numbers; names, states and the fixed dates below stay the same.

Each folder contains `pki/`, the PKI as the script left it, and
`fixture.json`, which records the version, the commands, the CA passphrase,
the state of each certificate and the folders that were empty.

How they were made, for all fixtures:

- Every command ran with `EASYRSA_PKI` set, `EASYRSA_BATCH=1`, `TZ=UTC`
  and a fresh, empty working folder, through `run_reference()` in
  `tests/reference.py`.
- `build-ca` ran under `faketime -f '@2024-01-01 00:00:00'` with
  `--days=36500`, so every CA is valid from 2024-01-01 until 2123 and the
  expired certificates fall inside its validity.
- Expired certificates are valid from 2024-02-01 to 2024-03-02. Versions
  3.2.x set these dates with `--startdate`/`--enddate`; 3.1.0 has no such
  option, so its expired certificate was issued under faketime with
  `--days=30`.
- Other certificates last easy-rsa's default 825 days from the build. The
  CRLs last 180 days; tests that need a current CRL run `gen-crl` on a copy.
- Each PKI was built in `/tmp/easyrsa-py-fixtures/NAME/pki`. easy-rsa 3.1.0
  writes that absolute path into `safessl-easyrsa.cnf`, and rewrites the
  file with the PKI's real path on every run.

The state column in each table, also stored in `fixture.json`:

- `valid`: in `issued/`, not expired.
- `revoked`: revoked with the reason shown; the certificate file is in
  `revoked/certs_by_serial/`, named by serial.
- `renewed`: the new certificate is in `issued/`, the old one in
  `renewed/issued/`, and both rows in `index.txt` are `V`.
- `expired`: past its end date but still in `issued/` with a `V` row, as
  easy-rsa leaves it until someone acts.
- `moved-to-expired`: past its end date and moved to `expired/` by the
  `expire` command (3.2.x).

Git keeps neither file modes nor empty folders. easy-rsa makes every folder
0700 and every file 0600 (umask 077); the `pki_copy` fixture in
`tests/conftest.py` restores those modes and recreates the folders listed
under `empty_dirs` in `fixture.json`. Use it instead of reading the
fixtures in place.
"""


def readme_section(fixture: Fixture) -> str:
    passphrase = (
        f"`{fixture.ca_passphrase}`" if fixture.ca_passphrase else "none (nopass)"
    )
    lines = [
        f"## {fixture.name}",
        "",
        fixture.summary,
        "",
        f"- easy-rsa {fixture.version}",
        f"- keys: {fixture.key_type}",
        f"- CA passphrase: {passphrase}",
        "",
        "Commands, in order:",
        "",
    ]
    lines += [f"    {current.render()}" for current in fixture.steps]
    lines += [
        "",
        "| name | profile | state | certificate file | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {cert.name} | {cert.profile} | {cert.state} | {cert.location} "
        f"| {cert.note} |"
        for cert in fixture.certificates
    ]
    if fixture.notes:
        lines.append("")
        lines += [f"- {note}" for note in fixture.notes]
    lines += ["", "Files in `pki/`:", ""]
    lines += [f"    {path}" for path in list_files(FIXTURES_DIR / fixture.name / "pki")]
    return "\n".join(lines) + "\n"


def list_files(pki: Path) -> list[str]:
    """List the files under ``pki``, and its empty folders marked as such."""
    entries = []
    for path in sorted(pki.rglob("*")):
        relative = path.relative_to(pki).as_posix()
        if path.is_file():
            entries.append(relative)
        elif not any(path.iterdir()):
            entries.append(f"{relative}/ (empty)")
    return entries


def write_readme() -> None:
    sections = [README_INTRO] + [readme_section(f) for f in FIXTURES]
    (FIXTURES_DIR / "README.md").write_text("\n".join(sections), encoding="utf-8")


# --- command line ----------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names",
        nargs="*",
        help="fixtures to rebuild (default: all of them)",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=DEFAULT_BUILD_DIR,
        help="folder to build in before copying (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    known = {fixture.name: fixture for fixture in FIXTURES}
    unknown = [name for name in args.names if name not in known]
    if unknown:
        logger.error("Unknown fixture(s): %s. Known: %s", unknown, sorted(known))
        return 2
    if shutil.which("faketime") is None:
        logger.error("faketime is not installed: run 'apt-get install faketime'.")
        return 1

    for name in args.names or list(known):
        build_fixture(known[name], args.build_dir)
    write_readme()
    return 0


if __name__ == "__main__":
    sys.exit(main())
