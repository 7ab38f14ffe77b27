"""compat.md's statements that no other test module checks, one test each.

Each test runs the real easy-rsa and easyrsa_py the way compat.md describes
them and fails when a statement stops being true: the options table, the
commands that are not implemented yet, help, show-crl, the revoke variants'
file handling (D2), vars files (D5), the lock (D6, lock.file), CRL file modes
and owners (D9, crl.der), extra words and names (D12, D13).

Where the real script and easyrsa_py differ today and compat.md does not yet
say so (the umask of rewritten index files, --force-vars), the test pins
both sides, so a change on either side shows up here.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pkitools import (
    append_index_rows,
    crl_summary,
    pki_state,
    product_command,
    product_env,
    read_index,
    run_product,
    tree_modes,
)
from reference import reference_env

from easyrsa_py.cli import main
from easyrsa_py.errors import UsageError
from easyrsa_py.revoke import check_file_name_base

if TYPE_CHECKING:
    from conftest import ReferenceEasyRSA

RSA_FIXTURE = "v3.2.7-rsa"
ED_FIXTURE = "v3.2.7-ed25519"
FIXTURE_310 = "v3.1.0-rsa"
EC_FIXTURE = "v3.2.2-ec"
EC_PASSPHRASE = "fixture-ec-ca-pass"
NOBODY = 65534
# Reference runs mostly wait on openssl, so more threads than cores help.
WORKERS = 2 * (os.cpu_count() or 2)
PKCS_SUFFIXES = ("p12", "p7b", "p8", "p1")
UMASK_002 = ("sh", "-c", 'umask 002; exec "$0" "$@"')

Result = subprocess.CompletedProcess[str]


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_parallel(calls: Mapping[str, Callable[[], Result]]) -> dict[str, Result]:
    """Run independent commands on separate PKI copies at the same time."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {label: pool.submit(call) for label, call in calls.items()}
        return {label: future.result() for label, future in futures.items()}


@dataclass
class Pair:
    """One command run by the real script and by easyrsa_py on two copies."""

    ref_pki: Path
    py_pki: Path
    ref: Result
    py: Result


def run_pair(
    reference: ReferenceEasyRSA,
    pki_copy: Callable[[str], Path],
    fixture: str,
    *args: str,
    prepare: Callable[[Path], object] | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    batch: bool = True,
    prefix: Sequence[str] = (),
) -> Pair:
    ref_pki, py_pki = pki_copy(fixture), pki_copy(fixture)
    if prepare is not None:
        prepare(ref_pki)
        prepare(py_pki)
    ref = reference.run(
        ref_pki, *args, env=env, input=input, batch=batch, prefix=prefix, check=False
    )
    py = run_product(py_pki, *args, env=env, input=input, batch=batch, prefix=prefix)
    return Pair(ref_pki, py_pki, ref, py)


def ref_output(result: Result) -> str:
    return result.stdout + result.stderr


# --- the options table --------------------------------------------------------

ALL = frozenset({"3.1.0", "3.2.2", "3.2.7"})
FROM_322 = frozenset({"3.2.2", "3.2.7"})
ONLY_327 = frozenset({"3.2.7"})


@dataclass(frozen=True)
class OptionCase:
    """One spelling from compat.md's options table, with a valid value."""

    words: tuple[str, ...]
    # The reference versions whose option parser accepts this spelling.
    accepted_by: frozenset[str]
    # False for the row of options that only matter to commands not yet
    # implemented: compat.md promises only that easyrsa_py accepts them.
    row_compares_old_versions: bool = True


def option(
    *words: str, accepted_by: frozenset[str], compare_old: bool = True
) -> OptionCase:
    return OptionCase(words, accepted_by, compare_old)


