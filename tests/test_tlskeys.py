"""gen-dh, gen-tls-*-key, import-tls-key and write, checked against OpenSSL, OpenVPN and easy-rsa.

DH parameters use 512 bits, the minimum OpenSSL 3.0 accepts, so each
generation takes well under a second. Tests that need the `openvpn` binary
skip without it.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dh
from cryptography.utils import CryptographyDeprecationWarning
from pkitools import pki_state, run_product
from reference import tree_snapshot

from easyrsa_py.profiles import BUILTIN_ALIASES, BUILTIN_PROFILES, parse_profile
from easyrsa_py.support_files import LEGACY_PROFILE_TYPES, openssl_config
from easyrsa_py.vars import parse_vars

TLS_KEY = Path("private/easyrsa-tls.key")
KEY_FILE = re.compile(
    r"# Easy-RSA (?P<label>TLS-AUTH|TLS-CRYPT) Key\n"
    r"#\n# 2048 bit OpenVPN static key\n#\n"
    r"-----BEGIN OpenVPN Static key V1-----\n"
    r"(?P<hex>(?:[0-9a-f]{32}\n){16})"
    r"-----END OpenVPN Static key V1-----\n"
)
# .ci/run installs openvpn, so in CI a missing binary is a failure, never a skip.
needs_openvpn = pytest.mark.skipif(
    shutil.which("openvpn") is None and not os.environ.get("CI"),
    reason="the openvpn binary is not installed",
)
# The fixture each reference version can run on (3.1.0 needs its own PKI).
REFERENCE_FIXTURES = {"3.1.0": "v3.1.0-rsa", "3.2.2": "v3.2.2-ec", "3.2.7": "v3.2.7-rsa"}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def added_files(before: dict[str, object], after: dict[str, object]) -> set[str]:
    return set(after) - set(before)


# --- gen-dh --------------------------------------------------------------------


def load_dh(path: Path) -> dh.DHParameterNumbers:
    # cryptography 48 deprecates finite-field DH and warns on every use.
    warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)
    parameters = serialization.load_pem_parameters(path.read_bytes())
    assert isinstance(parameters, dh.DHParameters)
    return parameters.parameter_numbers()


@pytest.mark.reference
@pytest.mark.parametrize("version", sorted(REFERENCE_FIXTURES))
def test_gen_dh_matches_reference(reference_for, pki_copy, version: str) -> None:
    reference = reference_for(version)
    ours = pki_copy(REFERENCE_FIXTURES[version])
    theirs = pki_copy(REFERENCE_FIXTURES[version])
    before = tree_snapshot(ours)

    assert run_product(ours, "--keysize=512", "gen-dh").returncode == 0
    reference.run(theirs, "--keysize=512", "gen-dh")

    assert added_files(before, tree_snapshot(ours)) == {"dh.pem"}
    assert added_files(before, tree_snapshot(theirs)) == {"dh.pem"}
    for pki in (ours, theirs):
        numbers = load_dh(pki / "dh.pem")
        assert numbers.p.bit_length() == 512
        assert numbers.g == 2
        assert (pki / "dh.pem").read_text().startswith("-----BEGIN DH PARAMETERS-----\n")
    assert mode_of(ours / "dh.pem") == mode_of(theirs / "dh.pem")
    check = subprocess.run(
        ["openssl", "dhparam", "-in", str(ours / "dh.pem"), "-check", "-noout"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_gen_dh_batch_keeps_existing(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    (pki / "dh.pem").write_text("old parameters\n")
    before = pki_state(pki)
    result = run_product(pki, "--keysize=512", "gen-dh")
    assert result.returncode == 1
    assert f"DH parameters already exist at {pki / 'dh.pem'}" in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize(("answer", "replaced"), [("yes\n", True), ("no\n", False), ("", False)])
def test_gen_dh_confirms_overwrite(pki_copy, answer: str, replaced: bool) -> None:
    pki = pki_copy("v3.2.7-rsa")
    (pki / "dh.pem").write_text("old parameters\n")
    result = run_product(pki, "--keysize=512", "gen-dh", batch=False, input=answer)
    assert "Overwrite?  " in result.stderr
    assert result.returncode == (0 if replaced else 1)
    text = (pki / "dh.pem").read_text()
    assert text.startswith("-----BEGIN DH PARAMETERS-----") is replaced


@pytest.mark.parametrize("bits", ["256", "511", "10001"])
def test_gen_dh_rejects_size(pki_copy, bits: str) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, f"--keysize={bits}", "gen-dh")
    assert result.returncode == 1
    assert f"Invalid DH parameter size of {bits} bits" in result.stderr
    assert pki_state(pki) == before


# --- gen-tls-auth-key and gen-tls-crypt-key --------------------------------------


@pytest.mark.parametrize(("command", "label"), [("gen-tls-auth-key", "TLS-AUTH"), ("gen-tls-crypt-key", "TLS-CRYPT")])
def test_gen_tls_key_format(pki_copy, command: str, label: str) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = tree_snapshot(pki)
    result = run_product(pki, command)
    assert result.returncode == 0, result.stderr
    assert added_files(before, tree_snapshot(pki)) == {str(TLS_KEY)}
    match = KEY_FILE.fullmatch((pki / TLS_KEY).read_text())
    assert match is not None
    assert match["label"] == label
    assert mode_of(pki / TLS_KEY) == 0o600


def test_gen_tls_keys_differ(pki_copy) -> None:
    first, second = pki_copy("v3.2.7-rsa"), pki_copy("v3.2.7-rsa")
    run_product(first, "gen-tls-crypt-key")
    run_product(second, "gen-tls-crypt-key")
    assert (first / TLS_KEY).read_text() != (second / TLS_KEY).read_text()


@needs_openvpn
@pytest.mark.parametrize("command", ["gen-tls-auth-key", "gen-tls-crypt-key"])
def test_openvpn_accepts_key(pki_copy, command: str) -> None:
    pki = pki_copy("v3.2.7-rsa")
    run_product(pki, command)
    result = subprocess.run(
        ["openvpn", "--test-crypto", "--secret", str(pki / TLS_KEY), "--cipher", "AES-256-CBC", "--auth", "SHA256"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCEEDED" in result.stdout


@needs_openvpn
@pytest.mark.reference
@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
@pytest.mark.parametrize("command", ["gen-tls-auth-key", "gen-tls-crypt-key"])
def test_gen_tls_key_matches_reference(reference_for, pki_copy, version: str, command: str) -> None:
    reference = reference_for(version)
    ours = pki_copy(REFERENCE_FIXTURES[version])
    theirs = pki_copy(REFERENCE_FIXTURES[version])
    before = tree_snapshot(ours)
    run_product(ours, command)
    reference.run(theirs, command)
    ours_match = KEY_FILE.fullmatch((ours / TLS_KEY).read_text())
    theirs_match = KEY_FILE.fullmatch((theirs / TLS_KEY).read_text())
    assert ours_match is not None
    assert theirs_match is not None
    assert ours_match["label"] == theirs_match["label"]
    assert added_files(before, tree_snapshot(ours)) == added_files(before, tree_snapshot(theirs))
    assert mode_of(ours / TLS_KEY) == mode_of(theirs / TLS_KEY)


@pytest.mark.reference
@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
@pytest.mark.parametrize(("command", "tag"), [("gen-tls-auth-key", "tls-auth"), ("gen-tls-crypt-key", "tls-crypt")])
def test_reference_inline_embeds_key(reference_for, pki_copy, version: str, command: str, tag: str) -> None:
    reference = reference_for(version)
    pki = pki_copy(REFERENCE_FIXTURES[version])
    run_product(pki, command)
    key_text = (pki / TLS_KEY).read_text().rstrip("\n")
    reference.run(pki, "inline", "alice")
    inline = (pki / "inline" / "private" / "alice.inline").read_text()
    assert f"<{tag}>\n{key_text}\n</{tag}>" in inline
    if tag == "tls-auth":
        assert "key-direction 1" in inline


@pytest.mark.reference
@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
def test_reference_keeps_our_key(reference_for, pki_copy, version: str) -> None:
    reference = reference_for(version)
    pki = pki_copy(REFERENCE_FIXTURES[version])
    run_product(pki, "gen-tls-crypt-key")
    before = pki_state(pki)
    result = reference.run(pki, "gen-tls-auth-key", check=False)
    assert result.returncode == 1
    assert "TLS-CRYPT" in result.stdout + result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize(
    ("relative", "content", "label"),
    [
        (TLS_KEY, "# Easy-RSA TLS-AUTH Key\nkey\n", "TLS-AUTH"),
        (Path("easyrsa-keepsafe-tls.key"), "# Easy-RSA TLS-CRYPT Key\nkey\n", "TLS-CRYPT"),
        (TLS_KEY, "some other key\n", "UNKNOWN"),
    ],
)
def test_gen_tls_key_keeps_existing(pki_copy, relative: Path, content: str, label: str) -> None:
    pki = pki_copy("v3.2.7-rsa")
    (pki / relative).write_text(content)
    before = pki_state(pki)
    result = run_product(pki, "gen-tls-crypt-key")
    assert result.returncode == 1
    assert f"A {label} key already exists at {pki / relative}" in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize("command", ["gen-dh", "gen-tls-auth-key", "gen-tls-crypt-key"])
def test_extra_argument_rejected(pki_copy, command: str) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, "--keysize=512", command, "nopass")
    assert result.returncode == 1
    assert f"Unexpected argument 'nopass': '{command}' takes no arguments." in result.stderr
    assert pki_state(pki) == before


def test_tls_crypt_v2_unavailable(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, "gen-tls-cryptv2-key")
    assert result.returncode == 1
    assert "openvpn --genkey tls-crypt-v2-server" in result.stderr
    assert pki_state(pki) == before


# --- import-tls-key ----------------------------------------------------------------


def test_import_tls_key_copies(pki_copy, tmp_path: Path) -> None:
    source_pki, pki = pki_copy("v3.2.7-rsa"), pki_copy("v3.2.7-rsa")
    run_product(source_pki, "gen-tls-auth-key")
    result = run_product(pki, "import-tls-key", str(source_pki / TLS_KEY))
    assert result.returncode == 0, result.stderr
    assert (pki / TLS_KEY).read_bytes() == (source_pki / TLS_KEY).read_bytes()
    assert mode_of(pki / TLS_KEY) == 0o600
    assert "WARNING" not in result.stderr


@needs_openvpn
def test_import_unlabelled_openvpn_key_warns(pki_copy, tmp_path: Path) -> None:
    pki = pki_copy("v3.2.7-rsa")
    source = tmp_path / "ta.key"
    subprocess.run(["openvpn", "--genkey", "secret", str(source)], check=True, capture_output=True, timeout=60)
    result = run_product(pki, "import-tls-key", str(source))
    assert result.returncode == 0, result.stderr
    assert (pki / TLS_KEY).read_bytes() == source.read_bytes()
    assert "cannot tell whether it is a tls-auth or tls-crypt key" in result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "the file does not exist"),
        ("not a key\n", "no OpenVPN static key"),
        ("-----BEGIN OpenVPN Static key V1-----\n" + "ab" * 16 + "\n-----END OpenVPN Static key V1-----\n",
         "no OpenVPN static key"),
    ],
    ids=["missing", "not-a-key", "short-key"],
)
def test_import_tls_key_rejects_file(pki_copy, tmp_path: Path, content: str | None, expected: str) -> None:
    pki = pki_copy("v3.2.7-rsa")
    source = tmp_path / "ta.key"
    if content is not None:
        source.write_text(content)
    before = pki_state(pki)
    result = run_product(pki, "import-tls-key", str(source))
    assert result.returncode == 1
    assert expected in result.stderr
    assert str(source) in result.stderr
    assert pki_state(pki) == before


def test_import_tls_key_rejects_folder(pki_copy, tmp_path: Path) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, "import-tls-key", str(tmp_path))
    assert result.returncode == 1
    assert f"Cannot import {tmp_path}: it is not a regular file" in result.stderr
    assert pki_state(pki) == before


def test_import_tls_key_keeps_existing(pki_copy) -> None:
    source_pki, pki = pki_copy("v3.2.7-rsa"), pki_copy("v3.2.7-rsa")
    run_product(source_pki, "gen-tls-auth-key")
    run_product(pki, "gen-tls-crypt-key")
    before = pki_state(pki)
    result = run_product(pki, "import-tls-key", str(source_pki / TLS_KEY))
    assert result.returncode == 1
    assert f"A TLS key already exists at {pki / TLS_KEY}" in result.stderr
    assert pki_state(pki) == before


def test_import_tls_key_needs_one_file(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "import-tls-key")
    assert result.returncode == 1
    assert "Usage: 'import-tls-key FILE'" in result.stderr


# --- write ---------------------------------------------------------------------------


def test_write_vars_parses_as_data(tmp_path: Path) -> None:
    result = run_product(tmp_path / "pki", "write", "vars")
    assert result.returncode == 0, result.stderr
    parsed = parse_vars(result.stdout, tmp_path / "vars", environ={})
    assert parsed.values == {}
    assert parsed.ignored == []
    assert "set_var EASYRSA_KEY_SIZE 2048" in result.stdout


@pytest.mark.reference
def test_reference_sources_written_vars(reference_for, pki_copy) -> None:
    reference = reference_for("3.2.7")
    pki = pki_copy("v3.2.7-rsa")
    run_product(pki, "write", "vars", str(pki / "vars"))
    result = reference.run(pki, "show-ca")
    assert result.returncode == 0
    assert f"* {pki / 'vars'}" in result.stdout


@pytest.mark.parametrize("kind", [*LEGACY_PROFILE_TYPES, "kdc"])
def test_write_profile_is_builtin(tmp_path: Path, kind: str) -> None:
    result = run_product(tmp_path / "pki", "write", kind)
    assert result.returncode == 0, result.stderr
    written = parse_profile(kind, result.stdout, "stdout").lines
    builtin = parse_profile(kind, BUILTIN_PROFILES[BUILTIN_ALIASES.get(kind, kind)], "built-in").lines
    assert [(line.name, line.value, line.critical) for line in written] == [
        (line.name, line.value, line.critical) for line in builtin
    ]


@pytest.mark.reference
@pytest.mark.parametrize("kind", ["COMMON", "ca", "server", "serverClient", "email", "codeSigning"])
def test_write_profile_matches_reference(reference_for, tmp_path: Path, kind: str) -> None:
    """Compare each setting; 3.2.7's client adds keyEncipherment, easyrsa_py follows the packaged file."""
    reference = reference_for("3.2.7")
    ours = run_product(tmp_path / "pki", "write", kind).stdout
    theirs = reference.run(tmp_path / "pki", "write", kind).stdout
    assert sorted(map(settings_of, parse_profile(kind, ours, "ours").lines)) == sorted(
        map(settings_of, parse_profile(kind, theirs, "theirs").lines)
    )


