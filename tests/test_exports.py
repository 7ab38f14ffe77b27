"""Tests for set-pass and export-p12/p7/p8/p1 against the real easy-rsa.

Each differential test runs the real script on one copy of a fixture PKI
and easyrsa_py on another, then compares what each wrote: key type and
encryption, certificates, friendlyName, file names and modes. Keys and
salts are random, so files are compared by meaning, not by bytes. Every
deliberate difference is asserted where it shows up.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from pkitools import pki_state, run_product, tree_modes

COMMANDS = (
    "set-pass",
    "set-rsa-pass",
    "set-ec-pass",
    "set-ed-pass",
    "export-p12",
    "export-p7",
    "export-p8",
    "export-p1",
)
VERSION_FIXTURES = {"3.1.0": "v3.1.0-rsa", "3.2.2": "v3.2.2-ec", "3.2.7": "v3.2.7-rsa"}
# easy-rsa 3.1 has only the old set-pass names.
SET_PASS_COMMAND = {"3.1.0": "set-rsa-pass", "3.2.2": "set-pass", "3.2.7": "set-pass"}
NEW_PASS = "new-passphrase"
OLD_PASS = "old-passphrase"
P12_PASS = "p12-passphrase"


def run_both(
    reference: Any, ref_pki: Path, py_pki: Path, *args: str, **kwargs: Any
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    env = {**kwargs.pop("env", {})}
    ref = reference.run(ref_pki, *args, env=env, check=False, **kwargs)
    py = run_product(py_pki, *args, env=env, **kwargs)
    return ref, py


def both_copies(pki_copy: Callable[[str], Path], fixture: str) -> tuple[Path, Path]:
    return pki_copy(fixture), pki_copy(fixture)


def encrypt_key(path: Path, passphrase: str) -> None:
    """Encrypt a key in place with OpenSSL, as a user's earlier set-pass would."""
    temporary = path.with_name(path.name + ".enc")
    subprocess.run(
        [
            "openssl",
            "pkey",
            "-in",
            str(path),
            "-out",
            str(temporary),
            "-aes256",
            "-passout",
            f"pass:{passphrase}",
        ],
        check=True,
        capture_output=True,
    )
    os.replace(temporary, path)
    path.chmod(0o600)


def encryption_objects(pem: bytes) -> list[str]:
    """Return the OBJECT and INTEGER values of the encryption header, salts left out."""
    result = subprocess.run(
        ["openssl", "asn1parse"], input=pem, capture_output=True, check=True
    )
    values = []
    for line in result.stdout.decode().splitlines():
        if "prim: OBJECT" in line or "prim: INTEGER" in line:
            values.append(line.rsplit(":", 1)[1].strip())
    return values