# {pki}, {tmp}, {vars} and {cnf} are filled in per run.
OPTION_CASES = {
    "-b": option("-b", accepted_by=ONLY_327),
    "--batch": option("--batch", accepted_by=ALL),
    "-s": option("-s", accepted_by=FROM_322),
    "--silent": option("--silent", accepted_by=ALL),
    "--sb": option("--sb", accepted_by=ONLY_327),
    "--sbatch": option("--sbatch", accepted_by=ALL),
    "--silent-batch": option("--silent-batch", accepted_by=ALL),
    "-v": option("-v", accepted_by=ONLY_327),
    "--verbose": option("--verbose", accepted_by=FROM_322),
    "--pki": option("--pki={pki}", accepted_by=FROM_322),
    "--pki-dir": option("--pki-dir={pki}", accepted_by=ALL),
    "--vars": option("--vars={vars}", accepted_by=ALL),
    "--force-vars": option("--force-vars", accepted_by=ONLY_327),
    "--passin": option("--passin=pass:unused", accepted_by=ALL),
    "--passout": option("--passout=pass:unused", accepted_by=ALL),
    "--days": option("--days=30", accepted_by=ALL),
    "--digest": option("--digest=sha256", accepted_by=ALL),
    "--nolockfile": option("--nolockfile", accepted_by=ONLY_327),
    "--no-lockfile": option("--no-lockfile", accepted_by=ONLY_327),
    "--umask": option("--umask=022", accepted_by=ONLY_327),
    "--noumask": option("--noumask", accepted_by=ONLY_327),
    "--no-umask": option("--no-umask", accepted_by=ONLY_327),
    "--startdate": option(
        "--startdate=20240101000000Z",
        "--enddate=20300101000000Z",
        accepted_by=FROM_322,
        compare_old=False,
    ),
    "--enddate": option(
        "--enddate=20300101000000Z", accepted_by=FROM_322, compare_old=False
    ),
    "--tmp-dir": option("--tmp-dir={tmp}", accepted_by=ALL, compare_old=False),
    "--ssl-cnf": option("--ssl-cnf={cnf}", accepted_by=FROM_322, compare_old=False),
    "--ssl-conf": option("--ssl-conf={cnf}", accepted_by=ALL, compare_old=False),
    "--keep-tmp": option("--keep-tmp=kept", accepted_by=FROM_322, compare_old=False),
    "--algo": option("--algo=rsa", accepted_by=ONLY_327, compare_old=False),
    "--use-algo": option("--use-algo=rsa", accepted_by=ALL, compare_old=False),
    "--keysize": option("--keysize=2048", accepted_by=ALL, compare_old=False),
    "--curve": option("--curve=secp384r1", accepted_by=ALL, compare_old=False),
    "--dn-mode": option("--dn-mode=org", accepted_by=ALL, compare_old=False),
    "--req-cn": option("--req-cn=Example", accepted_by=ALL, compare_old=False),
    "--req-c": option("--req-c=DE", accepted_by=ALL, compare_old=False),
    "--req-st": option("--req-st=Bayern", accepted_by=ALL, compare_old=False),
    "--req-city": option("--req-city=Munich", accepted_by=ALL, compare_old=False),
    "--req-org": option("--req-org=Example", accepted_by=ALL, compare_old=False),
    "--req-email": option(
        "--req-email=ca@example.org", accepted_by=ALL, compare_old=False
    ),
    "--req-ou": option("--req-ou=VPN", accepted_by=ALL, compare_old=False),
    "--req-serial": option("--req-serial=1", accepted_by=FROM_322, compare_old=False),
    "--ns-cert": option("--ns-cert=yes", accepted_by=ALL, compare_old=False),
    "--ns-comment": option("--ns-comment=text", accepted_by=ALL, compare_old=False),
    "-S": option("-S", accepted_by=FROM_322, compare_old=False),
    "--silent-ssl": option("--silent-ssl", accepted_by=FROM_322, compare_old=False),
    "--force-safe-ssl": option(
        "--force-safe-ssl", accepted_by=FROM_322, compare_old=False
    ),
    "--nopass": option("--nopass", accepted_by=FROM_322, compare_old=False),
    "--no-pass": option("--no-pass", accepted_by=FROM_322, compare_old=False),
    "--rawca": option("--rawca", accepted_by=ONLY_327, compare_old=False),
    "--raw-ca": option("--raw-ca", accepted_by=FROM_322, compare_old=False),
    "--text": option("--text", accepted_by=ONLY_327, compare_old=False),
    "--notext": option("--notext", accepted_by=FROM_322, compare_old=False),
    "--no-text": option("--no-text", accepted_by=FROM_322, compare_old=False),
    "--subca-len": option("--subca-len=1", accepted_by=ALL, compare_old=False),
    "--copy-ext": option("--copy-ext", accepted_by=ALL, compare_old=False),
    "--san": option("--san=DNS:vpn.example.org", accepted_by=ALL, compare_old=False),
    "--subject-alt-name": option(
        "--subject-alt-name=DNS:vpn.example.org", accepted_by=ALL, compare_old=False
    ),
    "--auto-san": option("--auto-san", accepted_by=FROM_322, compare_old=False),
    "--san-crit": option("--san-crit", accepted_by=FROM_322, compare_old=False),
    "--bc-crit": option("--bc-crit", accepted_by=FROM_322, compare_old=False),
    "--ku-crit": option("--ku-crit", accepted_by=FROM_322, compare_old=False),
    "--eku-crit": option("--eku-crit", accepted_by=FROM_322, compare_old=False),
    "--new-subject": option(
        "--new-subject=/CN=renamed", accepted_by=FROM_322, compare_old=False
    ),
    "--usefn": option("--usefn=friendly", accepted_by=FROM_322, compare_old=False),
    "--noinline": option("--noinline", accepted_by=ONLY_327, compare_old=False),
    "--fix-offset": option("--fix-offset=1", accepted_by=frozenset({"3.1.0"})),
    "--renew-days": option("--renew-days=30", accepted_by=frozenset({"3.1.0"})),
    "--days-margin": option("--days-margin=1", accepted_by=frozenset({"3.2.2"})),
    "--tools": option("--tools={tmp}", accepted_by=frozenset({"3.2.2"})),
}


def option_words(case: OptionCase, pki: Path, tmp_path: Path, cnf: Path) -> list[str]:
    vars_file = tmp_path / "vars"
    if not vars_file.exists():
        vars_file.write_text("# no settings\n")
    (tmp_path / "tmp").mkdir(exist_ok=True)
    values = {"pki": pki, "tmp": tmp_path / "tmp", "vars": vars_file, "cnf": cnf}
    return [word.format(**values) for word in case.words]