def settings_of(line: object) -> tuple[str, str, bool]:
    return (line.name, line.value.replace(" ", ""), line.critical)  # type: ignore[attr-defined]


def test_write_safe_cnf_expands_settings(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    result = run_product(pki, "--digest=sha512", "--req-cn=Alpha $ # \"one\"", "write", "safe-cnf")
    assert result.returncode == 0, result.stderr
    assert f"dir = {pki.resolve()}\n" in result.stdout
    assert "default_md = sha512\n" in result.stdout
    assert "= $ENV::" not in result.stdout
    assert 'commonName_default = Alpha \\$ \\# \\"one\\"\n' in result.stdout
    config = tmp_path / "safe.cnf"
    config.write_text(result.stdout)
    key = tmp_path / "key.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    request = subprocess.run(
        ["openssl", "req", "-new", "-batch", "-config", str(config), "-key", str(key), "-noout", "-subject", "-nameopt", "utf8"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert request.returncode == 0, request.stderr
    # The batch request takes the subject from commonName_default.
    assert request.stdout == 'subject=CN=Alpha $ # "one"\n'


def test_ssl_cnf_keeps_marker_lines() -> None:
    text = openssl_config(None)
    for marker in ("#%COPY_EXTS%", "#%EXTRA_EXTS%", "#%CA_X509_TYPES_EXTRA_EXTS%"):
        assert f"\n{marker}\n" in text


def extension_text(path: Path, names: str) -> str:
    return subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", "-ext", names], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.reference
@pytest.mark.parametrize("version", ["3.1.0", "3.2.2", "3.2.7"])
def test_reference_signs_with_written_config(reference_for, tmp_path: Path, version: str) -> None:
    """easy-rsa uses a PKI's openssl-easyrsa.cnf, so `write legacy` output must work in it."""
    reference = reference_for(version)
    pki = tmp_path / "pki"
    reference.run(pki, "init-pki")
    # 3.1.0's init-pki writes its own config, which legacy-hard replaces.
    assert run_product(pki, "write", "legacy-hard").returncode == 0
    assert "easyrsa_py" in (pki / "openssl-easyrsa.cnf").read_text()
    reference.run(pki, "--req-cn=Written CA", "build-ca", "nopass")
    reference.run(pki, "--san=DNS:vpn.example.org", "build-server-full", "vpn", "nopass")
    reference.run(pki, "--dn-mode=org", "--req-org=Written Org", "build-client-full", "org", "nopass")
    server = extension_text(pki / "issued" / "vpn.crt", "subjectAltName,keyUsage")
    assert "DNS:vpn.example.org" in server
    assert "Digital Signature, Key Encipherment" in server
    ca = extension_text(pki / "ca.crt", "basicConstraints,keyUsage")
    assert "CA:TRUE" in ca
    assert "Certificate Sign, CRL Sign" in ca
    subject = subprocess.run(
        ["openssl", "x509", "-in", str(pki / "issued" / "org.crt"), "-noout", "-subject", "-nameopt", "utf8"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "O=Written Org" in subject
    if version != "3.1.0":
        reference.run(pki, "--san=DNS:extra.example.org", "gen-req", "copied", "nopass")
        reference.run(pki, "--copy-ext", "sign-req", "client", "copied")
        assert "DNS:extra.example.org" in extension_text(pki / "issued" / "copied.crt", "subjectAltName")
    if version == "3.2.7":
        verbose = reference.run(pki, "--verbose", "show-ca")
        assert "copy existing ssl-cnf" in verbose.stdout + verbose.stderr


def test_write_legacy_keeps_then_overwrites(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    (pki / "vars.example").write_text("# mine\n")
    result = run_product(pki, "write", "legacy")
    assert result.returncode == 0, result.stderr
    assert (pki / "vars.example").read_text() == "# mine\n"
    assert "Kept these existing files" in result.stderr
    for kind in LEGACY_PROFILE_TYPES:
        assert (pki / "x509-types" / kind).is_file()
    assert (pki / "openssl-easyrsa.cnf").is_file()

    result = run_product(pki, "write", "legacy-hard")
    assert result.returncode == 0, result.stderr
    assert (pki / "vars.example").read_text().startswith("# Example settings")


def test_write_legacy_hard_asks(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, "write", "legacy-hard", batch=False, input="no\n")
    assert result.returncode == 1
    assert "Confirm OVER-WRITE files ? " in result.stderr
    assert pki_state(pki) == before


def test_write_legacy_needs_pki(tmp_path: Path) -> None:
    result = run_product(tmp_path / "missing", "write", "legacy")
    assert result.returncode == 1
    assert f"The PKI folder {tmp_path / 'missing'} does not exist" in result.stderr


def test_write_to_file_and_folder(tmp_path: Path) -> None:
    target = tmp_path / "my-vars"
    assert run_product(tmp_path / "pki", "write", "vars", str(target)).returncode == 0
    assert target.read_text().startswith("# Example settings")

    target.write_text("mine\n")
    result = run_product(tmp_path / "pki", "write", "vars", str(target))
    assert result.returncode == 1
    assert "Add 'overwrite' to replace it" in result.stderr
    assert target.read_text() == "mine\n"

    assert run_product(tmp_path / "pki", "write", "vars", str(target), "overwrite").returncode == 0
    assert target.read_text().startswith("# Example settings")

    assert run_product(tmp_path / "pki", "write", "ssl-cnf", str(tmp_path)).returncode == 0
    assert (tmp_path / "openssl-easyrsa.cnf").read_text() == openssl_config(None)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("write",), "Missing type"),
        (("write", "nonsense"), "Unknown type 'nonsense' for 'write'"),
        (("write", "vars", "/nonexistent-folder/vars"), "the folder /nonexistent-folder does not exist"),
        (("write", "vars", "x", "please"), "Unexpected argument 'please'"),
    ],
)
def test_write_bad_input(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    result = run_product(tmp_path / "pki", *args)
    assert result.returncode == 1
    assert expected in result.stderr
    assert result.stdout == ""
