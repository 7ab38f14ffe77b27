"""Regression tests for defects a hostile operator found in the key, export,
inline, renew, show and TLS commands.

Each test runs easyrsa_py as a process on a copy of a fixture PKI and
checks the exit code, the message and the files left behind. A failed
command must leave the PKI byte for byte as it was.
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID
from pkitools import pki_state, run_product

FIXTURE = "v3.2.7-rsa"


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- passphrase sources ------------------------------------------------------


@pytest.mark.parametrize("descriptor", ["\u00b2", "99999999999999999999999"])
def test_passin_odd_descriptor_is_rejected(
    pki_copy: Callable[[str], Path], descriptor: str
) -> None:
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_product(pki, f"--passin=fd:{descriptor}", "export-p8", "alice", "nopass")

    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert f"fd:{descriptor}" in result.stderr
    assert pki_state(pki) == before


def test_empty_passin_names_passin_in_error(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)
    encrypted = run_product(pki, "--passout=pass:secret-one", "set-pass", "alice")
    assert encrypted.returncode == 0, encrypted.stderr
    before = pki_state(pki)

    result = run_product(pki, "--passin=pass:", "export-p8", "alice", "nopass")

    assert result.returncode == 1
    assert "does not decrypt the private key" in result.stderr
    assert "--passin" in result.stderr
    assert "typed" not in result.stderr
    assert pki_state(pki) == before


# --- modes of files that contain a private key --------------------------------


@pytest.mark.parametrize(
    ("command", "output"),
    [
        ("export-p8", "private/alice.p8"),
        ("export-p1", "private/alice.p1"),
        ("export-p12", "private/alice.p12"),
        ("set-pass", "private/alice.key"),
    ],
)
def test_key_over_readable_file_private(
    pki_copy: Callable[[str], Path], command: str, output: str
) -> None:
    pki = pki_copy(FIXTURE)
    target = pki / output
    target.touch()
    target.chmod(0o644)

    result = run_product(pki, command, "alice", "nopass")

    assert result.returncode == 0, result.stderr
    assert file_mode(target) == 0o600


def test_p12_inline_over_readable_file_private(
    pki_copy: Callable[[str], Path],
) -> None:
    pki = pki_copy(FIXTURE)
    target = pki / "inline" / "private" / "alice.p12-inline"
    target.touch()
    target.chmod(0o644)

    result = run_product(pki, "export-p12", "alice", "nopass")

    assert result.returncode == 0, result.stderr
    assert file_mode(target) == 0o600


def test_inline_private_under_umask_000(
    pki_copy: Callable[[str], Path],
) -> None:
    # easy-rsa 3.2.7 writes this file, which contains the private key, with
    # mode 0666 under --umask=000.
    pki = pki_copy(FIXTURE)
    for path in sorted((pki / "inline").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()

    result = run_product(pki, "--umask=000", "inline", "alice")

    assert result.returncode == 0, result.stderr
    assert file_mode(pki / "inline" / "private") == 0o700
    assert file_mode(pki / "inline" / "private" / "alice.inline") == 0o600


def test_inline_over_readable_file_private(
    pki_copy: Callable[[str], Path],
) -> None:
    pki = pki_copy(FIXTURE)
    target = pki / "inline" / "private" / "alice.inline"
    target.chmod(0o644)

    result = run_product(pki, "inline", "alice")

    assert result.returncode == 0, result.stderr
    assert file_mode(target) == 0o600


# --- inline with parts that are broken ----------------------------------------


def test_inline_rejects_key_of_other_certificate(
    pki_copy: Callable[[str], Path],
) -> None:
    pki = pki_copy(FIXTURE)
    (pki / "private" / "alice.key").write_bytes((pki / "private" / "server.key").read_bytes())
    before = pki_state(pki)

    result = run_product(pki, "inline", "alice")

    assert result.returncode == 1
    assert "does not match" in result.stderr
    assert str(pki / "private" / "alice.key") in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"-----BEGIN PRIVATE KEY-----\nAAAA\n"])
def test_inline_rejects_invalid_key(pki_copy: Callable[[str], Path], content: bytes) -> None:
    pki = pki_copy(FIXTURE)
    (pki / "private" / "alice.key").write_bytes(content)
    before = pki_state(pki)

    result = run_product(pki, "inline", "alice")

    assert result.returncode == 1
    assert str(pki / "private" / "alice.key") in result.stderr
    assert "Traceback" not in result.stderr
    assert pki_state(pki) == before


def test_inline_rejects_invalid_ca_certificate(
    pki_copy: Callable[[str], Path],
) -> None:
    pki = pki_copy(FIXTURE)
    (pki / "ca.crt").write_bytes(b"not a certificate\n")
    before = pki_state(pki)

    result = run_product(pki, "inline", "alice")

    assert result.returncode == 1
    assert str(pki / "ca.crt") in result.stderr
    assert pki_state(pki) == before


def test_inline_accepts_encrypted_key(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)
    encrypted = run_product(pki, "--passout=pass:secret-one", "set-pass", "alice")
    assert encrypted.returncode == 0, encrypted.stderr

    result = run_product(pki, "inline", "alice")

    assert result.returncode == 0, result.stderr
    text = (pki / "inline" / "private" / "alice.inline").read_text()
    assert "-----BEGIN ENCRYPTED PRIVATE KEY-----" in text
    assert "secret-one" not in result.stderr + result.stdout


# --- show commands ------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "path"),
    [
        (("show-cert", "alice"), "issued/alice.crt"),
        (("show-req", "alice"), "reqs/alice.req"),
        (("show-ca",), "ca.crt"),
    ],
)
def test_show_invalid_pem_message_is_plain(
    pki_copy: Callable[[str], Path], command: tuple[str, ...], path: str
) -> None:
    pki = pki_copy(FIXTURE)
    (pki / path).write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n")

    result = run_product(pki, *command)

    assert result.returncode == 1
    assert str(pki / path) in result.stderr
    assert "cryptography.io" not in result.stderr
    assert "MalformedFraming" not in result.stderr


# --- write --------------------------------------------------------------------


def test_write_empty_destination_prints(
    pki_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    # easy-rsa 3.2.7 prints the file when the destination is empty.
    pki = pki_copy(FIXTURE)
    work = tmp_path / "work"
    work.mkdir()

    result = run_product(pki, "write", "vars", "", cwd=work)

    assert result.returncode == 0, result.stderr
    assert "EASYRSA" in result.stdout
    assert os.listdir(work) == []


# --- renew --------------------------------------------------------------------


def revoke_in_index(pki: Path, common_name: str) -> None:
    """Mark the row of `common_name` revoked by hand, keeping issued/ as it is."""
    lines = (pki / "index.txt").read_text().splitlines(keepends=True)
    for position, line in enumerate(lines):
        fields = line.split("\t")
        if fields[0] == "V" and fields[5].strip() == f"/CN={common_name}":
            fields[0], fields[2] = "R", "240101000000Z,keyCompromise"
            lines[position] = "\t".join(fields)
    (pki / "index.txt").write_text("".join(lines))


def test_renew_rejects_revoked_certificate(pki_copy: Callable[[str], Path]) -> None:
    # easy-rsa 3.2.7 renews it, certifying a revoked key again.
    pki = pki_copy(FIXTURE)
    revoke_in_index(pki, "alice")
    before = pki_state(pki)

    result = run_product(pki, "renew", "alice")

    assert result.returncode == 1
    assert "revoked" in result.stderr
    assert str(pki / "index.txt") in result.stderr
    assert pki_state(pki) == before


def test_renew_rejects_certificate_of_other_ca(
    pki_copy: Callable[[str], Path],
) -> None:
    # easy-rsa 3.2.7 renews it, and then cannot revoke the old one.
    pki = pki_copy(FIXTURE)
    other = pki_copy("v3.2.2-ec")
    (pki / "issued" / "alice.crt").write_bytes((other / "issued" / "alice.crt").read_bytes())
    before = pki_state(pki)

    result = run_product(pki, "renew", "alice")

    assert result.returncode == 1
    assert "did not issue" in result.stderr
    assert str(pki / "issued" / "alice.crt") in result.stderr
    assert pki_state(pki) == before


def test_renew_huge_days_is_rejected(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_product(pki, "--days=99999999", "renew", "alice")

    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert "--days" in result.stderr
    assert pki_state(pki) == before


# --- TLS keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [("gen-tls-auth-key",), ("gen-tls-crypt-key",), ("import-tls-key", "KEY")]
)
def test_tls_key_dangling_link_is_named(
    pki_copy: Callable[[str], Path], tmp_path: Path, command: tuple[str, ...]
) -> None:
    pki = pki_copy(FIXTURE)
    source = pki_copy(FIXTURE)
    generated = run_product(source, "gen-tls-auth-key")
    assert generated.returncode == 0, generated.stderr
    key_file = source / "private" / "easyrsa-tls.key"
    link_target = tmp_path / "missing-target.key"
    (pki / "private" / "easyrsa-tls.key").symlink_to(link_target)
    before = pki_state(pki)
    arguments = [str(key_file) if word == "KEY" else word for word in command]

    result = run_product(pki, *arguments)

    assert result.returncode == 1
    assert "symbolic link" in result.stderr
    assert str(link_target) in result.stderr
    assert "at the same time" not in result.stderr
    assert not link_target.exists()
    assert pki_state(pki) == before


def test_inline_disabled_skips_source_checks(
    pki_copy: Callable[[str], Path],
) -> None:
    pki = pki_copy(FIXTURE)
    (pki / "private" / "alice.key").write_bytes(b"garbage\n")
    before = pki_state(pki)

    result = run_product(pki, "--noinline", "inline", "alice")

    assert result.returncode == 0, result.stderr
    assert pki_state(pki) == before


def malformed_extension() -> x509.UnrecognizedExtension:
    """Return a subjectAltName whose value is not valid DER."""
    return x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x01\x02")


def write_malformed_certificate(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(malformed_extension(), critical=False)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def write_malformed_request(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(malformed_extension(), critical=False)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(request.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize(
    ("command", "path"),
    [
        (("show-cert", "alice"), "issued/alice.crt"),
        (("show-cert", "alice", "full"), "issued/alice.crt"),
        (("show-req", "alice"), "reqs/alice.req"),
    ],
)
def test_show_malformed_extension_is_error(
    pki_copy: Callable[[str], Path], command: tuple[str, ...], path: str
) -> None:
    pki = pki_copy(FIXTURE)
    if path.endswith(".req"):
        write_malformed_request(pki / path)
    else:
        write_malformed_certificate(pki / path)

    result = run_product(pki, *command)

    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert str(pki / path) in result.stderr
    assert "subject_alternative_name" in result.stderr


def sign_with_fixture_ca(pki: Path, name: str, extension: x509.ExtensionType) -> None:
    """Replace issued/NAME.crt with one the fixture CA signs, carrying `extension`."""
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "private" / "ca.key").read_bytes(), None)
    key = serialization.load_pem_private_key((pki / "private" / f"{name}.key").read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    assert isinstance(key, rsa.RSAPrivateKey)
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=10))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(extension, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (pki / "issued" / f"{name}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def test_verify_malformed_extension_fails(pki_copy: Callable[[str], Path]) -> None:
    # OpenSSL 3.0's verify finds no issuer for such a certificate (error 20).
    pki = pki_copy(FIXTURE)
    sign_with_fixture_ca(pki, "alice", malformed_extension())

    result = run_product(pki, "verify-cert", "alice")

    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert "error 20 at 0 depth lookup" in result.stderr
    assert "Verification status: FAILED" in result.stderr


def test_renew_malformed_extension_is_error(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)
    sign_with_fixture_ca(pki, "alice", malformed_extension())
    before = pki_state(pki)

    result = run_product(pki, "renew", "alice")

    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert str(pki / "issued" / "alice.crt") in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize("output", ["private/alice.p12", "inline/private/alice.p12-inline"])
def test_p12_output_folder_left_alone(pki_copy: Callable[[str], Path], output: str) -> None:
    pki = pki_copy(FIXTURE)
    (pki / output).mkdir(mode=0o755)
    (pki / output).chmod(0o755)
    before = pki_state(pki)

    result = run_product(pki, "export-p12", "alice", "nopass")

    assert result.returncode == 1
    assert str(pki / output) in result.stderr
    assert file_mode(pki / output) == 0o755
    assert pki_state(pki) == before


# --- bytes that are not UTF-8 ---------------------------------------------------

# Python passes these surrogates to the child process as the bytes 0xFF 0xFE.
NOT_UTF8 = "\udcff\udcfe"


def test_p12_non_utf8_passphrase_is_error(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_product(pki, f"--passout=pass:{NOT_UTF8}", "export-p12", "alice")

    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert "not valid UTF-8" in result.stderr
    assert pki_state(pki) == before


def test_p12_non_utf8_friendly_name_is_error(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_product(
        pki, "export-p12", "alice", "nopass", env={"EASYRSA_P12_FR_NAME": NOT_UTF8}
    )

    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert "EASYRSA_P12_FR_NAME" in result.stderr
    assert pki_state(pki) == before


def test_p12_non_utf8_name_with_nofn(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)
    name = "\udcff"
    (pki / "issued" / f"{name}.crt").write_bytes((pki / "issued" / "alice.crt").read_bytes())
    (pki / "private" / f"{name}.key").write_bytes((pki / "private" / "alice.key").read_bytes())

    refused = run_product(pki, "export-p12", name, "nopass")
    exported = run_product(pki, "export-p12", name, "nopass", "nofn")

    assert "Traceback" not in refused.stderr
    assert refused.returncode == 1
    assert "nofn" in refused.stderr
    assert exported.returncode == 0, exported.stderr
    assert (pki / "private" / f"{name}.p12").is_file()


def break_subject_utf8(path: Path) -> None:
    """Replace the last byte of the commonName 'alice' with 0xE9, which is not UTF-8 there.

    The signature no longer verifies, but the file stays a well-formed
    certificate whose subject cryptography cannot decode.
    """
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    der = certificate.public_bytes(serialization.Encoding.DER)
    position = der.rfind(b"alice")
    broken = der[: position + 4] + b"\xe9" + der[position + 5 :]
    body = base64.encodebytes(broken).decode("ascii")
    path.write_text(f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n")


@pytest.mark.parametrize("command", ["verify-cert", "renew"])
def test_invalid_subject_encoding_is_error(
    pki_copy: Callable[[str], Path], command: str
) -> None:
    pki = pki_copy(FIXTURE)
    break_subject_utf8(pki / "issued" / "alice.crt")
    before = pki_state(pki)

    result = run_product(pki, command, "alice")

    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert str(pki / "issued" / "alice.crt") in result.stderr
    assert pki_state(pki) == before


def test_inline_ca_is_rejected(pki_copy: Callable[[str], Path]) -> None:
    # easy-rsa 3.2.7 writes inline/private/ca.inline with the CA private key in it.
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_product(pki, "inline", "ca")

    assert result.returncode == 1
    assert "private/ca.key" in result.stderr
    assert not (pki / "inline" / "private" / "ca.inline").exists()
    assert pki_state(pki) == before


@pytest.mark.parametrize(
    "openssl_arguments",
    [
        ["rsa", "-traditional", "-camellia128"],
        ["pkcs8", "-topk8", "-v2", "aria-256-cbc"],
    ],
)
def test_key_unknown_cipher_is_named(
    pki_copy: Callable[[str], Path], openssl_arguments: list[str]
) -> None:
    pki = pki_copy(FIXTURE)
    key = pki / "private" / "alice.key"
    encrypted = pki / "alice.encrypted"
    subprocess.run(
        ["openssl", *openssl_arguments, "-in", str(key), "-out", str(encrypted), "-passout", "pass:secret-one"],
        check=True,
        capture_output=True,
    )
    os.replace(encrypted, key)
    before = pki_state(pki)

    result = run_product(pki, "--passin=pass:secret-one", "export-p8", "alice", "nopass")

    assert result.returncode == 1
    assert "cipher that easyrsa_py cannot decrypt" in result.stderr
    assert "does not decrypt" not in result.stderr
    assert str(key) in result.stderr
    assert pki_state(pki) == before


def test_passin_file_long_line_as_openssl(
    pki_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    # OpenSSL's app_passwd reads a file: passphrase with BIO_gets into a
    # 1024-byte buffer, so a longer line is cut to its first 1023 bytes.
    pki = pki_copy(FIXTURE)
    key = pki / "private" / "alice.key"
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text("x" * 2000)
    encrypted = pki / "alice.encrypted"
    subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-out", str(encrypted), "-aes256", "-passout", f"file:{passphrase_file}"],
        check=True,
        capture_output=True,
    )
    os.replace(encrypted, key)

    result = run_product(pki, f"--passin=file:{passphrase_file}", "export-p8", "alice", "nopass")

    assert result.returncode == 0, result.stderr


# --- messages for files in the way and unreadable input ------------------------


@pytest.mark.parametrize("folder, args", [("inline", ("inline", "alice")), ("expired", ("expire", "alice"))])
def test_file_where_folder_expected(
    pki_copy: Callable[[str], Path], folder: str, args: tuple[str, ...]
) -> None:
    pki = pki_copy(FIXTURE)
    target = pki / folder
    if target.is_dir():
        for child in sorted(target.rglob("*"), reverse=True):
            child.rmdir() if child.is_dir() else child.unlink()
        target.rmdir()
    target.write_bytes(b"")
    before = pki_state(pki)

    result = run_product(pki, *args)

    assert result.returncode == 1
    assert f"Cannot create the folder {target}: a file of that name is in the way" in result.stderr
    assert pki_state(pki) == before


def test_certificate_with_nul_bytes_names_the_file(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)
    certificate = pki / "issued" / "alice.crt"
    certificate.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\x00\x00\n-----END CERTIFICATE-----\n")

    result = run_product(pki, "show-eku", "alice")

    assert result.returncode == 1
    assert "index out of range" not in result.stderr
    assert str(certificate) in result.stderr


def test_zero_keysize_says_whole_number(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)

    result = run_product(pki, "--keysize=0", "gen-req", "zed", "nopass")

    assert result.returncode == 1
    assert "expected a whole number of 1 or more" in result.stderr


def test_sign_req_unknown_type_gives_one_message(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_product(pki, "sign-req", "clinet", "alice")

    assert result.returncode == 1
    assert "Unknown certificate type 'clinet'" in result.stderr
    assert "is not a standard certificate type" not in result.stderr
    assert pki_state(pki) == before


def test_revoke_mistyped_reason_is_named(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_product(pki, "revoke", "carol", "KeyCompromise")

    assert result.returncode == 1
    assert "Invalid revocation reason 'KeyCompromise'" in result.stderr
    assert "Did you mean 'keyCompromise'?" in result.stderr
    assert pki_state(pki) == before


def test_revoke_warning_speaks_of_future(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)

    result = run_product(pki, "revoke-issued", "carol", batch=False, input="no\n")

    assert result.returncode == 1
    assert "Files to move to the 'revoked' folder:" in result.stderr
    assert "Files moved" not in result.stderr


def test_revoke_gen_crl_notice(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)

    result = run_product(pki, "revoke", "carol", "--gen-crl")

    assert result.returncode == 0, result.stderr
    assert "until you run 'gen-crl'" not in result.stderr
    assert "Wrote the CRL" in result.stderr


def test_use_algo_wins_over_curve(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_product(pki, "--use-algo=ed", "--curve=secp384r1", "gen-req", "k", "nopass")

    assert result.returncode == 1
    assert "secp384r1" in result.stderr
    assert pki_state(pki) == before


def test_passphrase_file_keeps_carriage_return(pki_copy: Callable[[str], Path], tmp_path: Path) -> None:
    """OpenSSL ends a file: passphrase at '\\n' only, so a CRLF file's '\\r' is part of it."""
    pki = pki_copy(FIXTURE)
    secret = tmp_path / "pw"
    secret.write_bytes(b"SeCrEt99\r\n")
    made = run_product(pki, f"--passout=file:{secret}", "set-pass", "alice")
    assert made.returncode == 0, made.stderr

    opened = subprocess.run(
        ["openssl", "pkey", "-in", pki / "private" / "alice.key", "-passin", f"file:{secret}", "-noout"],
        check=False, capture_output=True, text=True,
    )

    assert opened.returncode == 0, opened.stderr


def test_init_pki_clears_left_session_folder(tmp_path: Path) -> None:
    """easy-rsa 3.2.7 leaves its session folder (8 hex digits) when it stops at a prompt."""
    pki = tmp_path / "pki"
    assert run_product(pki, "init-pki").returncode == 0
    (pki / "01851ae7").mkdir()
    (pki / "01851ae7" / "temp.1").write_text("x")

    result = run_product(pki, "init-pki")

    assert result.returncode == 0, result.stderr
    assert not (pki / "01851ae7").exists()


def test_show_expire_finds_non_ascii_name(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE)
    assert run_product(pki, "build-client-full", "jöhn2", "nopass").returncode == 0

    result = run_product(pki, "--days=3000", "show-expire", "jöhn2")

    assert result.returncode == 0
    assert "CN: jöhn2" in result.stdout
    assert "No certificate named" not in result.stderr


def test_renewable_says_when_none(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.1.0-rsa")

    result = run_product(pki, "renewable", "alice")

    assert result.returncode == 1
    assert "No valid certificate ends within the renewal window" in result.stderr