def reference_codes(
    reference: ReferenceEasyRSA,
    pki_copy: Callable[[str], Path],
    tmp_path: Path,
    labels: Sequence[str],
) -> dict[str, int]:
    """Return the real script's exit code for each option before gen-crl."""
    fixture = FIXTURE_310 if reference.version == "3.1.0" else ED_FIXTURE
    cnf = reference.script_dir / "openssl-easyrsa.cnf"
    calls = {}
    for label in labels:
        pki = pki_copy(fixture)
        words = option_words(OPTION_CASES[label], pki, tmp_path, cnf)
        calls[label] = lambda pki=pki, words=words: reference.run(
            pki, *words, "gen-crl", check=False
        )
    return {label: result.returncode for label, result in run_parallel(calls).items()}


def test_options_accepted_before_gen_crl(pki_copy, tmp_path):
    calls = {}
    for label, case in OPTION_CASES.items():
        pki = pki_copy(ED_FIXTURE)
        # easyrsa_py reads no OpenSSL config, so --ssl-cnf may name any path.
        words = option_words(case, pki, tmp_path, tmp_path / "openssl-easyrsa.cnf")
        calls[label] = lambda pki=pki, words=words: run_product(pki, *words, "gen-crl")

    results = run_parallel(calls)

    failed = {
        label: result.stderr
        for label, result in results.items()
        if result.returncode != 0
    }
    assert failed == {}


def test_options_exit_codes_match_327(reference_for, pki_copy, tmp_path):
    # Every spelling that 3.2.7 parses runs gen-crl there. It rejects the four
    # 3.1.0- and 3.2.2-only spellings, which easyrsa_py accepts.
    codes = reference_codes(
        reference_for("3.2.7"), pki_copy, tmp_path, list(OPTION_CASES)
    )

    expected = {
        label: 0 if "3.2.7" in case.accepted_by else 1
        for label, case in OPTION_CASES.items()
    }
    assert codes == expected


@pytest.mark.parametrize("version", ["3.1.0", "3.2.2"])
def test_options_exit_codes_old_versions(reference_for, pki_copy, tmp_path, version):
    # Spellings that the old script parses run gen-crl there, as they do with
    # easyrsa_py (test_options_accepted_before_gen_crl). The old script rejects
    # the 3.2.7-only spellings.
    labels = [
        label for label, case in OPTION_CASES.items() if case.row_compares_old_versions
    ]

    codes = reference_codes(reference_for(version), pki_copy, tmp_path, labels)

    expected = {
        label: 0 if version in OPTION_CASES[label].accepted_by else 1
        for label in labels
    }
    assert codes == expected


@pytest.mark.parametrize(
    "version, word, expected",
    [
        ("3.1.0", "--renew-days=abc", 0),
        ("3.2.2", "--days-margin=abc", 1),
    ],
)
def test_old_only_option_checked_as_origin(
    reference_for, pki_copy, version, word, expected
):
    # compat.md accepts these options so that 3.1 and 3.2.2 scripts run, so
    # each value should pass or fail as in the version that defines it.
    # 3.1.0 takes any --renew-days, and 3.2.2 requires a number for --days-margin.
    fixture = FIXTURE_310 if version == "3.1.0" else ED_FIXTURE
    pair = run_pair(reference_for(version), pki_copy, fixture, word, "gen-crl")

    assert pair.ref.returncode == expected
    assert pair.py.returncode == expected, pair.py.stderr


@pytest.mark.parametrize("command", ["revoke", "update-db", "show-crl"])
def test_days_zero_rejected_per_command(reference_for, pki_copy, command):
    args = ["--days=0", command, *(["alice"] if command == "revoke" else [])]
    ref_pki, py_pki = pki_copy(ED_FIXTURE), pki_copy(ED_FIXTURE)
    before = pki_state(py_pki)

    ref = reference_for("3.2.7").run(ref_pki, *args, check=False)
    py = run_product(py_pki, *args)

    assert ref.returncode == 1
    assert py.returncode == 1
    assert "--days=0" in py.stderr
    assert pki_state(py_pki) == before


@pytest.mark.parametrize(
    "key, fixture, passin",
    [
        ("rsa", RSA_FIXTURE, []),
        ("ec", EC_FIXTURE, [f"--passin=pass:{EC_PASSPHRASE}"]),
    ],
)
@pytest.mark.parametrize("digest", ["md5", "sha1", "sha224"])
def test_digest_weak_choices(reference_for, pki_copy, key, fixture, passin, digest):
    # compat.md: md5 for RSA only; sha1 and sha224 for both key types.
    pair = run_pair(
        reference_for("3.2.7"),
        pki_copy,
        fixture,
        *passin,
        f"--digest={digest}",
        "gen-crl",
    )

    expected = 1 if (key, digest) == ("ec", "md5") else 0
    assert pair.ref.returncode == expected
    assert pair.py.returncode == expected, pair.py.stderr
    if expected == 0:
        ref_algorithm = crl_summary(pair.ref_pki / "crl.pem").signature_algorithm
        assert crl_summary(pair.py_pki / "crl.pem").signature_algorithm == ref_algorithm


