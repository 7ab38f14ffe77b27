"""The command line: help, version, exit codes, batch and silent modes, how
the PKI folder is chosen, and the umask for new files.

Each case runs `python -m easyrsa_py` as a user would. Where easy-rsa defines
the behaviour (exit codes, which PKI wins, file modes), the real 3.2.7 runs
the same case and easyrsa_py must agree with it.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from pkitools import crl_summary, pki_state, read_index, run_product
from reference import reference_env

IMPLEMENTED = ("revoke", "revoke-issued", "revoke-expired", "revoke-renewed",
               "gen-crl", "show-crl", "update-db")
# Runs a command under umask 002, so --noumask visibly keeps the caller's umask.
UMASK_002 = ("sh", "-c", 'umask 002; exec "$0" "$@"')
NOBODY = 65534


def run_reference_env(
    reference, pki_env: Mapping[str, str | None], *args: str, cwd: Path,
    prefix: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Run the real script with EASYRSA_PKI set, changed or removed as given."""
    env = reference_env(cwd, cwd, True, None)
    env.pop("EASYRSA_PKI")
    env.update({name: value for name, value in pki_env.items() if value is not None})
    return subprocess.run(
        [*prefix, str(reference.script_dir / "easyrsa"), *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def crl_changed(pki: Path, original: bytes) -> bool:
    return (pki / "crl.pem").read_bytes() != original


# --- help and version -----------------------------------------------------------


def test_help_lists_commands(tmp_path):
    result = run_product(tmp_path / "pki", "help")

    assert result.returncode == 0
    for command in IMPLEMENTED:
        assert command in result.stdout


def test_no_command_shows_help(tmp_path):
    result = run_product(tmp_path / "pki")

    assert result.returncode == 0
    assert "gen-crl" in result.stdout


@pytest.mark.parametrize("spelling", ["-h", "--help", "--usage"])
def test_help_options(tmp_path, spelling):
    result = run_product(tmp_path / "pki", spelling)

    assert result.returncode == 0
    assert "revoke" in result.stdout


@pytest.mark.parametrize("command", IMPLEMENTED)
def test_help_command(tmp_path, command):
    result = run_product(tmp_path / "pki", "help", command)

    assert result.returncode == 0
    assert command in result.stdout


def test_help_revoke_lists_reasons(tmp_path):
    result = run_product(tmp_path / "pki", "help", "revoke")

    for reason in ("unspecified", "keyCompromise", "CACompromise", "affiliationChanged",
                   "superseded", "cessationOfOperation", "certificateHold"):
        assert reason in result.stdout


def test_help_unknown_command(tmp_path, reference_for):
    reference = run_reference_env(reference_for("3.2.7"), {}, "help", "frobnicate", cwd=tmp_path)

    result = run_product(tmp_path / "pki", "help", "frobnicate")

    assert result.returncode == reference.returncode == 1
    assert "'frobnicate'" in result.stderr


@pytest.mark.parametrize("spelling", ["--version", "version"])
def test_version(tmp_path, spelling):
    result = run_product(tmp_path / "pki", spelling)

    assert result.returncode == 0
    assert "easyrsa_py" in result.stdout
    assert "3.2.7" in result.stdout


def test_unknown_command(tmp_path, reference_for):
    reference = run_reference_env(reference_for("3.2.7"), {}, "frobnicate", cwd=tmp_path)

    result = run_product(tmp_path / "pki", "frobnicate")

    assert result.returncode == reference.returncode == 1
    assert "Unknown command 'frobnicate'" in result.stderr


@pytest.mark.parametrize("command", ["upgrade"])
def test_command_not_yet_implemented(pki_copy, command):
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)

    result = run_product(pki, command, "alice")

    assert result.returncode == 1
    assert f"'{command}' is an easy-rsa command that easyrsa_py does not implement yet" in result.stderr
    assert "Run the real easy-rsa script for it" in result.stderr
    assert pki_state(pki) == before


def test_unknown_option(tmp_path, reference_for):
    reference = run_reference_env(reference_for("3.2.7"), {}, "--frobnicate", "gen-crl", cwd=tmp_path)

    result = run_product(tmp_path / "pki", "--frobnicate", "gen-crl")

    assert result.returncode == reference.returncode == 1
    assert "'--frobnicate'" in result.stderr


def test_unknown_option_help_hint_works(tmp_path):
    # The error names a help command, which must itself succeed.
    result = run_product(tmp_path / "pki", "--frobnicate", "gen-crl")
    hint = result.stderr.split("Run '", 1)[1].split("'", 1)[0]
    words = hint.split()[1:]

    followed = run_product(tmp_path / "pki", *words)

    assert followed.returncode == 0, f"'{hint}' failed: {followed.stderr}"


@pytest.mark.parametrize("option", ["--days", "--days=", "--days=abc", "--days=-1", "--pki="])
def test_invalid_option_value(tmp_path, reference_for, option):
    reference = run_reference_env(reference_for("3.2.7"), {}, option, "gen-crl", cwd=tmp_path)

    result = run_product(tmp_path / "pki", option, "gen-crl")

    assert result.returncode == reference.returncode == 1
    assert option.split("=")[0] in result.stderr


# --- batch and silent -----------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "0", "no", "false", "yes", " "])
def test_batch_variable_any_value(pki_copy, value):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, "revoke", "alice", batch=False,
                         env={"EASYRSA_BATCH": value}, input="")

    assert result.returncode == 0, result.stderr
    assert "Continue with revocation" not in result.stderr
    assert not (pki / "issued" / "alice.crt").exists()


