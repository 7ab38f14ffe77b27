"""Tests for easyrsa_py.settings: merging defaults, vars, environment, options."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from easyrsa_py.errors import UsageError, VarsError
from easyrsa_py.settings import DEFAULT_NS_COMMENT, build_settings


def write_vars(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vars"
    path.write_text(text)
    return path


# --- defaults ---------------------------------------------------------------


def test_defaults_without_vars(tmp_path: Path):
    settings = build_settings({}, {}, tmp_path)
    assert settings.easyrsa_dir == tmp_path
    assert settings.pki_dir == tmp_path / "pki"
    assert settings.temp_dir == tmp_path / "pki"
    assert settings.vars_file is None
    assert settings.digest == "sha256"
    assert settings.crl_days == 180
    assert settings.cert_expire == 825
    assert settings.ca_expire == 3650
    assert settings.pre_expiry_window == 90
    assert settings.umask == 0o077
    assert settings.algo == "rsa"
    assert settings.key_size == 2048
    assert settings.curve is None
    assert settings.dn_mode == "cn_only"
    assert settings.req_cn == "ChangeMe"
    assert settings.ns_comment == DEFAULT_NS_COMMENT
    assert settings.batch is False
    assert settings.passin is None


def test_defaults_raw_values(tmp_path: Path):
    raw = build_settings({}, {}, tmp_path).raw
    assert raw["EASYRSA_PKI"] == f"{tmp_path}/pki"
    assert raw["EASYRSA_REQ_SERIAL"] == ""
    assert "PWD" not in raw


@pytest.mark.parametrize(("algo", "curve"), [("ec", "secp384r1"), ("ed", "ed25519")])
def test_default_curve_per_algo(tmp_path: Path, algo: str, curve: str):
    settings = build_settings({"EASYRSA_ALGO": algo}, {}, tmp_path)
    assert settings.curve == curve


def test_curve_option_chooses_algo(tmp_path: Path):
    settings = build_settings({"EASYRSA_CURVE": "ed448"}, {}, tmp_path)
    assert settings.algo == "ed"
    assert settings.curve == "ed448"


def test_curve_option_keeps_environment_algo(tmp_path: Path):
    settings = build_settings(
        {"EASYRSA_CURVE": "prime256v1"}, {"EASYRSA_ALGO": "rsa"}, tmp_path
    )
    assert settings.algo == "rsa"


def test_pki_default_follows_easyrsa(tmp_path: Path):
    settings = build_settings({}, {"EASYRSA": "base"}, tmp_path)
    assert settings.easyrsa_dir == tmp_path / "base"
    assert settings.pki_dir == tmp_path / "base" / "pki"


# --- precedence -------------------------------------------------------------


def test_vars_over_defaults(tmp_path: Path):
    write_vars(tmp_path, "set_var EASYRSA_CRL_DAYS 30\n")
    settings = build_settings({}, {}, tmp_path)
    assert settings.crl_days == 30
    assert settings.vars_file == tmp_path / "vars"


def test_environment_over_vars(tmp_path: Path):
    write_vars(tmp_path, "set_var EASYRSA_CRL_DAYS 30\n")
    settings = build_settings({}, {"EASYRSA_CRL_DAYS": "60"}, tmp_path)
    assert settings.crl_days == 60


def test_option_over_environment(tmp_path: Path):
    settings = build_settings(
        {"EASYRSA_DIGEST": "sha512"}, {"EASYRSA_DIGEST": "sha384"}, tmp_path
    )
    assert settings.digest == "sha512"


def test_option_over_vars(tmp_path: Path):
    write_vars(tmp_path, "set_var EASYRSA_KEY_SIZE 4096\n")
    settings = build_settings({"EASYRSA_KEY_SIZE": "3072"}, {}, tmp_path)
    assert settings.key_size == 3072


def test_force_set_var_over_option(tmp_path: Path):
    write_vars(tmp_path, "force_set_var EASYRSA_KEY_SIZE 4096\n")
    settings = build_settings(
        {"EASYRSA_KEY_SIZE": "3072"}, {"EASYRSA_KEY_SIZE": "1024"}, tmp_path
    )
    assert settings.key_size == 4096


def test_days_option_over_force_set_var(tmp_path: Path):
    write_vars(tmp_path, "force_set_var EASYRSA_CERT_EXPIRE 10\n")
    settings = build_settings({"EASYRSA_CERT_EXPIRE": "20"}, {}, tmp_path)
    assert settings.cert_expire == 20


def test_force_set_var_clears_environment(tmp_path: Path):
    write_vars(tmp_path, 'force_set_var EASYRSA_BATCH ""\n')
    settings = build_settings({}, {"EASYRSA_BATCH": "1"}, tmp_path)
    assert settings.batch is False
    assert "EASYRSA_BATCH" not in settings.raw


def test_vars_sees_options(tmp_path: Path):
    write_vars(tmp_path, 'set_var EASYRSA_REQ_ORG "Org of $EASYRSA_REQ_CN"\n')
    settings = build_settings({"EASYRSA_REQ_CN": "alice"}, {}, tmp_path)
    assert settings.req_org == "Org of alice"


def test_vars_sees_pwd_as_cwd(tmp_path: Path):
    write_vars(tmp_path, 'set_var EASYRSA_PKI "$PWD/other"\n')
    settings = build_settings({}, {"PWD": "/elsewhere"}, tmp_path)
    assert settings.pki_dir == tmp_path / "other"


@pytest.mark.parametrize("value", ["1", "yes", "0"])
def test_batch_any_non_empty(tmp_path: Path, value: str):
    assert build_settings({}, {"EASYRSA_BATCH": value}, tmp_path).batch is True


def test_batch_empty_is_off(tmp_path: Path):
    assert build_settings({}, {"EASYRSA_BATCH": ""}, tmp_path).batch is False


def test_passphrases_from_options(tmp_path: Path):
    settings = build_settings(
        {"EASYRSA_PASSIN": "pass:in", "EASYRSA_PASSOUT": "pass:out"}, {}, tmp_path
    )
    assert settings.passin == "pass:in"
    assert settings.passout == "pass:out"
    assert "EASYRSA_PASSIN" not in settings.raw
    assert "pass:in" not in repr(settings)


# --- umask ------------------------------------------------------------------


def test_umask_option(tmp_path: Path):
    assert build_settings({"EASYRSA_UMASK": "022"}, {}, tmp_path).umask == 0o022


def test_no_umask(tmp_path: Path):
    settings = build_settings(
        {"EASYRSA_NO_UMASK": "1"}, {"EASYRSA_UMASK": "022"}, tmp_path
    )
    assert settings.umask is None


def test_umask_from_vars_ignored(tmp_path: Path):
    write_vars(tmp_path, "set_var EASYRSA_UMASK 022\n")
    assert build_settings({}, {}, tmp_path).umask == 0o077


@pytest.mark.parametrize("value", ["8", "abc", "07777", "-1"])
def test_umask_invalid(tmp_path: Path, value: str):
    with pytest.raises(UsageError, match=f"Invalid EASYRSA_UMASK '{value}'"):
        build_settings({"EASYRSA_UMASK": value}, {}, tmp_path)


# --- force-vars -------------------------------------------------------------


def test_force_vars_option_skips_lines(tmp_path: Path):
    write_vars(tmp_path, "export X=1\nset_var EASYRSA_CRL_DAYS 7\n")
    settings = build_settings({"EASYRSA_FORCE_VARS": "1"}, {}, tmp_path)
    assert settings.force_vars is True
    assert settings.crl_days == 7
    assert settings.vars_ignored[0].startswith("line 1:")


def test_force_vars_environment_ignored(tmp_path: Path):
    write_vars(tmp_path, "export X=1\n")
    with pytest.raises(VarsError, match="line 1"):
        build_settings({}, {"EASYRSA_FORCE_VARS": "1"}, tmp_path)


# --- vars search order ------------------------------------------------------


def test_search_prefers_pki_env_vars(tmp_path: Path):
    pki = tmp_path / "mypki"
    write_vars(pki, "")
    write_vars(tmp_path / "base", "")
    write_vars(tmp_path, "")
    settings = build_settings(
        {}, {"EASYRSA_PKI": str(pki), "EASYRSA": "base"}, tmp_path
    )
    assert settings.vars_file == pki / "vars"


def test_search_then_easyrsa_vars(tmp_path: Path):
    write_vars(tmp_path / "base", "")
    write_vars(tmp_path, "")
    settings = build_settings({"EASYRSA_PKI": "nopki"}, {"EASYRSA": "base"}, tmp_path)
    assert settings.vars_file == tmp_path / "base" / "vars"


def test_search_then_default_pki_vars(tmp_path: Path):
    write_vars(tmp_path / "pki", "")
    write_vars(tmp_path, "")
    settings = build_settings({}, {}, tmp_path)
    assert settings.vars_file == tmp_path / "pki" / "vars"


def test_search_skips_default_pki_when_pki_set(tmp_path: Path):
    write_vars(tmp_path / "pki", "")
    write_vars(tmp_path, "")
    settings = build_settings({"EASYRSA_PKI": "elsewhere"}, {}, tmp_path)
    assert settings.vars_file == tmp_path / "vars"


def test_search_finds_nothing(tmp_path: Path):
    (tmp_path / "pki").mkdir()
    assert build_settings({}, {}, tmp_path).vars_file is None


def test_search_ignores_folder_named_vars(tmp_path: Path):
    (tmp_path / "vars").mkdir()
    assert build_settings({}, {}, tmp_path).vars_file is None


def test_explicit_vars_file_used_alone(tmp_path: Path):
    write_vars(tmp_path / "pki", "set_var EASYRSA_CRL_DAYS 1\n")
    chosen = tmp_path / "my.vars"
    chosen.write_text("set_var EASYRSA_CRL_DAYS 2\n")
    settings = build_settings({"EASYRSA_VARS_FILE": "my.vars"}, {}, tmp_path)
    assert settings.vars_file == chosen
    assert settings.crl_days == 2


def test_explicit_vars_file_missing(tmp_path: Path):
    with pytest.raises(VarsError, match="Missing vars file") as caught:
        build_settings({"EASYRSA_VARS_FILE": "absent"}, {}, tmp_path)
    assert caught.value.path == tmp_path / "absent"


def test_no_vars_wins(tmp_path: Path):
    write_vars(tmp_path, "set_var EASYRSA_CRL_DAYS 1\n")
    settings = build_settings(
        {"EASYRSA_NO_VARS": "1", "EASYRSA_VARS_FILE": "vars"}, {}, tmp_path
    )
    assert settings.vars_file is None
    assert settings.crl_days == 180


# --- the default pki/vars guard ---------------------------------------------


def test_default_pki_vars_may_not_move_pki(tmp_path: Path):
    write_vars(tmp_path / "pki", "set_var EASYRSA_PKI /srv/other\n")
    with pytest.raises(VarsError) as caught:
        build_settings({}, {}, tmp_path)
    message = str(caught.value)
    assert "EASYRSA_PKI is '/srv/other'" in message
    assert f"expected '{tmp_path}/pki'" in message
    assert "--pki-dir" in message


def test_default_pki_vars_may_not_move_easyrsa(tmp_path: Path):
    write_vars(tmp_path / "pki", f"set_var EASYRSA {tmp_path}/pki\n")
    with pytest.raises(VarsError, match="EASYRSA is "):
        build_settings({}, {}, tmp_path)


def test_default_pki_vars_compares_text(tmp_path: Path):
    write_vars(tmp_path / "pki", "set_var EASYRSA_PKI pki\n")
    with pytest.raises(VarsError, match="EASYRSA_PKI is 'pki'"):
        build_settings({}, {}, tmp_path)


def test_default_pki_vars_same_pki_allowed(tmp_path: Path):
    write_vars(tmp_path / "pki", 'set_var EASYRSA_PKI "$PWD/pki"\n')
    assert build_settings({}, {}, tmp_path).pki_dir == tmp_path / "pki"


def test_other_vars_may_move_pki(tmp_path: Path):
    write_vars(tmp_path, "set_var EASYRSA_PKI /srv/other\n")
    assert build_settings({}, {}, tmp_path).pki_dir == Path("/srv/other")


# --- validation -------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "EASYRSA_CRL_DAYS",
        "EASYRSA_CERT_EXPIRE",
        "EASYRSA_CA_EXPIRE",
        "EASYRSA_PRE_EXPIRY_WINDOW",
        "EASYRSA_KEY_SIZE",
    ],
)
def test_number_from_option_invalid(tmp_path: Path, name: str):
    with pytest.raises(UsageError) as caught:
        build_settings({name: "12x"}, {}, tmp_path)
    assert f"Invalid {name} '12x' from the command line" in str(caught.value)


def test_number_from_environment_invalid(tmp_path: Path):
    with pytest.raises(UsageError, match="'ten' from the environment"):
        build_settings({}, {"EASYRSA_CRL_DAYS": "ten"}, tmp_path)


def test_number_from_vars_invalid(tmp_path: Path):
    path = write_vars(tmp_path, "set_var EASYRSA_CRL_DAYS ten\n")
    with pytest.raises(VarsError) as caught:
        build_settings({}, {}, tmp_path)
    assert caught.value.path == path
    assert "Invalid EASYRSA_CRL_DAYS 'ten' from the vars file" in str(caught.value)


def test_zero_days_allowed(tmp_path: Path):
    assert build_settings({"EASYRSA_CERT_EXPIRE": "0"}, {}, tmp_path).cert_expire == 0


def test_zero_key_size_invalid(tmp_path: Path):
    with pytest.raises(UsageError, match="at least 1"):
        build_settings({"EASYRSA_KEY_SIZE": "0"}, {}, tmp_path)


def test_algo_invalid(tmp_path: Path):
    with pytest.raises(UsageError, match="Invalid EASYRSA_ALGO 'dsa'"):
        build_settings({"EASYRSA_ALGO": "dsa"}, {}, tmp_path)


def test_algo_from_vars_invalid(tmp_path: Path):
    write_vars(tmp_path, "set_var EASYRSA_ALGO RSA\n")
    with pytest.raises(VarsError, match="'rsa', 'ec', 'ed'"):
        build_settings({}, {}, tmp_path)


def test_dn_mode_invalid(tmp_path: Path):
    with pytest.raises(UsageError, match="Invalid EASYRSA_DN 'full'"):
        build_settings({"EASYRSA_DN": "full"}, {}, tmp_path)


def test_empty_digest_invalid(tmp_path: Path):
    with pytest.raises(UsageError, match="EASYRSA_DIGEST"):
        build_settings({"EASYRSA_DIGEST": ""}, {}, tmp_path)


def test_empty_pki_uses_default(tmp_path: Path):
    settings = build_settings({}, {"EASYRSA_PKI": ""}, tmp_path)
    assert settings.pki_dir == tmp_path / "pki"


# --- the real easy-rsa 3.2.7 agrees -------------------------------------------


@pytest.fixture(scope="module")
def easyrsa_327() -> Path:
    """The real easy-rsa 3.2.7 script, located by tests/reference.py."""
    from reference import ReferenceNotFound, is_ci, reference_easyrsa

    try:
        return reference_easyrsa("3.2.7") / "easyrsa"
    except ReferenceNotFound as error:
        if is_ci():
            raise
        pytest.skip(str(error))


def run_real(
    script: Path, cwd: Path, extra: dict[str, str], *options: str
) -> tuple[int, dict[str, str], str]:
    """Run 'show-host' with EASYRSA_DEBUG, which prints the environment after vars.

    Returns the exit code, the EASYRSA_* values shown and the whole output.
    """
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "EASYRSA_BATCH": "1",
        "EASYRSA_DEBUG": "1",
        **extra,
    }
    completed = subprocess.run(
        [str(script), *options, "show-host"],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = completed.stdout + completed.stderr
    values = dict(re.findall(r"^(EASYRSA\w*)=(.*)$", completed.stdout, re.MULTILINE))
    return completed.returncode, values, output


COMPARED = (
    "EASYRSA",
    "EASYRSA_PKI",
    "EASYRSA_TEMP_DIR",
    "EASYRSA_DIGEST",
    "EASYRSA_CRL_DAYS",
    "EASYRSA_CERT_EXPIRE",
    "EASYRSA_KEY_SIZE",
    "EASYRSA_ALGO",
    "EASYRSA_CURVE",
    "EASYRSA_REQ_ORG",
    "EASYRSA_DN",
)


def assert_same_values(real: dict[str, str], raw: dict[str, str]) -> None:
    for name in COMPARED:
        assert real.get(name) == raw.get(name), name


@pytest.mark.reference
def test_real_search_order(easyrsa_327: Path, tmp_path: Path):
    write_vars(tmp_path / "pki", "set_var EASYRSA_REQ_ORG from-pki\n")
    write_vars(tmp_path, "set_var EASYRSA_REQ_ORG from-cwd\n")

    code, real, output = run_real(easyrsa_327, tmp_path, {})
    settings = build_settings({}, {"HOME": str(tmp_path)}, tmp_path)

    assert code == 0, output
    assert real["EASYRSA_VARS_FILE"] == str(settings.vars_file)
    assert_same_values(real, dict(settings.raw))


@pytest.mark.reference
def test_real_search_with_pki_dir(easyrsa_327: Path, tmp_path: Path):
    write_vars(tmp_path / "pki", "set_var EASYRSA_REQ_ORG from-pki\n")
    write_vars(tmp_path / "other", "set_var EASYRSA_REQ_ORG from-other\n")
    write_vars(tmp_path, "set_var EASYRSA_REQ_ORG from-cwd\n")
    pki = str(tmp_path / "other")

    code, real, output = run_real(easyrsa_327, tmp_path, {}, f"--pki-dir={pki}")
    settings = build_settings({"EASYRSA_PKI": pki}, {"HOME": str(tmp_path)}, tmp_path)

    assert code == 0, output
    assert real["EASYRSA_VARS_FILE"] == str(settings.vars_file)
    assert_same_values(real, dict(settings.raw))


@pytest.mark.reference
def test_real_precedence(easyrsa_327: Path, tmp_path: Path):
    write_vars(
        tmp_path,
        "set_var EASYRSA_DIGEST sha384\n"
        "set_var EASYRSA_CRL_DAYS 11\n"
        "force_set_var EASYRSA_KEY_SIZE 4096\n"
        'set_var EASYRSA_REQ_ORG "Org $EASYRSA_DN"\n'
        "set_var EASYRSA_ALGO ec\n",
    )
    environ = {"EASYRSA_CRL_DAYS": "22", "EASYRSA_DN": "org"}
    options = {"EASYRSA_KEY_SIZE": "3072", "EASYRSA_DIGEST": "sha512"}

    code, real, output = run_real(
        easyrsa_327, tmp_path, environ, "--keysize=3072", "--digest=sha512"
    )
    settings = build_settings(options, {**environ, "HOME": str(tmp_path)}, tmp_path)

    assert code == 0, output
    assert_same_values(real, dict(settings.raw))
    assert settings.key_size == 4096
    assert settings.digest == "sha512"
    assert settings.crl_days == 22
    assert settings.curve == "secp384r1"


@pytest.mark.reference
def test_real_pki_vars_guard(easyrsa_327: Path, tmp_path: Path):
    write_vars(tmp_path / "pki", "set_var EASYRSA_PKI /srv/other\n")

    code, _, output = run_real(easyrsa_327, tmp_path, {})

    assert code != 0
    assert "default pki/vars file is forbidden" in output
    with pytest.raises(VarsError):
        build_settings({}, {}, tmp_path)