def run_with_passin_fd(
    command: Callable[[str], list[str]], env: dict[str, str], cwd: Path, secret: str
) -> Result:
    """Run ``command(passin)`` with `secret` readable on an inherited pipe."""
    read_end, write_end = os.pipe()
    os.write(write_end, (secret + "\n").encode())
    os.close(write_end)
    try:
        return subprocess.run(
            command(f"--passin=fd:{read_end}"),
            env=env,
            cwd=cwd,
            pass_fds=(read_end,),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(read_end)


def test_passin_fd(reference_for, pki_copy):
    script = reference_for("3.2.7").script_dir / "easyrsa"
    ref_pki, py_pki = pki_copy(EC_FIXTURE), pki_copy(EC_FIXTURE)

    ref = run_with_passin_fd(
        lambda passin: [str(script), passin, "gen-crl"],
        reference_env(ref_pki, ref_pki.parent, True, None),
        ref_pki.parent,
        EC_PASSPHRASE,
    )
    py = run_with_passin_fd(
        lambda passin: product_command(passin, "gen-crl"),
        product_env(py_pki, py_pki.parent),
        py_pki.parent,
        EC_PASSPHRASE,
    )

    assert ref.returncode == 0, ref_output(ref)
    assert py.returncode == 0, py.stderr
    assert (
        crl_summary(py_pki / "crl.pem").issuer
        == crl_summary(ref_pki / "crl.pem").issuer
    )


def test_verbose_logs_to_stderr(pki_copy):
    pki = pki_copy(ED_FIXTURE)

    result = run_product(pki, "--verbose", "gen-crl")

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert str(pki / "lock.file") in result.stderr
    assert str(pki / "crl.pem") in result.stderr


def test_nolockfile_ignores_held_lock(reference_for, pki_copy):
    def hold_lock(pki: Path) -> None:
        (pki / "lock.file").write_text(f"{os.getpid()}\n")

    pair = run_pair(
        reference_for("3.2.7"),
        pki_copy,
        ED_FIXTURE,
        "--nolockfile",
        "gen-crl",
        prepare=hold_lock,
    )

    assert pair.ref.returncode == 0
    assert pair.py.returncode == 0, pair.py.stderr
    assert (pair.py_pki / "lock.file").read_text() == f"{os.getpid()}\n"


# --- umask --------------------------------------------------------------------


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("EASYRSA_UMASK", "027", 0o640),
        ("EASYRSA_NO_UMASK", "1", 0o664),
    ],
)
def test_umask_variables_in_322(reference_for, pki_copy, variable, value, expected):
    # 3.2.2 has the variables but not the --umask and --noumask options.
    pair = run_pair(
        reference_for("3.2.2"),
        pki_copy,
        ED_FIXTURE,
        "gen-crl",
        prepare=lambda pki: (pki / "crl.der").unlink(),
        env={variable: value},
        prefix=UMASK_002,
    )

    assert pair.ref.returncode == 0, ref_output(pair.ref)
    assert file_mode(pair.ref_pki / "crl.der") == expected
    assert file_mode(pair.py_pki / "crl.der") == expected


@pytest.mark.parametrize(
    "options, env, ref_mode",
    [
        (["--umask=022"], {}, 0o644),
        (["--noumask"], {}, 0o664),
        ([], {"EASYRSA_UMASK": "022"}, 0o644),
    ],
)
def test_umask_index_files_keep_mode(reference_for, pki_copy, options, env, ref_mode):
    # openssl ca writes index.txt and index.txt.attr as new files under the
    # umask and renames the old ones to .old. easyrsa_py keeps the mode of the
    # files it replaces, 0600 here, which compat.md does not mention yet.
    pair = run_pair(
        reference_for("3.2.7"),
        pki_copy,
        RSA_FIXTURE,
        *options,
        "revoke",
        "alice",
        env=env,
        prefix=UMASK_002,
    )

    assert pair.ref.returncode == 0
    assert pair.py.returncode == 0, pair.py.stderr
    for name in ("index.txt", "index.txt.attr"):
        assert file_mode(pair.ref_pki / name) == ref_mode, name
        assert file_mode(pair.py_pki / name) == 0o600, name


def test_umask_new_folders(reference_for, pki_copy):
    pair = run_pair(
        reference_for("3.2.7"),
        pki_copy,
        RSA_FIXTURE,
        "--umask=022",
        "revoke",
        "alice",
        prepare=lambda pki: shutil.rmtree(pki / "revoked"),
    )

    assert pair.ref.returncode == 0
    assert pair.py.returncode == 0, pair.py.stderr
    for folder in (
        "revoked",
        "revoked/certs_by_serial",
        "revoked/private_by_serial",
        "revoked/reqs_by_serial",
    ):
        assert file_mode(pair.ref_pki / folder) == 0o755, folder
        assert file_mode(pair.py_pki / folder) == 0o755, folder


# --- commands that are not implemented yet ------------------------------------

# Every name in compat.md's "not yet" rows, and the aliases of 3.2.7's
# dispatcher that compat.md does not list (clean-all).
NOT_YET = (
    "upgrade",
)


@pytest.fixture
def cli_logging_restored() -> Iterator[None]:
    """Undo the handler, level and propagation that main() sets on the package logger."""
    logger = logging.getLogger("easyrsa_py")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.mark.parametrize("command", NOT_YET)
