"""Tests for easyrsa_py.keys: generation, PEM form, passphrases, load and write."""

from __future__ import annotations

import getpass
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from easyrsa_py import keys, passphrase
from easyrsa_py.console import Console
from easyrsa_py.errors import FileFormatError, PassphraseError, UsageError
from easyrsa_py.settings import Settings, build_settings


def make_settings(tmp_path: Path, **options: str) -> Settings:
    environ = {"EASYRSA_NO_VARS": "1", "EASYRSA_PKI": str(tmp_path / "pki")}
    return build_settings(options, environ, tmp_path)


def asn1_objects(pem: bytes) -> list[str]:
    """Return the OBJECT and INTEGER values that `openssl asn1parse` shows."""
    result = subprocess.run(
        ["openssl", "asn1parse"], input=pem, capture_output=True, check=True
    )
    values = []
    for line in result.stdout.decode().splitlines():
        if "prim: OBJECT" in line or "prim: INTEGER" in line:
            values.append(line.rsplit(":", 1)[1].strip())
    return values


# --- generate_private_key ---------------------------------------------------


def test_generate_rsa_default_2048(tmp_path: Path) -> None:
    key = keys.generate_private_key(make_settings(tmp_path))
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert key.private_numbers().public_numbers.e == 65537


def test_generate_rsa_keysize(tmp_path: Path) -> None:
    key = keys.generate_private_key(make_settings(tmp_path, EASYRSA_KEY_SIZE="1024"))
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 1024


@pytest.mark.parametrize("size", ["512", "1023", "16385"])
def test_generate_rsa_size_out_of_range(tmp_path: Path, size: str) -> None:
    settings = make_settings(tmp_path, EASYRSA_KEY_SIZE=size)
    with pytest.raises(UsageError, match=f"Invalid RSA key size {size}"):
        keys.generate_private_key(settings)


def test_generate_rsa_with_curve_rejected(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, EASYRSA_ALGO="rsa", EASYRSA_CURVE="secp384r1")
    with pytest.raises(UsageError, match="cannot be used with algo 'rsa'"):
        keys.generate_private_key(settings)


def test_generate_ec_default_secp384r1(tmp_path: Path) -> None:
    key = keys.generate_private_key(make_settings(tmp_path, EASYRSA_ALGO="ec"))
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp384r1"


@pytest.mark.parametrize(
    ("curve", "expected"),
    [
        ("prime256v1", "secp256r1"),
        ("secp256r1", "secp256r1"),
        ("P-256", "secp256r1"),
        ("secp521r1", "secp521r1"),
        ("brainpoolP256r1", "brainpoolP256r1"),
    ],
)
def test_generate_ec_curve_names(tmp_path: Path, curve: str, expected: str) -> None:
    settings = make_settings(tmp_path, EASYRSA_ALGO="ec", EASYRSA_CURVE=curve)
    key = keys.generate_private_key(settings)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == expected


def test_generate_ec_unknown_curve(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, EASYRSA_ALGO="ec", EASYRSA_CURVE="nosuchcurve")
    with pytest.raises(UsageError, match="Unknown elliptic curve 'nosuchcurve'"):
        keys.generate_private_key(settings)


def test_generate_ed_default_ed25519(tmp_path: Path) -> None:
    key = keys.generate_private_key(make_settings(tmp_path, EASYRSA_ALGO="ed"))
    assert isinstance(key, ed25519.Ed25519PrivateKey)


def test_generate_ed448_any_case(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, EASYRSA_ALGO="ed", EASYRSA_CURVE="ED448")
    assert isinstance(keys.generate_private_key(settings), ed448.Ed448PrivateKey)


def test_generate_curve_alone_selects_ed(tmp_path: Path) -> None:
    key = keys.generate_private_key(make_settings(tmp_path, EASYRSA_CURVE="ed448"))
    assert isinstance(key, ed448.Ed448PrivateKey)


def test_generate_ed_unknown_curve(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, EASYRSA_ALGO="ed", EASYRSA_CURVE="secp384r1")
    with pytest.raises(UsageError, match="Unknown Edwards curve 'secp384r1'"):
        keys.generate_private_key(settings)