def test_batch_variable_empty_asks(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)

    result = run_product(pki, "revoke", "alice", batch=False,
                         env={"EASYRSA_BATCH": ""}, input="")

    assert result.returncode == 1
    assert "Continue with revocation" in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize("spelling", ["-b", "--batch"])
def test_batch_option(pki_copy, spelling):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, spelling, "revoke", "alice", batch=False, input="")

    assert result.returncode == 0, result.stderr
    assert not (pki / "issued" / "alice.crt").exists()


@pytest.mark.parametrize("spelling", ["-s", "--silent"])
def test_silent_gen_crl(pki_copy, reference_for, spelling):
    ref_pki, py_pki = pki_copy("v3.2.7-rsa"), pki_copy("v3.2.7-rsa")
    reference = reference_for("3.2.7").run(ref_pki, spelling, "gen-crl")

    result = run_product(py_pki, spelling, "gen-crl")

    assert reference.stdout == ""
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == ""


def test_silent_batch_revoke(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, "--sb", "revoke", "alice", batch=False, input="")

    assert result.returncode == 0
    assert result.stderr == ""
    assert not (pki / "issued" / "alice.crt").exists()


def test_silent_still_shows_errors(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, "--silent", "revoke", "nobody")

    assert result.returncode == 1
    assert "nobody" in result.stderr


def test_show_crl_output_on_stdout(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, "--silent", "show-crl")

    assert result.returncode == 0
    assert "Certificate Revocation List" in result.stdout
    assert "E418CF9C1447DC5887B3B888C0AA231F" in result.stdout


# --- which PKI folder ---------------------------------------------------------------


@pytest.fixture
def three_pkis(pki_copy, tmp_path):
    """Three copies of one PKI and a vars file that names the third."""
    pkis = [pki_copy("v3.2.7-ed25519") for _ in range(3)]
    vars_file = tmp_path / "vars"
    vars_file.write_text(f'set_var EASYRSA_PKI "{pkis[2]}"\n')
    return pkis, vars_file


PKI_CASES = {
    # case: (option, use the environment, expected winner)
    "option over environment and vars": ("--pki", True, 0),
    "alias over environment and vars": ("--pki-dir", True, 0),
    "environment over vars": (None, True, 1),
    "vars alone": (None, False, 2),
}


@pytest.mark.parametrize("case", sorted(PKI_CASES))
def test_pki_precedence(three_pkis, reference_for, tmp_path, case):
    option, use_env, winner = PKI_CASES[case]
    pkis, vars_file = three_pkis
    originals = [(pki / "crl.pem").read_bytes() for pki in pkis]
    args = [f"--vars={vars_file}"]
    if option:
        args.append(f"{option}={pkis[0]}")
    env = {"EASYRSA_PKI": str(pkis[1]) if use_env else None}

    result = run_product(pkis[0], *args, "gen-crl", env=env)

    assert result.returncode == 0, result.stderr
    changed = [crl_changed(pki, original) for pki, original in zip(pkis, originals)]
    assert changed == [position == winner for position in range(3)]
    # The real script, run on the restored copies, picks the same folder.
    for pki, original in zip(pkis, originals):
        (pki / "crl.pem").write_bytes(original)
    reference = run_reference_env(reference_for("3.2.7"), env, *args, "gen-crl", cwd=tmp_path)
    assert reference.returncode == 0, reference.stdout
    assert [crl_changed(pki, original) for pki, original in zip(pkis, originals)] == changed