def test_not_yet_command_exits_1(capsys, cli_logging_restored, command):
    code = main(["--pki=/nonexistent/pki", command, "alice"])

    assert code == 1
    assert (
        f"'{command}' is an easy-rsa command that easyrsa_py does not implement yet"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize("command", ["renewable", "upgrade"])
def test_31_only_commands_unknown_to_327(reference_for, pki_copy, command):
    pki = pki_copy(ED_FIXTURE)

    result = reference_for("3.2.7").run(pki, command, check=False)

    assert result.returncode == 1
    assert f"Unknown command '{command}'" in ref_output(result)


@pytest.mark.parametrize("command", ["revoke-issued", "revoke-expired"])
def test_32_revoke_commands_unknown_to_310(reference_for, pki_copy, command):
    pki = pki_copy(FIXTURE_310)

    result = reference_for("3.1.0").run(pki, command, "alice", check=False)

    assert result.returncode == 1
    assert f"Unknown command '{command}'" in ref_output(result)


def test_revoke_issued_on_310_pki(pki_copy):
    pki = pki_copy(FIXTURE_310)
    serial = next(row[3] for row in read_index(pki) if row[5] == "/CN=alice")

    result = run_product(pki, "revoke-issued", "alice")

    assert result.returncode == 0, result.stderr
    for folder, suffix in (("certs", "crt"), ("private", "key"), ("reqs", "req")):
        assert (
            pki / "revoked" / f"{folder}_by_serial" / f"{serial}.{suffix}"
        ).is_file()


# --- help ---------------------------------------------------------------------


def test_help_not_yet_command_says_so(tmp_path):
    result = run_product(tmp_path / "pki", "help", "upgrade")

    assert result.returncode == 1
    assert "does not implement yet" in result.stderr


def test_help_options_lists_every_option(tmp_path):
    result = run_product(tmp_path / "pki", "help", "options")

    assert result.returncode == 0
    listed = {word.rstrip(",").split("=")[0] for word in result.stdout.split()}
    missing = [label for label in OPTION_CASES if label not in listed]
    assert missing == []


IMPLEMENTED_EASYRSA_COMMANDS = (
    "gen-req",
    "sign-req",
    "sign",
    "import-req",
    "build-client-full",
    "build-server-full",
    "build-serverClient-full",
    "init-pki",
    "clean-all",
    "build-ca",
    "renew-ca",
    "self-sign-server",
    "self-sign-client",
    "import-ca",
    "show-req",
    "show-cert",
    "show-ca",
    "show-host",
    "gen-dh",
    "gen-tls-auth-key",
    "gen-tls-crypt-key",
    "gen-tls-cryptv2-key",
    "import-tls-key",
    "write",
    "inline",
    "renew",
    "expire",
    "verify-cert",
    "verify",
    "set-pass",
    "set-rsa-pass",
    "set-ec-pass",
    "set-ed-pass",
    "export-p1",
    "export-p7",
    "export-p8",
    "export-p12",
    "revoke",
    "revoke-issued",
    "revoke-expired",
    "revoke-renewed",
    "gen-crl",
    "show-crl",
    "update-db",
    "show-expire",
    "show-revoke",
    "show-renew",
    "serial",
    "check-serial",
    "rand",
    "random",
    "display-dn",
    "show-eku",
    "x509-eku",
    "renewable",
)


def listed_commands(help_text: str) -> list[str]:
    """Return the first word of each command line in the help overview."""
    return [
        line.split()[0]
        for line in help_text.splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    ]


def test_help_lists_implemented_commands(tmp_path):
    result = run_product(tmp_path / "pki", "help")

    listed = listed_commands(result.stdout)
    # An alias is named in its command's line, as "(sign: the same)".
    missing = [
        name for name in IMPLEMENTED_EASYRSA_COMMANDS
        if name not in listed and f"{name}:" not in result.stdout and f"{name}," not in result.stdout
        and f"{name})" not in result.stdout
    ]
    assert missing == []
    assert [name for name in listed if name in NOT_YET] == []


def test_no_command_prints_help(tmp_path):
    bare = run_product(tmp_path / "pki")
    helped = run_product(tmp_path / "pki", "help")

    assert bare.returncode == 0
    assert bare.stdout == helped.stdout


# --- revoke and its variants --------------------------------------------------


def copy_alice_to_expired(pki: Path) -> None:
    (pki / "expired").mkdir(exist_ok=True)
    shutil.copy2(pki / "issued" / "alice.crt", pki / "expired" / "alice.crt")


def test_revoke_stops_on_expired_twin(reference_for, pki_copy):
    pair = run_pair(
        reference_for("3.2.7"),
        pki_copy,
        RSA_FIXTURE,
        "revoke",
        "alice",
        prepare=copy_alice_to_expired,
        batch=False,
        input="yes\n",
    )

    assert pair.ref.returncode == 1
    assert pair.py.returncode == 1
    assert str(pair.py_pki / "expired" / "alice.crt") in pair.py.stderr
    assert "revoke-expired" in pair.py.stderr
    assert read_index(pair.py_pki) == read_index(pair.ref_pki)
    assert (pair.py_pki / "issued" / "alice.crt").is_file()


@pytest.mark.parametrize(
    "name, prepare",
    [
        ("alice", copy_alice_to_expired),
        ("carol", None),
    ],
    ids=["expired twin", "renewed twin"],
)
def test_revoke_batch_takes_issued(reference_for, pki_copy, name, prepare):
    pair = run_pair(
        reference_for("3.2.7"), pki_copy, RSA_FIXTURE, "revoke", name, prepare=prepare
    )

    assert pair.ref.returncode == 0
    assert pair.py.returncode == 0, pair.py.stderr
    assert not (pair.py_pki / "issued" / f"{name}.crt").exists()
    assert tree_modes(pair.py_pki) == tree_modes(pair.ref_pki)


def add_exports(name: str) -> Callable[[Path], None]:
    """Build a step that gives NAME PKCS exports and both inline files."""

    def add(pki: Path) -> None:
        for folder in ("issued", "private"):
            for suffix in PKCS_SUFFIXES:
                (pki / folder / f"{name}.{suffix}").write_bytes(b"export\n")
        (pki / "inline" / "private").mkdir(parents=True, exist_ok=True)
        (pki / "inline" / f"{name}.inline").write_text("inline\n")
        (pki / "inline" / "private" / f"{name}.inline").write_text("inline\n")

    return add


def export_paths(pki: Path, name: str) -> list[Path]:
    paths = [
        pki / folder / f"{name}.{suffix}"
        for folder in ("issued", "private")
        for suffix in PKCS_SUFFIXES
    ]
    return [
        *paths,
        pki / "inline" / f"{name}.inline",
        pki / "inline" / "private" / f"{name}.inline",
    ]


def test_revoke_issued_deletes_exports(reference_for, pki_copy):
    pair = run_pair(
        reference_for("3.2.7"),
        pki_copy,
        RSA_FIXTURE,
        "revoke-issued",
        "alice",
        prepare=add_exports("alice"),
    )

    assert pair.py.returncode == 0, pair.py.stderr
    assert [path for path in export_paths(pair.ref_pki, "alice") if path.exists()] == []
    assert [path for path in export_paths(pair.py_pki, "alice") if path.exists()] == []
    assert tree_modes(pair.py_pki) == tree_modes(pair.ref_pki)


def give_erin_current_certificate(pki: Path) -> None:
    # Any certificate file makes issued/erin.crt "current" for D2.
    shutil.copy2(pki / "issued" / "alice.crt", pki / "issued" / "erin.crt")
    add_exports("erin")(pki)


@pytest.mark.parametrize(
    "command, name, prepare",
    [
        ("revoke-expired", "erin", give_erin_current_certificate),
        ("revoke-renewed", "carol", add_exports("carol")),
    ],
)
def test_old_revoke_keeps_current_exports(
    reference_for, pki_copy, command, name, prepare
):
    # D2: easy-rsa 3.2.7 deletes the current certificate's exports.
    pair = run_pair(
        reference_for("3.2.7"), pki_copy, RSA_FIXTURE, command, name, prepare=prepare
    )

    assert pair.ref.returncode == 0
    assert pair.py.returncode == 0, pair.py.stderr
    assert [path for path in export_paths(pair.ref_pki, name) if path.exists()] == []
    assert [path for path in export_paths(pair.py_pki, name) if not path.exists()] == []
    assert (pair.py_pki / "issued" / f"{name}.crt").is_file()


def test_revoke_expired_without_current_deletes_exports(reference_for, pki_copy):
    pair = run_pair(
        reference_for("3.2.7"),
        pki_copy,
        RSA_FIXTURE,
        "revoke-expired",
        "erin",
        prepare=add_exports("erin"),
    )

    assert pair.py.returncode == 0, pair.py.stderr
    assert [path for path in export_paths(pair.py_pki, "erin") if path.exists()] == []
    assert tree_modes(pair.py_pki) == tree_modes(pair.ref_pki)


# --- gen-crl with dates after 2049 (D4) ---------------------------------------


@pytest.mark.parametrize(
    "version, fixture, passin",
    [
        ("3.1.0", FIXTURE_310, []),
        ("3.2.2", EC_FIXTURE, [f"--passin=pass:{EC_PASSPHRASE}"]),
    ],
)
def test_date_after_2049_old_versions(
    reference_for, pki_copy, version, fixture, passin
):
    # test_differential covers 3.2.7; 3.1.0 and 3.2.2 stop on the date too.
    row = [
        "R",
        "20600101000000Z",
        "20500101000000Z,keyCompromise",
        "7B01",
        "unknown",
        "/CN=future",
    ]
    pair = run_pair(
        reference_for(version),
        pki_copy,
        fixture,
        *passin,
        "gen-crl",
        prepare=lambda pki: append_index_rows(pki, [row]),
    )

    assert pair.ref.returncode == 1
    assert "20500101000000Z" in ref_output(pair.ref)
    assert pair.py.returncode == 0, pair.py.stderr
    assert crl_summary(pair.py_pki / "crl.pem").revocation_dates[0x7B01].year == 2050


# --- show-crl -----------------------------------------------------------------


def add_varied_entries(pki: Path) -> None:
    """Add revoked rows with every reason, a hold instruction, invalidity dates and a 2050 date."""
    fields = [
        "261101000000Z",
        "261101000000Z,unspecified",
        "261101000000Z,keyCompromise",
        "261101000000Z,CACompromise",
        "261101000000Z,affiliationChanged",
        "261101000000Z,superseded",
        "261101000000Z,cessationOfOperation",
        "261101000000Z,certificateHold",
        "261101000000Z,removeFromCRL",
        "261101000000Z,keyTime,20261001000000Z",
        "261101000000Z,holdInstruction,holdInstructionReject",
        "20500101000000Z,keyCompromise",
    ]
    append_index_rows(
        pki,
        [
            [
                "R",
                "20600101000000Z",
                field,
                f"{0x7C00 + number:04X}",
                "unknown",
                f"/CN=entry {number}",
            ]
            for number, field in enumerate(fields)
        ],
    )


def test_show_crl_matches_openssl_text(pki_copy):
    pki = pki_copy(RSA_FIXTURE)
    add_varied_entries(pki)
    assert run_product(pki, "gen-crl").returncode == 0
    openssl = subprocess.run(
        ["openssl", "crl", "-in", str(pki / "crl.pem"), "-noout", "-text"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    result = run_product(pki, "show-crl")

    assert result.returncode == 0
    assert result.stdout.rstrip("\n") == openssl.stdout.rstrip("\n")
    assert str(pki / "crl.pem") in result.stderr


# --- vars files as data (D5) --------------------------------------------------


def write_vars(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vars"
    path.write_text(text)
    return path


def test_vars_set_var_values(reference_for, pki_copy, tmp_path):
    vars_file = write_vars(
        tmp_path, 'set_var EASYRSA_CRL_DAYS\t"45"\nset_var EASYRSA_DIGEST sha384\n'
    )

    pair = run_pair(
        reference_for("3.2.7"), pki_copy, RSA_FIXTURE, f"--vars={vars_file}", "gen-crl"
    )

    assert pair.ref.returncode == 0
    assert pair.py.returncode == 0, pair.py.stderr
    ref_crl, py_crl = (
        crl_summary(pair.ref_pki / "crl.pem"),
        crl_summary(pair.py_pki / "crl.pem"),
    )
    assert py_crl.lifetime.days == ref_crl.lifetime.days == 45
    assert (
        py_crl.signature_algorithm
        == ref_crl.signature_algorithm
        == "1.2.840.113549.1.1.12"
    )


def test_vars_30_guard_block(reference_for, pki_copy, tmp_path):
    example = Path(__file__).parent / "data" / "vars" / "vars.example-3.0.8"
    text = example.read_text()
    assert 'if [ -z "$EASYRSA_CALLER" ]; then' in text
    text = text.replace(
        "#set_var EASYRSA_CRL_DAYS\t180", "set_var EASYRSA_CRL_DAYS\t60"
    )
    vars_file = write_vars(tmp_path, text)

    pair = run_pair(
        reference_for("3.2.7"), pki_copy, RSA_FIXTURE, f"--vars={vars_file}", "gen-crl"
    )

    assert pair.ref.returncode == 0
    assert pair.py.returncode == 0, pair.py.stderr
    assert crl_summary(pair.ref_pki / "crl.pem").lifetime.days == 60
    assert crl_summary(pair.py_pki / "crl.pem").lifetime.days == 60


@pytest.mark.parametrize("options", [[], ["--force-vars"]], ids=["plain", "force-vars"])
def test_vars_passphrase_always_error(reference_for, pki_copy, tmp_path, options):
    vars_file = write_vars(tmp_path, "set_var EASYRSA_PASSIN pass:secret\n")

    pair = run_pair(
        reference_for("3.2.7"),
        pki_copy,
        RSA_FIXTURE,
        *options,
        f"--vars={vars_file}",
        "gen-crl",
    )

    assert pair.ref.returncode == 1
    assert pair.py.returncode == 1
    assert str(vars_file) in pair.py.stderr


def test_force_vars_skips_where_327_runs(reference_for, pki_copy, tmp_path):
    # easy-rsa 3.2.7's --force-vars warns and then sources the whole file,
    # so the export takes effect; easyrsa_py skips the line with a warning.
    vars_file = write_vars(tmp_path, "export EASYRSA_CRL_DAYS=30\n")

    pair = run_pair(
        reference_for("3.2.7"),
        pki_copy,
        RSA_FIXTURE,
        "--force-vars",
        f"--vars={vars_file}",
        "gen-crl",
    )

    assert pair.ref.returncode == 0
    assert pair.py.returncode == 0, pair.py.stderr
    assert crl_summary(pair.ref_pki / "crl.pem").lifetime.days == 30
    assert crl_summary(pair.py_pki / "crl.pem").lifetime.days == 180
    assert "export EASYRSA_CRL_DAYS=30" in pair.py.stderr


# --- the lock (D6 and the lock.file row) --------------------------------------


def hold_lock(pki: Path) -> None:
    (pki / "lock.file").write_text(f"{os.getpid()}\n")


def test_interactive_lock_never_removed(reference_for, pki_copy):
    # 3.2.7 offers to remove the lock, removes it after two 'yes', and exits 17.
    pair = run_pair(
        reference_for("3.2.7"),
        pki_copy,
        ED_FIXTURE,
        "gen-crl",
        prepare=hold_lock,
        batch=False,
        input="yes\nyes\n",
    )

    assert pair.ref.returncode == 17
    assert not (pair.ref_pki / "lock.file").exists()
    assert pair.py.returncode == 17
    assert (pair.py_pki / "lock.file").read_text() == f"{os.getpid()}\n"
    assert "still running" in pair.py.stderr


@pytest.mark.parametrize("version", ["3.1.0", "3.2.2"])
def test_old_versions_ignore_lock(reference_for, pki_copy, version):
    fixture = FIXTURE_310 if version == "3.1.0" else ED_FIXTURE
    pki = pki_copy(fixture)
    hold_lock(pki)

    result = reference_for(version).run(pki, "gen-crl", check=False)

    assert result.returncode == 0, ref_output(result)
    assert (pki / "lock.file").read_text() == f"{os.getpid()}\n"


COMMAND_ARGUMENTS = {
    "revoke": ["alice"],
    "revoke-issued": ["alice"],
    "revoke-expired": ["erin"],
    "revoke-renewed": ["carol"],
    "gen-crl": [],
    "show-crl": [],
    "update-db": [],
}


def test_lock_held_for_every_command(reference_for, pki_copy):
    reference = reference_for("3.2.7")
    calls = {}
    for command, arguments in COMMAND_ARGUMENTS.items():
        ref_pki, py_pki = pki_copy(RSA_FIXTURE), pki_copy(RSA_FIXTURE)
        hold_lock(ref_pki)
        hold_lock(py_pki)
        calls[f"3.2.7 {command}"] = lambda pki=ref_pki, args=[command, *arguments]: (
            reference.run(pki, *args, check=False)
        )
        calls[f"py {command}"] = lambda pki=py_pki, args=[command, *arguments]: (
            run_product(pki, *args)
        )

    codes = {label: result.returncode for label, result in run_parallel(calls).items()}

    assert codes == {label: 17 for label in calls}


def test_lock_file_content_matches_327(reference_for, pki_copy):
    # Each tool waits at its confirmation prompt, holding its lock.
    ref_pki, py_pki = pki_copy(ED_FIXTURE), pki_copy(ED_FIXTURE)
    script = reference_for("3.2.7").script_dir / "easyrsa"
    children = [
        subprocess.Popen(
            [str(script), "revoke", "alice"],
            cwd=ref_pki.parent,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=reference_env(ref_pki, ref_pki.parent, False, None),
        ),
        subprocess.Popen(
            product_command("revoke", "alice"),
            cwd=py_pki.parent,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=product_env(py_pki, py_pki.parent, batch=False),
        ),
    ]
    try:
        contents = [wait_for_lock(pki / "lock.file") for pki in (ref_pki, py_pki)]
    finally:
        for child in children:
            child.communicate("no\n", timeout=60)

    assert contents == [f"{child.pid}\n" for child in children]


def wait_for_lock(path: Path, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {seconds} seconds")


# --- CRL files (D9, crl.der) --------------------------------------------------


def share_crl_files(pki: Path) -> None:
    """Make both CRL files 0644 and, when the test runs as root, owned by nobody."""
    for name in ("crl.pem", "crl.der"):
        path = pki / name
        if path.exists():
            os.chmod(path, 0o644)
            if os.geteuid() == 0:
                os.chown(path, NOBODY, NOBODY)


def test_crl_der_keeps_mode_and_owner(reference_for, pki_copy):
    pair = run_pair(
        reference_for("3.2.7"), pki_copy, ED_FIXTURE, "gen-crl", prepare=share_crl_files
    )
    owner = NOBODY if os.geteuid() == 0 else os.geteuid()

    assert pair.py.returncode == 0, pair.py.stderr
    for pki in (pair.ref_pki, pair.py_pki):
        assert file_mode(pki / "crl.der") == 0o644, pki
        assert (pki / "crl.der").stat().st_uid == owner, pki


def test_crl_pem_owner_kept_against_310(reference_for, pki_copy):
    # D9: 3.1.0 moves a new file over crl.pem, owned by the user who ran it.
    pair = run_pair(
        reference_for("3.1.0"),
        pki_copy,
        FIXTURE_310,
        "gen-crl",
        prepare=share_crl_files,
    )
    owner = NOBODY if os.geteuid() == 0 else os.geteuid()

    assert pair.py.returncode == 0, pair.py.stderr
    assert file_mode(pair.ref_pki / "crl.pem") == 0o600
    assert (pair.ref_pki / "crl.pem").stat().st_uid == os.geteuid()
    assert file_mode(pair.py_pki / "crl.pem") == 0o644
    assert (pair.py_pki / "crl.pem").stat().st_uid == owner


# --- names as file name bases (D13) -------------------------------------------


def test_newline_name_rejected(reference_for, pki_copy):
    name = "ali\nce"
    pair = run_pair(
        reference_for("3.2.7"),
        pki_copy,
        RSA_FIXTURE,
        "revoke",
        name,
        prepare=lambda pki: shutil.copy2(
            pki / "issued" / "alice.crt", pki / "issued" / f"{name}.crt"
        ),
    )

    assert pair.ref.returncode == 0
    assert pair.py.returncode == 1
    assert repr(name) in pair.py.stderr
    assert (pair.py_pki / "issued" / f"{name}.crt").is_file()


def test_nul_name_rejected():
    # A command line cannot carry NUL, so the check is called directly.
    with pytest.raises(UsageError):
        check_file_name_base("ali\0ce")