# --- private_key_pem --------------------------------------------------------


def test_pem_unencrypted_is_pkcs8() -> None:
    pem = keys.private_key_pem(ed25519.Ed25519PrivateKey.generate(), None)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert serialization.load_pem_private_key(pem, None) is not None


def test_pem_encrypted_pbes2_aes256_sha256() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    pem = keys.private_key_pem(key, b"secret-pass")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    objects = asn1_objects(pem)
    assert objects[:2] == ["PBES2", "PBKDF2"]
    # PBKDF2 iteration count, as OpenSSL 3.0's `-aes256` writes it.
    assert objects[2] == "0800"
    assert "hmacWithSHA256" in objects
    assert "aes-256-cbc" in objects
    assert "des-ede3-cbc" not in objects


def test_pem_encrypted_opens_with_openssl(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(
        keys.private_key_pem(ed25519.Ed25519PrivateKey.generate(), b"abcd")
    )
    result = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-passin", "pass:abcd", "-noout"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_pem_empty_passphrase_rejected() -> None:
    with pytest.raises(PassphraseError, match="empty"):
        keys.private_key_pem(ed25519.Ed25519PrivateKey.generate(), b"")


# --- new_key_passphrase -----------------------------------------------------


def quiet_console() -> Console:
    return Console(batch=True, silent=True)


def test_passphrase_nopass_argument(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert keys.new_key_passphrase(settings, quiet_console(), "k", nopass=True) is None


def test_passphrase_nopass_option(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, EASYRSA_NO_PASS="1")
    assert keys.new_key_passphrase(settings, quiet_console(), "k") is None


def test_passphrase_passout(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, EASYRSA_PASSOUT="pass:from-option")
    assert keys.new_key_passphrase(settings, quiet_console(), "k") == b"from-option"


def test_passphrase_passout_overrides_nopass(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, EASYRSA_PASSOUT="pass:wins", EASYRSA_NO_PASS="1")
    console = quiet_console()
    assert keys.new_key_passphrase(settings, console, "k", nopass=True) == b"wins"
    assert not keys.nopass_requested(settings, nopass=True)


def test_passphrase_passout_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings treats an empty EASYRSA_PASSOUT as unset, so env: supplies it.
    monkeypatch.setenv("H3_EMPTY_PASS", "")
    settings = make_settings(tmp_path, EASYRSA_PASSOUT="env:H3_EMPTY_PASS")
    with pytest.raises(PassphraseError, match="is empty"):
        keys.new_key_passphrase(settings, quiet_console(), "the key of k")


def feed_prompts(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[str]:
    """Answer the terminal prompts with `answers` and return the prompts shown."""
    shown: list[str] = []
    replies = iter(answers)

    def fake_getpass(prompt: str) -> str:
        shown.append(prompt)
        return next(replies)

    monkeypatch.setattr(passphrase, "_has_terminal", lambda: True)
    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    return shown


def test_prompt_twice_with_openssl_wording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = feed_prompts(monkeypatch, ["abcd", "abcd"])
    typed = keys.new_key_passphrase(make_settings(tmp_path), quiet_console(), "k")
    assert typed == b"abcd"
    assert shown == ["Enter PEM pass phrase:", "Verifying - Enter PEM pass phrase:"]


def test_prompt_mismatch_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_prompts(monkeypatch, ["abcd", "abce"])
    with pytest.raises(PassphraseError, match="do not match"):
        keys.new_key_passphrase(make_settings(tmp_path), quiet_console(), "k")


def test_prompt_too_short_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = feed_prompts(monkeypatch, ["abc", "abc"])
    with pytest.raises(PassphraseError, match="has 3 characters: expected 4 to 1024"):
        keys.new_key_passphrase(make_settings(tmp_path), quiet_console(), "k")
    assert shown == ["Enter PEM pass phrase:"]


# --- load_private_key -------------------------------------------------------


def write_key(path: Path, passphrase: bytes | None) -> ed25519.Ed25519PrivateKey:
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(keys.private_key_pem(key, passphrase))
    return key


def raw_public(key: object) -> bytes:
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.public_key().public_bytes_raw()


def test_load_encrypted_with_passin(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    key = write_key(path, b"right-pass")
    loaded = keys.load_private_key(path, "pass:right-pass")
    assert raw_public(loaded) == raw_public(key)


def test_load_unencrypted_ignores_passin(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    key = write_key(path, None)
    assert raw_public(keys.load_private_key(path, "pass:unused")) == raw_public(key)


@pytest.mark.parametrize("source", ["pass:wrong", "env:H3_WRONG", "file:{dir}/p"])
def test_load_wrong_passphrase_names_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    path = tmp_path / "a.key"
    write_key(path, b"right-pass")
    monkeypatch.setenv("H3_WRONG", "wrong")
    (tmp_path / "p").write_text("wrong\n")
    with pytest.raises(PassphraseError, match=f"private key {path}"):
        keys.load_private_key(path, source.format(dir=tmp_path))


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(keys.PrivateKeyNotFound, match="does not exist"):
        keys.load_private_key(tmp_path / "none.key", None)


def test_load_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "junk.key"
    path.write_text("not a key\n")
    with pytest.raises(FileFormatError, match="junk.key"):
        keys.load_private_key(path, None)


# --- write_private_key ------------------------------------------------------


def test_write_new_key_0600_whatever_umask(tmp_path: Path) -> None:
    path = tmp_path / "pki" / "private" / "a.key"
    old_umask = os.umask(0o000)
    try:
        keys.write_private_key(path, b"data")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes() == b"data"


def test_write_keeps_existing_mode(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    path.write_bytes(b"old")
    path.chmod(0o640)
    keys.write_private_key(path, b"new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_bytes() == b"new"


def test_load_passin_from_fd(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    key = write_key(path, b"right-pass")
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"right-pass\n")
        loaded = keys.load_private_key(path, f"fd:{read_end}")
    finally:
        os.close(read_end)
        os.close(write_end)
    assert raw_public(loaded) == raw_public(key)


def test_load_wrong_passphrase_from_fd(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    write_key(path, b"right-pass")
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"wrong\n")
        with pytest.raises(PassphraseError, match=f"private key {path}"):
            keys.load_private_key(path, f"fd:{read_end}")
    finally:
        os.close(read_end)
        os.close(write_end)


def test_load_prompted_wrong_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.key"
    write_key(path, b"right-pass")
    monkeypatch.setattr(keys, "prompt_passphrase", lambda key_path: b"wrong")
    with pytest.raises(PassphraseError, match="Check the passphrase typed"):
        keys.load_private_key(path, None)


# --- against the real easy-rsa 3.2.7 ----------------------------------------


def test_pem_matches_reference_build_ca(
    reference_for: Callable[[str], Any], tmp_path: Path
) -> None:
    """Compare our encrypted PEM with the CA key easy-rsa 3.2.7 writes."""
    reference = reference_for("3.2.7")
    pki = tmp_path / "pki"
    reference.run(pki, "init-pki")
    reference.run(
        pki, "--algo=ed", "--passout=pass:abcd", "--passin=pass:abcd", "build-ca"
    )
    theirs = (pki / "private" / "ca.key").read_bytes()
    ours = keys.private_key_pem(ed25519.Ed25519PrivateKey.generate(), b"abcd")
    assert theirs.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert asn1_objects(ours) == asn1_objects(theirs)


def test_load_reference_gen_req_key(
    reference_for: Callable[[str], Any], tmp_path: Path
) -> None:
    """Load the 3DES key that 3.2.7's gen-req writes under OpenSSL 3.0."""
    reference = reference_for("3.2.7")
    pki = tmp_path / "pki"
    reference.run(pki, "init-pki")
    reference.run(pki, "--algo=ec", "--passout=pass:abcd", "gen-req", "alice")
    path = pki / "private" / "alice.key"
    loaded = keys.load_private_key(path, "pass:abcd")
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.curve.name == "secp384r1"