def test_pki_default_in_working_folder(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")
    original = (pki / "crl.pem").read_bytes()

    result = run_product(pki, "gen-crl", env={"EASYRSA_PKI": None}, cwd=pki.parent)

    assert result.returncode == 0, result.stderr
    assert crl_changed(pki, original)


# --- umask and modes ----------------------------------------------------------------


UMASK_CASES = {
    # case: (options, environment, expected mode of a new crl.der)
    "default 077": ([], {}, 0o600),
    "option 022": (["--umask=022"], {}, 0o644),
    "variable 027": ([], {"EASYRSA_UMASK": "027"}, 0o640),
    "noumask keeps shell 002": (["--noumask"], {}, 0o664),
    "no-umask variable": ([], {"EASYRSA_NO_UMASK": "1"}, 0o664),
}


def prepare_crl_files(pki: Path) -> None:
    """Remove crl.der so it is created fresh, and give crl.pem a distinct mode and owner."""
    (pki / "crl.der").unlink()
    os.chmod(pki / "crl.pem", 0o644)
    if os.geteuid() == 0:
        os.chown(pki / "crl.pem", NOBODY, NOBODY)


@pytest.mark.parametrize("case", sorted(UMASK_CASES))
def test_umask_new_crl_der(pki_copy, reference_for, case):
    options, env, expected = UMASK_CASES[case]
    ref_pki, py_pki = pki_copy("v3.2.7-ed25519"), pki_copy("v3.2.7-ed25519")
    prepare_crl_files(ref_pki)
    prepare_crl_files(py_pki)
    reference_for("3.2.7").run(ref_pki, *options, "gen-crl", env=env, prefix=UMASK_002)

    result = run_product(py_pki, *options, "gen-crl", env=env, prefix=UMASK_002)

    assert result.returncode == 0, result.stderr
    assert file_mode(ref_pki / "crl.der") == expected
    assert file_mode(py_pki / "crl.der") == expected


@pytest.mark.parametrize("case", sorted(UMASK_CASES))
def test_umask_keeps_crl_pem(pki_copy, case):
    options, env, _ = UMASK_CASES[case]
    pki = pki_copy("v3.2.7-ed25519")
    prepare_crl_files(pki)
    owner = (pki / "crl.pem").stat().st_uid

    result = run_product(pki, *options, "gen-crl", env=env, prefix=UMASK_002)

    assert result.returncode == 0, result.stderr
    assert file_mode(pki / "crl.pem") == 0o644
    assert (pki / "crl.pem").stat().st_uid == owner
    assert crl_summary(pki / "crl.pem").lifetime.days == 180


def test_umask_new_revoked_files(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")
    serial = [row[3] for row in read_index(pki) if row[5] == "/CN=alice"][0]

    result = run_product(pki, "--umask=022", "revoke", "alice")

    assert result.returncode == 0, result.stderr
    # Moved files keep their 0600 mode whatever the umask.
    assert file_mode(pki / "revoked" / "certs_by_serial" / f"{serial}.crt") == 0o600


def test_umask_invalid(tmp_path, reference_for):
    reference = run_reference_env(reference_for("3.2.7"), {}, "--umask=999", "gen-crl", cwd=tmp_path)

    result = run_product(tmp_path / "pki", "--umask=999", "gen-crl")

    assert result.returncode == reference.returncode == 1
    assert "999" in result.stderr


@pytest.mark.parametrize("setting", [("--days=0",), ()])
def test_gen_crl_zero_days_rejected(pki_copy, setting):
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    env = {} if setting else {"EASYRSA_CRL_DAYS": "0"}

    result = run_product(pki, *setting, "gen-crl", env=env)

    assert result.returncode == 1
    assert "0 days" in result.stderr or "--days=0" in result.stderr
    assert pki_state(pki) == before


def test_option_after_command_hint(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, "gen-crl", "--days=30")

    assert result.returncode == 1
    assert "Options go before the command" in result.stderr