def public_der(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_key(path: Path, passphrase: str | None) -> Any:
    password = passphrase.encode() if passphrase is not None else None
    return serialization.load_pem_private_key(path.read_bytes(), password)


def mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def pkcs12_info(path: Path, passphrase: str, *extra: str) -> list[str]:
    """Return the lines `openssl pkcs12 -info` prints about algorithms and bags."""
    result = subprocess.run(
        [
            "openssl",
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            str(path),
            "-passin",
            f"pass:{passphrase}",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in (result.stdout + result.stderr).splitlines() if line]


def bag_attributes(path: Path, passphrase: str, *extra: str) -> list[str]:
    """Return the friendlyName lines `openssl pkcs12` prints for each bag."""
    result = subprocess.run(
        [
            "openssl",
            "pkcs12",
            "-in",
            str(path),
            "-passin",
            f"pass:{passphrase}",
            "-nodes",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [
        line.strip() for line in result.stdout.splitlines() if "friendlyName" in line
    ]


# --- set-pass ----------------------------------------------------------------


def test_set_pass_encrypts_like_reference(
    reference: Any, pki_copy: Callable[[str], Path]
) -> None:
    ref_pki, py_pki = both_copies(pki_copy, VERSION_FIXTURES[reference.version])
    original = load_key(ref_pki / "private" / "alice.key", None)
    command = SET_PASS_COMMAND[reference.version]
    ref, py = run_both(
        reference, ref_pki, py_pki, f"--passout=pass:{NEW_PASS}", command, "alice"
    )
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    ref_pem = (ref_pki / "private" / "alice.key").read_bytes()
    py_pem = (py_pki / "private" / "alice.key").read_bytes()
    assert py_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert ref_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert encryption_objects(py_pem)[:5] == encryption_objects(ref_pem)[:5]
    assert "aes-256-cbc" in encryption_objects(py_pem)
    py_key = load_key(py_pki / "private" / "alice.key", NEW_PASS)
    assert public_der(py_key) == public_der(original)
    assert tree_modes(py_pki) == tree_modes(ref_pki)


def test_set_pass_nopass_decrypts_like_reference(
    reference_for: Callable[[str], Any], pki_copy: Callable[[str], Path]
) -> None:
    # easy-rsa 3.1.0's set-rsa-pass nopass fails under OpenSSL 3, so only
    # 3.2.x is compared here.
    for version in ("3.2.2", "3.2.7"):
        reference = reference_for(version)
        ref_pki, py_pki = both_copies(pki_copy, VERSION_FIXTURES[version])
        for pki in (ref_pki, py_pki):
            encrypt_key(pki / "private" / "alice.key", OLD_PASS)
        ref, py = run_both(
            reference,
            ref_pki,
            py_pki,
            f"--passin=pass:{OLD_PASS}",
            "set-pass",
            "alice",
            "nopass",
        )
        assert ref.returncode == 0, ref.stdout + ref.stderr
        assert py.returncode == 0, py.stderr
        ref_pem = (ref_pki / "private" / "alice.key").read_bytes()
        py_pem = (py_pki / "private" / "alice.key").read_bytes()
        assert ref_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        assert py_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        assert tree_modes(py_pki) == tree_modes(ref_pki)


def test_set_pass_global_nopass(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    encrypt_key(pki / "private" / "alice.key", OLD_PASS)
    result = run_product(
        pki, f"--passin=pass:{OLD_PASS}", "--nopass", "set-ed-pass", "alice"
    )
    assert result.returncode == 0, result.stderr
    assert (
        (pki / "private" / "alice.key")
        .read_bytes()
        .startswith(b"-----BEGIN PRIVATE KEY-----")
    )


def test_set_pass_passout_overrides_nopass(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(
        pki, f"--passout=pass:{NEW_PASS}", "set-pass", "alice", "nopass"
    )
    assert result.returncode == 0, result.stderr
    assert "--passout overrides" in result.stderr
    assert load_key(pki / "private" / "alice.key", NEW_PASS) is not None


@pytest.mark.parametrize("command", ["set-rsa-pass", "set-ec-pass", "set-ed-pass"])
def test_set_pass_old_names(pki_copy: Callable[[str], Path], command: str) -> None:
    # easy-rsa 3.2.7 runs every name on any key type, and so does easyrsa_py.
    pki = pki_copy("v3.2.7-ed25519")
    result = run_product(
        pki, f"--passout=pass:{NEW_PASS}", command, "server"
    )
    assert result.returncode == 0, result.stderr
    assert load_key(pki / "private" / "server.key", NEW_PASS) is not None


def test_set_pass_file_option(
    reference_for: Callable[[str], Any], pki_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    reference = reference_for("3.2.7")
    ref_pki, py_pki = both_copies(pki_copy, "v3.2.7-rsa")
    ref_file, py_file = tmp_path / "ref-outside.key", tmp_path / "py-outside.key"
    for path in (ref_file, py_file):
        path.write_bytes((ref_pki / "private" / "server.key").read_bytes())
        path.chmod(0o600)
    ref = reference.run(
        ref_pki,
        f"--passout=pass:{NEW_PASS}",
        "set-pass",
        str(ref_file),
        "file",
        check=False,
    )
    py = run_product(
        py_pki,
        f"--passout=pass:{NEW_PASS}",
        "set-pass",
        str(py_file),
        "file",
    )
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    assert public_der(load_key(py_file, NEW_PASS)) == public_der(
        load_key(ref_file, NEW_PASS)
    )
    assert tree_modes(py_pki) == tree_modes(ref_pki)


def test_set_pass_keeps_key_mode(
    reference_for: Callable[[str], Any], pki_copy: Callable[[str], Path]
) -> None:
    reference = reference_for("3.2.7")
    ref_pki, py_pki = both_copies(pki_copy, "v3.2.7-rsa")
    for pki in (ref_pki, py_pki):
        (pki / "private" / "alice.key").chmod(0o640)
    ref, py = run_both(
        reference, ref_pki, py_pki, f"--passout=pass:{NEW_PASS}", "set-pass", "alice"
    )
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    # Deliberate difference: easy-rsa moves a new 0600 file over the key.
    assert mode_of(ref_pki / "private" / "alice.key") == 0o600
    assert mode_of(py_pki / "private" / "alice.key") == 0o640


def test_set_pass_mixed_with_reference(
    reference_for: Callable[[str], Any], pki_copy: Callable[[str], Path]
) -> None:
    reference = reference_for("3.2.7")
    pki = pki_copy("v3.2.7-rsa")
    key = pki / "private" / "alice.key"
    original = public_der(load_key(key, None))

    ours = run_product(
        pki, f"--passout=pass:{OLD_PASS}", "set-pass", "alice"
    )
    assert ours.returncode == 0, ours.stderr
    theirs = reference.run(
        pki,
        f"--passin=pass:{OLD_PASS}",
        f"--passout=pass:{NEW_PASS}",
        "set-pass",
        "alice",
        check=False,
    )
    assert theirs.returncode == 0, theirs.stdout + theirs.stderr
    ours = run_product(
        pki, f"--passin=pass:{NEW_PASS}", "set-pass", "alice", "nopass"
    )
    assert ours.returncode == 0, ours.stderr
    assert public_der(load_key(key, None)) == original


def test_set_pass_prompts_on_stdin(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.2.7-rsa")
    encrypt_key(pki / "private" / "alice.key", OLD_PASS)
    result = run_product(
        pki,
        "set-pass",
        "alice",
        input=f"{OLD_PASS}\n{NEW_PASS}\n{NEW_PASS}\n",
    )
    assert result.returncode == 0, result.stderr
    assert f"Enter pass phrase for {pki / 'private' / 'alice.key'}:" in result.stderr
    assert "Enter PEM pass phrase:" in result.stderr
    assert "Verifying - Enter PEM pass phrase:" in result.stderr
    assert load_key(pki / "private" / "alice.key", NEW_PASS) is not None


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (f"{NEW_PASS}\nsomething-else\n", "do not match"),
        ("abc\nabc\n", "has 3 characters"),
    ],
)
def test_set_pass_bad_new_passphrase(
    pki_copy: Callable[[str], Path], answers: str, message: str
) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, "set-pass", "alice", input=answers)
    assert result.returncode == 1
    assert message in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize(
    "source", ["pass:wrong", "env:H3_WRONG_PASS", "file:{dir}/wrong-pass", "stdin"]
)
def test_set_pass_wrong_passin(
    pki_copy: Callable[[str], Path], tmp_path: Path, source: str
) -> None:
    pki = pki_copy("v3.2.7-rsa")
    encrypt_key(pki / "private" / "alice.key", OLD_PASS)
    (tmp_path / "wrong-pass").write_text("wrong\n")
    before = pki_state(pki)
    result = run_product(
        pki,
        f"--passin={source.format(dir=tmp_path)}",
        f"--passout=pass:{NEW_PASS}",
        "set-pass",
        "alice",
        env={"H3_WRONG_PASS": "wrong"},
        input="wrong\n",
    )
    assert result.returncode == 1
    assert "does not decrypt the private key" in result.stderr
    assert str(pki / "private" / "alice.key") in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["nobody"], "Missing private key"),
        (["../alice"], "Invalid certificate name '../alice'"),
        (["private/alice"], "Invalid certificate name 'private/alice'"),
        (["/etc/passwd"], "Invalid certificate name '/etc/passwd'"),
        ([""], "Missing key name"),
        ([], "Missing key name"),
        (["alice", "nopas"], "Unknown option 'nopas'"),
        (["/nonexistent/x.key", "file"], "Missing private key"),
    ],
)
def test_set_pass_bad_input(
    pki_copy: Callable[[str], Path], arguments: list[str], message: str
) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, "--passout=pass:abcd", "set-pass", *arguments)
    assert result.returncode == 1
    assert message in result.stderr
    assert pki_state(pki) == before


def test_set_pass_not_a_key(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.2.7-rsa")
    (pki / "private" / "alice.key").write_text("garbage\n")
    before = pki_state(pki)
    result = run_product(pki, "--passout=pass:abcd", "set-pass", "alice")
    assert result.returncode == 1
    assert "alice.key" in result.stderr
    assert "not a valid PEM private key" in result.stderr
    assert pki_state(pki) == before


def test_set_pass_nul_in_name() -> None:
    # argv cannot carry NUL, so the name check runs in-process.
    from easyrsa_py.errors import UsageError
    from easyrsa_py.revoke import check_file_name_base

    with pytest.raises(UsageError, match="Invalid certificate name"):
        check_file_name_base("al\0ice")


# --- export-p12 ----------------------------------------------------------------


def load_p12(path: Path, passphrase: str) -> pkcs12.PKCS12KeyAndCertificates:
    return pkcs12.load_pkcs12(path.read_bytes(), passphrase.encode())


def p12_summary(path: Path, passphrase: str) -> dict[str, Any]:
    """Return the key and each certificate with its friendlyName, in bag order."""
    bundle = load_p12(path, passphrase)
    entries = [bundle.cert] if bundle.cert is not None else []
    entries += bundle.additional_certs
    return {
        "key": public_der(bundle.key) if bundle.key is not None else None,
        "certs": [
            (
                entry.certificate.public_bytes(serialization.Encoding.DER),
                entry.friendly_name,
            )
            for entry in entries
        ],
    }


def test_export_p12_like_reference(
    reference: Any, pki_copy: Callable[[str], Path]
) -> None:
    version = reference.version
    ref_pki, py_pki = both_copies(pki_copy, VERSION_FIXTURES[version])
    ref, py = run_both(
        reference, ref_pki, py_pki, f"--passout=pass:{P12_PASS}", "export-p12", "alice"
    )
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    ref_p12, py_p12 = (
        ref_pki / "private" / "alice.p12",
        py_pki / "private" / "alice.p12",
    )
    ref_summary, py_summary = (
        p12_summary(ref_p12, P12_PASS),
        p12_summary(py_p12, P12_PASS),
    )
    # easy-rsa 3.1.0 set a friendlyName only with 'usefn'; 3.2 always does.
    if version == "3.1.0":
        assert ref_summary["certs"][0][1] is None
        assert py_summary["certs"][0][1] == b"alice"
        ref_summary["certs"][0] = py_summary["certs"][0]
    assert py_summary == ref_summary
    assert pkcs12_info(py_p12, P12_PASS) == pkcs12_info(ref_p12, P12_PASS)
    assert mode_of(py_p12) == mode_of(ref_p12) == 0o600

    # Inline copies: 3.2.7's place, 3.2.2's older place, none in 3.1.0.
    ours = {"inline/private/alice.p12-inline": 0o600}
    theirs = {
        "3.1.0": {},
        "3.2.2": {"inline/alice-p12.inline": 0o600},
        "3.2.7": {"inline/private/alice.p12-inline": 0o600},
    }[version]
    ref_modes, py_modes = tree_modes(ref_pki), tree_modes(py_pki)
    for path, mode in theirs.items():
        assert ref_modes.pop(path) == mode
    for path, mode in ours.items():
        assert py_modes.pop(path) == mode
    for folder in ("inline", "inline/private", "inline/private/README.inline.private"):
        if folder not in ref_modes:
            py_modes.pop(folder, None)
    assert py_modes == ref_modes


def test_export_p12_inline_file(
    reference_for: Callable[[str], Any], pki_copy: Callable[[str], Path]
) -> None:
    reference = reference_for("3.2.7")
    ref_pki, py_pki = both_copies(pki_copy, "v3.2.7-rsa")
    ref, py = run_both(
        reference,
        ref_pki,
        py_pki,
        f"--passout=pass:{P12_PASS}",
        "export-p12",
        "francois",
    )
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    relative = "inline/private/francois.p12-inline"
    ref_lines = (ref_pki / relative).read_text().splitlines()
    py_lines = (py_pki / relative).read_text().splitlines()
    # Deliberate difference: easy-rsa 3.2.7 greps the subject in the C
    # locale, where grep takes a UTF-8 name for binary data and prints
    # nothing, so its header names no commonName.
    assert ref_lines[2] == "# commonName: "
    assert py_lines[2] == "# commonName: Fran\u00e7ois Dupr\u00e9"
    assert py_lines[:2] + py_lines[3:5] == ref_lines[:2] + ref_lines[3:5]
    assert py_lines[-1] == ref_lines[-1] == "</pkcs12>"
    assert [len(line) for line in py_lines[5:-2]] == [64] * (len(py_lines) - 7)
    import base64

    body = base64.b64decode("".join(py_lines[5:-1]))
    assert body == (py_pki / "private" / "francois.p12").read_bytes()


@pytest.mark.parametrize(
    "options",
    [["noca"], ["nokey"], ["nofn"], ["nokey", "noca"], ["legacy"]],
)
def test_export_p12_options_like_reference(
    reference_for: Callable[[str], Any],
    pki_copy: Callable[[str], Path],
    options: list[str],
) -> None:
    reference = reference_for("3.2.7")
    ref_pki, py_pki = both_copies(pki_copy, "v3.2.7-rsa")
    ref, py = run_both(
        reference,
        ref_pki,
        py_pki,
        f"--passout=pass:{P12_PASS}",
        "export-p12",
        "alice",
        *options,
    )
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    ref_p12, py_p12 = (
        ref_pki / "private" / "alice.p12",
        py_pki / "private" / "alice.p12",
    )
    if "legacy" in options:
        # Deliberate difference: cryptography writes no RC2-40, so the
        # certificates are encrypted with 3DES like the key.
        ref_info = pkcs12_info(ref_p12, P12_PASS, "-legacy")
        py_info = pkcs12_info(py_p12, P12_PASS, "-legacy")
        assert "MAC: sha1, Iteration 2048" in ref_info
        assert "MAC: sha1, Iteration 2048" in py_info
        assert any("pbeWithSHA1And40BitRC2-CBC" in line for line in ref_info)
        assert any(
            "pbeWithSHA1And3-KeyTripleDES-CBC" in line and "Encrypted data" in line
            for line in py_info
        )
    else:
        assert pkcs12_info(py_p12, P12_PASS) == pkcs12_info(ref_p12, P12_PASS)
        assert p12_summary(py_p12, P12_PASS) == p12_summary(ref_p12, P12_PASS)
    extra = ["-legacy"] if "legacy" in options else []
    py_names = bag_attributes(py_p12, P12_PASS, *extra)
    assert py_names == bag_attributes(ref_p12, P12_PASS, *extra)


def test_export_p12_usefn_and_friendly_name(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(
        pki,
        f"--passout=pass:{P12_PASS}",
        "--usefn=Alice Laptop",
        "export-p12",
        "alice",
        "usefn",
    )
    assert result.returncode == 0, result.stderr
    names = bag_attributes(pki / "private" / "alice.p12", P12_PASS)
    assert names == ["friendlyName: Alice Laptop", "friendlyName: Alice Laptop"]


def test_export_p12_nopass(
    reference_for: Callable[[str], Any], pki_copy: Callable[[str], Path]
) -> None:
    reference = reference_for("3.2.7")
    ref_pki, py_pki = both_copies(pki_copy, "v3.2.7-rsa")
    ref, py = run_both(reference, ref_pki, py_pki, "export-p12", "alice", "nopass")
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    ref_p12, py_p12 = (
        ref_pki / "private" / "alice.p12",
        py_pki / "private" / "alice.p12",
    )
    # Both open with the empty password and hold the same key and certificates.
    assert p12_summary(py_p12, "") == p12_summary(ref_p12, "")
    # Deliberate difference: the bags are unencrypted rather than encrypted
    # with the empty password, under the same SHA-256 MAC.
    py_info = pkcs12_info(py_p12, "")
    assert "MAC: sha256, Iteration 2048" in py_info
    assert "Key bag" in py_info
    assert "Shrouded Keybag" not in " ".join(py_info)


def test_export_p12_encrypted_key_nopass(pki_copy: Callable[[str], Path]) -> None:
    # Deliberate difference: easy-rsa 3.2.7 replaces --passin with an empty
    # passphrase for 'nopass', so it cannot export an encrypted key then.
    pki = pki_copy("v3.2.7-rsa")
    encrypt_key(pki / "private" / "alice.key", OLD_PASS)
    result = run_product(
        pki, f"--passin=pass:{OLD_PASS}", "export-p12", "alice", "nopass"
    )
    assert result.returncode == 0, result.stderr
    assert load_p12(pki / "private" / "alice.p12", "").key is not None


def test_export_p12_read_by_openssl_with_prompts(
    pki_copy: Callable[[str], Path],
) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    encrypt_key(pki / "private" / "alice.key", OLD_PASS)
    result = run_product(
        pki,
        "export-p12",
        "alice",
        input=f"{OLD_PASS}\n{P12_PASS}\n{P12_PASS}\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Enter Export Password:" in result.stderr
    assert "Verifying - Enter Export Password:" in result.stderr
    info = pkcs12_info(pki / "private" / "alice.p12", P12_PASS)
    assert "MAC: sha256, Iteration 2048" in info


def test_export_p12_missing_ca_confirmed(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.2.7-rsa")
    (pki / "ca.crt").unlink()
    result = run_product(
        pki,
        f"--passout=pass:{P12_PASS}",
        "export-p12",
        "alice",
        batch=False,
        input="yes\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Type the word 'yes'" in result.stderr
    assert load_p12(pki / "private" / "alice.p12", P12_PASS).additional_certs == []


def test_export_p12_missing_key_confirmed(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.2.7-rsa")
    (pki / "private" / "alice.key").unlink()
    result = run_product(
        pki,
        f"--passout=pass:{P12_PASS}",
        "export-p12",
        "alice",
        batch=False,
        input="yes\n",
    )
    assert result.returncode == 0, result.stderr
    assert load_p12(pki / "private" / "alice.p12", P12_PASS).key is None


def test_export_p12_offline_ca_key(
    reference_for: Callable[[str], Any], pki_copy: Callable[[str], Path]
) -> None:
    # Deliberate difference: easy-rsa 3.2.7 wants private/ca.key present
    # before it includes ca.crt, so a PKI whose CA key is kept offline
    # cannot export in batch mode. easyrsa_py needs only ca.crt.
    reference = reference_for("3.2.7")
    ref_pki, py_pki = both_copies(pki_copy, "v3.2.7-rsa")
    for pki in (ref_pki, py_pki):
        (pki / "private" / "ca.key").unlink()
    ref, py = run_both(
        reference, ref_pki, py_pki, f"--passout=pass:{P12_PASS}", "export-p12", "alice"
    )
    assert ref.returncode != 0
    assert py.returncode == 0, py.stderr
    assert (
        len(load_p12(py_pki / "private" / "alice.p12", P12_PASS).additional_certs) == 1
    )


@pytest.mark.parametrize(
    ("kind", "arguments", "prepare", "message"),
    [
        # easy-rsa 3.2.7 checks the key before the certificate.
        ("p12", ["nobody"], None, "Missing private key"),
        ("p12", ["nobody", "nokey"], None, "Missing certificate"),
        ("p7", ["nobody"], None, "Missing certificate"),
        ("p8", ["nobody"], None, "Missing private key"),
        ("p1", ["nobody"], None, "Missing private key"),
        ("p12", ["alice"], "ca.crt", "Missing CA certificate"),
        ("p7", ["alice"], "ca.crt", "Missing CA certificate"),
        ("p12", ["alice"], "private/alice.key", "Missing private key"),
        ("p12", ["alice", "bogus"], None, "Unknown option 'bogus'"),
        ("p8", ["../alice"], None, "Invalid certificate name '../alice'"),
        ("p12", ["issued/alice"], None, "Invalid certificate name 'issued/alice'"),
        ("p7", ["/tmp/alice"], None, "Invalid certificate name '/tmp/alice'"),
        ("p1", [""], None, "Missing name"),
        ("p12", [], None, "Missing name"),
    ],
)
def test_export_bad_input(
    pki_copy: Callable[[str], Path],
    kind: str,
    arguments: list[str],
    prepare: str | None,
    message: str,
) -> None:
    pki = pki_copy("v3.2.7-rsa")
    if prepare is not None:
        (pki / prepare).unlink()
    before = pki_state(pki)
    result = run_product(
        pki, "--passout=pass:abcd", f"export-{kind}", *arguments
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize("kind", ["p12", "p8", "p1"])
@pytest.mark.parametrize(
    "source", ["pass:wrong", "env:H3_WRONG_PASS", "file:{dir}/wrong"]
)
def test_export_wrong_passin(
    pki_copy: Callable[[str], Path], tmp_path: Path, kind: str, source: str
) -> None:
    pki = pki_copy("v3.2.7-rsa")
    encrypt_key(pki / "private" / "alice.key", OLD_PASS)
    (tmp_path / "wrong").write_text("wrong\n")
    before = pki_state(pki)
    result = run_product(
        pki,
        f"--passin={source.format(dir=tmp_path)}",
        "--passout=pass:abcd",
        f"export-{kind}",
        "alice",
        env={"H3_WRONG_PASS": "wrong"},
    )
    assert result.returncode == 1
    assert (
        f"does not decrypt the private key {pki / 'private' / 'alice.key'}"
        in result.stderr
    )
    assert pki_state(pki) == before


def test_export_key_certificate_mismatch(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.2.7-rsa")
    (pki / "private" / "alice.key").write_bytes(
        (pki / "private" / "server.key").read_bytes()
    )
    before = pki_state(pki)
    result = run_product(pki, "--passout=pass:abcd", "export-p12", "alice")
    assert result.returncode == 1
    assert "does not match the certificate" in result.stderr
    assert pki_state(pki) == before


# --- export-p7 -------------------------------------------------------------------


@pytest.mark.parametrize("options", [[], ["noca"]])
def test_export_p7_like_reference(
    reference: Any, pki_copy: Callable[[str], Path], options: list[str]
) -> None:
    ref_pki, py_pki = both_copies(pki_copy, VERSION_FIXTURES[reference.version])
    ref, py = run_both(reference, ref_pki, py_pki, "export-p7", "alice", *options)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    ref_p7, py_p7 = ref_pki / "issued" / "alice.p7b", py_pki / "issued" / "alice.p7b"
    assert py_p7.read_bytes().startswith(b"-----BEGIN PKCS7-----\n")

    def certificates(path: Path) -> list[bytes]:
        loaded = pkcs7.load_pem_pkcs7_certificates(path.read_bytes())
        return [cert.public_bytes(serialization.Encoding.DER) for cert in loaded]

    assert certificates(py_p7) == certificates(ref_p7)
    assert len(certificates(py_p7)) == (1 if options else 2)
    assert tree_modes(py_pki) == tree_modes(ref_pki)


def test_export_p7_follows_umask(
    reference_for: Callable[[str], Any], pki_copy: Callable[[str], Path]
) -> None:
    reference = reference_for("3.2.7")
    ref_pki, py_pki = both_copies(pki_copy, "v3.2.7-rsa")
    ref, py = run_both(reference, ref_pki, py_pki, "--umask=022", "export-p7", "alice")
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    assert mode_of(py_pki / "issued" / "alice.p7b") == mode_of(
        ref_pki / "issued" / "alice.p7b"
    )


# --- export-p8 and export-p1 -------------------------------------------------------


def test_export_p8_like_reference(
    reference: Any, pki_copy: Callable[[str], Path]
) -> None:
    ref_pki, py_pki = both_copies(pki_copy, VERSION_FIXTURES[reference.version])
    ref, py = run_both(
        reference, ref_pki, py_pki, f"--passout=pass:{NEW_PASS}", "export-p8", "alice"
    )
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    ref_p8, py_p8 = ref_pki / "private" / "alice.p8", py_pki / "private" / "alice.p8"
    assert py_p8.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert (
        encryption_objects(py_p8.read_bytes())[:5]
        == encryption_objects(ref_p8.read_bytes())[:5]
    )
    assert public_der(load_key(py_p8, NEW_PASS)) == public_der(
        load_key(ref_p8, NEW_PASS)
    )
    assert tree_modes(py_pki) == tree_modes(ref_pki)


def test_export_p8_nopass(
    reference_for: Callable[[str], Any], pki_copy: Callable[[str], Path]
) -> None:
    reference = reference_for("3.2.7")
    ref_pki, py_pki = both_copies(pki_copy, "v3.2.7-ed25519")
    ref, py = run_both(reference, ref_pki, py_pki, "export-p8", "alice", "nopass")
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr

    # Deliberate difference: easy-rsa encrypts with the empty passphrase.
    ref_pem = (ref_pki / "private" / "alice.p8").read_bytes()
    py_pem = (py_pki / "private" / "alice.p8").read_bytes()
    assert ref_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert py_pem.startswith(b"-----BEGIN PRIVATE KEY-----")

    # The same key is inside both files.
    opened = subprocess.run(
        [
            "openssl",
            "pkey",
            "-in",
            str(ref_pki / "private" / "alice.p8"),
            "-passin",
            "pass:",
            "-pubout",
        ],
        capture_output=True,
        check=True,
    )
    py_key = load_key(py_pki / "private" / "alice.p8", None)
    assert public_der(py_key) == serialization.load_pem_public_key(
        opened.stdout
    ).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert tree_modes(py_pki) == tree_modes(ref_pki)


def test_export_p8_prompts(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(
        pki, "export-p8", "alice", input=f"{NEW_PASS}\n{NEW_PASS}\n"
    )
    assert result.returncode == 0, result.stderr
    assert "Enter Encryption Password:" in result.stderr
    assert "Verifying - Enter Encryption Password:" in result.stderr
    assert load_key(pki / "private" / "alice.p8", NEW_PASS) is not None


@pytest.mark.parametrize("options", [[f"--passout=pass:{NEW_PASS}"], ["--nopass"]])
def test_export_p1_like_reference(
    reference_for: Callable[[str], Any],
    pki_copy: Callable[[str], Path],
    options: list[str],
) -> None:
    reference = reference_for("3.2.7")
    ref_pki, py_pki = both_copies(pki_copy, "v3.2.7-rsa")
    ref, py = run_both(reference, ref_pki, py_pki, *options, "export-p1", "alice")
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    ref_lines = (ref_pki / "private" / "alice.p1").read_text().splitlines()
    py_lines = (py_pki / "private" / "alice.p1").read_text().splitlines()
    assert py_lines[0] == ref_lines[0] == "-----BEGIN RSA PRIVATE KEY-----"
    if options == ["--nopass"]:
        assert not ref_lines[1].startswith("Proc-Type")
        assert not py_lines[1].startswith("Proc-Type")
        passphrase = None
    else:
        assert py_lines[1] == ref_lines[1] == "Proc-Type: 4,ENCRYPTED"
        assert (
            py_lines[2].split(",")[0]
            == ref_lines[2].split(",")[0]
            == "DEK-Info: AES-256-CBC"
        )
        passphrase = NEW_PASS
    py_key = load_key(py_pki / "private" / "alice.p1", passphrase)
    ref_key = load_key(ref_pki / "private" / "alice.p1", passphrase)
    assert public_der(py_key) == public_der(ref_key)
    assert tree_modes(py_pki) == tree_modes(ref_pki)


def test_export_p1_rejects_ec_key(
    reference_for: Callable[[str], Any], pki_copy: Callable[[str], Path]
) -> None:
    reference = reference_for("3.2.2")
    ref_pki, py_pki = both_copies(pki_copy, "v3.2.2-ec")
    before = pki_state(py_pki)
    ref, py = run_both(reference, ref_pki, py_pki, "--nopass", "export-p1", "alice")
    assert ref.returncode != 0
    assert py.returncode == 1
    assert "needs an RSA key" in py.stderr
    assert pki_state(py_pki) == before


def test_export_overwrites_previous_file(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.2.7-rsa")
    for passphrase in ("first-pass", "second-pass"):
        result = run_product(
            pki, f"--passout=pass:{passphrase}", "export-p8", "alice"
        )
        assert result.returncode == 0, result.stderr
    assert load_key(pki / "private" / "alice.p8", "second-pass") is not None


def test_export_p12_certificate_loaded_by_x509(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    result = run_product(
        pki, f"--passout=pass:{P12_PASS}", "export-p12", "alice"
    )
    assert result.returncode == 0, result.stderr
    bundle = load_p12(pki / "private" / "alice.p12", P12_PASS)
    assert bundle.cert is not None
    expected = x509.load_pem_x509_certificate(
        (pki / "issued" / "alice.crt").read_bytes()
    )
    assert bundle.cert.certificate == expected


def test_export_p12_no_inline(
    reference_for: Callable[[str], Any], pki_copy: Callable[[str], Path]
) -> None:
    reference = reference_for("3.2.7")
    ref_pki, py_pki = both_copies(pki_copy, "v3.2.7-rsa")
    ref, py = run_both(
        reference,
        ref_pki,
        py_pki,
        f"--passout=pass:{P12_PASS}",
        "export-p12",
        "alice",
        env={"EASYRSA_NO_INLINE": "1"},
    )
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    assert not (py_pki / "inline" / "private" / "alice.p12-inline").exists()
    assert tree_modes(py_pki) == tree_modes(ref_pki)


def test_export_p12_modes_under_umask_022(
    reference_for: Callable[[str], Any], pki_copy: Callable[[str], Path]
) -> None:
    reference = reference_for("3.2.7")
    ref_pki, py_pki = both_copies(pki_copy, "v3.2.7-rsa")
    ref, py = run_both(
        reference,
        ref_pki,
        py_pki,
        "--umask=022",
        f"--passout=pass:{P12_PASS}",
        "export-p12",
        "alice",
    )
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert py.returncode == 0, py.stderr
    assert mode_of(py_pki / "private" / "alice.p12") == 0o600
    assert mode_of(ref_pki / "private" / "alice.p12") == 0o600
    # Deliberate difference: the inline copy contains the key, so it stays
    # 0600 where easy-rsa's shell redirection gives it the umask's 0644.
    inline = Path("inline") / "private" / "alice.p12-inline"
    assert mode_of(ref_pki / inline) == 0o644
    assert mode_of(py_pki / inline) == 0o600
