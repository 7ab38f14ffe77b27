"""Differential and mixed-use tests of init-pki, build-ca, renew-ca, self-sign-* and import-ca.

Each test runs the real easy-rsa and easyrsa_py with the same inputs on two
fresh PKIs and compares what they wrote: the tree and its modes, and the
certificate, request and key fields. Keys and serials are random, so bytes
are never compared.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pkitools import pki_state, run_product, tree_modes

PASSPHRASE = "ca-secret-pass"
# easy-rsa 3.1.0 writes its OpenSSL config files into the PKI; easyrsa_py
# and easy-rsa 3.2 write none.
OPENSSL_CONFIGS = ("openssl-easyrsa.cnf", "safessl-easyrsa.cnf")


def product(
    pki: Path, *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return run_product(pki, *args, env=env, **kwargs)


def product_ok(
    pki: Path, *args: str, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    result = product(pki, *args, **kwargs)
    assert result.returncode == 0, result.stderr
    return result


def reference_ok(
    reference: Any, pki: Path, *args: str, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = reference.run(pki, *args, **kwargs)
    return result


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def extension_shape(certificate: x509.Certificate) -> list[tuple[str, bool, str]]:
    """Describe each extension by OID, criticality and value, leaving out key ids and serials."""
    shape = []
    for extension in certificate.extensions:
        value = extension.value
        if isinstance(value, x509.SubjectKeyIdentifier):
            text = (
                "key id"
                if value.digest
                == x509.SubjectKeyIdentifier.from_public_key(
                    certificate.public_key()  # type: ignore[arg-type]
                ).digest
                else "other key id"
            )
        elif isinstance(value, x509.AuthorityKeyIdentifier):
            text = (
                f"key id {value.key_identifier is not None}, issuer {value.authority_cert_issuer}, "
                f"own serial {value.authority_cert_serial_number == certificate.serial_number}"
            )
        else:
            text = repr(value)
        shape.append((extension.oid.dotted_string, extension.critical, text))
    return shape


def stable_lines(text: str) -> list[str]:
    """Return the lines of a certificate's text that hold no hex bytes and no dates."""
    return [
        line
        for line in text.splitlines()
        if not re.search("[0-9A-Fa-f]{2}:", line) and "Not " not in line
    ]


def certificate_shape(path: Path) -> dict[str, Any]:
    """Return the fields of a certificate that two tools must agree on."""
    certificate = load_certificate(path)
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    return {
        "version": certificate.version,
        "subject": certificate.subject.public_bytes(),
        "issuer": certificate.issuer.public_bytes(),
        "lifetime_days": round(lifetime / timedelta(days=1)),
        "signature": certificate.signature_algorithm_oid.dotted_string,
        "extensions": extension_shape(certificate),
        "key": key_shape(certificate.public_key()),
        "serial_bits_max": certificate.serial_number.bit_length() <= 160,
    }


def key_shape(key: Any) -> tuple[str, int | str]:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return ("rsa", key.key_size)
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return ("ec", key.curve.name)
    return (type(key).__name__, "")


def private_key_shape(
    path: Path, passphrase: bytes | None
) -> tuple[str, tuple[str, int | str]]:
    data = path.read_bytes()
    header = data.splitlines()[0].decode()
    key = serialization.load_pem_private_key(data, password=passphrase)
    return header, key_shape(key)


def init_both(reference: Any, tmp_path: Path, *arguments: str) -> tuple[Path, Path]:
    real, ours = tmp_path / "real" / "pki", tmp_path / "ours" / "pki"
    real.parent.mkdir()
    ours.parent.mkdir()
    reference_ok(reference, real, "init-pki", *arguments)
    product_ok(ours, "init-pki", *arguments)
    return real, ours


# --- init-pki --------------------------------------------------------------------


def test_init_pki_tree_matches(reference: Any, tmp_path: Path) -> None:
    real, ours = init_both(reference, tmp_path)
    real_tree = tree_modes(real, exclude=OPENSSL_CONFIGS)
    if reference.version == "3.1.0":
        # 3.1.0 copies vars.example to vars and makes issued/ only at build-ca.
        assert real_tree.pop("vars") == 0o600
        real_tree["issued"] = 0o700
    assert tree_modes(ours) == real_tree


def test_init_pki_ec_vars_read_by_real_script(
    reference_for: Any, tmp_path: Path
) -> None:
    real_327 = reference_for("3.2.7")
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki", "ec", "prime256v1")
    lines = [
        line
        for line in (pki / "vars").read_text().splitlines()
        if line.startswith("set_var")
    ]
    assert lines[0].startswith("set_var EASYRSA_ALGO ec")
    assert lines[1].startswith("set_var EASYRSA_CURVE prime256v1")
    reference_ok(real_327, pki, "build-ca", "nopass", check=True)
    assert key_shape(load_certificate(pki / "ca.crt").public_key()) == (
        "ec",
        "secp256r1",
    )


def test_init_pki_ec_vars_read_by_product(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki", "ed448")
    product_ok(pki, "build-ca", "nopass")
    key = load_certificate(pki / "ca.crt").public_key()
    assert type(key).__name__.startswith("Ed448")


def test_init_pki_soft_keeps_vars(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    (pki / "vars").write_text("set_var EASYRSA_KEY_SIZE 3072\n")
    product_ok(pki, "init-pki", "soft", "ec")
    assert (pki / "vars").read_text() == "set_var EASYRSA_KEY_SIZE 3072\n"


def test_init_pki_vars_example_ignored_by_real_script(
    reference_for: Any, tmp_path: Path
) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    (pki / "vars").write_bytes((pki / "vars.example").read_bytes())
    reference_ok(reference_for("3.2.7"), pki, "build-ca", "nopass", check=True)
    assert key_shape(load_certificate(pki / "ca.crt").public_key()) == ("rsa", 2048)


def test_init_pki_confirmation_yes_replaces(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "build-ca", "nopass")
    result = product(pki, "init-pki", batch=False, input="yes\n")
    assert result.returncode == 0, result.stderr
    assert "Confirm removal: " in result.stderr
    assert "Type the word 'yes' to continue" in result.stderr
    assert not (pki / "ca.crt").exists()
    assert sorted(p.name for p in pki.iterdir()) == [
        "issued",
        "private",
        "reqs",
        "vars.example",
    ]


def test_init_pki_confirmation_no_keeps(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "build-ca", "nopass")
    before = pki_state(pki)
    result = product(pki, "init-pki", batch=False, input="no\n")
    assert result.returncode == 1
    assert "Aborting without confirmation" in result.stderr
    assert pki_state(pki) == before


def test_init_pki_soft_keeps_requests(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "build-ca", "nopass")
    (pki / "reqs" / "alice.req").write_text("request\n")
    (pki / "vars").write_text("set_var EASYRSA_KEY_SIZE 3072\n")
    product_ok(pki, "init-pki", "soft")
    assert (pki / "reqs" / "alice.req").read_text() == "request\n"
    assert (pki / "vars").read_text() == "set_var EASYRSA_KEY_SIZE 3072\n"
    assert not (pki / "ca.crt").exists()
    assert not (pki / "private" / "ca.key").exists()
    assert not (pki / "index.txt").exists()


@pytest.mark.parametrize("entry", ["notes.txt", ".git", "Documents"])
def test_init_pki_rejects_unknown_entries(tmp_path: Path, entry: str) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    (pki / entry).mkdir() if "." not in entry.strip(".") else (pki / entry).write_text(
        "keep me\n"
    )
    before = pki_state(pki)
    result = product(pki, "init-pki")
    assert result.returncode == 1
    assert entry in result.stderr
    assert "is not an easy-rsa PKI" in result.stderr
    assert pki_state(pki) == before


def test_init_pki_rejects_home_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    result = product(home, "init-pki", env={"HOME": str(home)})
    assert result.returncode == 1
    assert "home folder" in result.stderr
    assert list(home.iterdir()) == []


def test_init_pki_rejects_working_folder(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "pki").mkdir(parents=True)
    result = product(work, "init-pki", cwd=work)
    assert result.returncode == 1
    assert "working folder" in result.stderr
    assert (work / "pki").is_dir()


def test_init_pki_rejects_unknown_curve(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    result = product(pki, "init-pki", "ec", "nocurve")
    assert result.returncode == 1
    assert "nocurve" in result.stderr
    assert not pki.exists()


def test_init_pki_held_lock_keeps_pki(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    (pki / "lock.file").write_text(f"{os.getpid()}\n")
    before = pki_state(pki)
    result = product(pki, "init-pki")
    assert result.returncode == 17
    assert pki_state(pki) == before


# --- build-ca --------------------------------------------------------------------


def test_build_ca_nopass_matches(reference: Any, tmp_path: Path) -> None:
    real, ours = init_both(reference, tmp_path)
    reference_ok(
        reference,
        real,
        "--req-cn=Test CA",
        "--days=1000",
        "build-ca",
        "nopass",
        check=True,
    )
    product_ok(ours, "--req-cn=Test CA", "--days=1000", "build-ca", "nopass")

    expected = certificate_shape(real / "ca.crt")
    if reference.version != "3.2.7":
        # Before 3.2.7 the `ca` profile left basicConstraints non-critical.
        oid, critical, value = expected["extensions"][0]
        assert (oid, critical) == ("2.5.29.19", False)
        expected["extensions"][0] = (oid, True, value)
    assert certificate_shape(ours / "ca.crt") == expected
    assert private_key_shape(ours / "private" / "ca.key", None) == private_key_shape(
        real / "private" / "ca.key", None
    )
    assert (ours / "index.txt").read_bytes() == b""
    assert (ours / "serial").read_bytes() == (real / "serial").read_bytes()

    real_tree = tree_modes(real, exclude=OPENSSL_CONFIGS)
    if reference.version == "3.1.0":
        # 3.1.0 also makes these two, and vars; 3.2 dropped them.
        assert real_tree.pop("index.txt.attr") == 0o600
        assert real_tree.pop("revoked/reqs_by_serial") == 0o700
        assert real_tree.pop("vars") == 0o600
    assert tree_modes(ours) == real_tree


def test_build_ca_custom_profile_matches(reference_for: Any, tmp_path: Path) -> None:
    real_327 = reference_for("3.2.7")
    real, ours = init_both(real_327, tmp_path)
    for pki in (real, ours):
        (pki / "x509-types").mkdir()
        (pki / "x509-types" / "ca").write_text(
            "basicConstraints = critical, CA:TRUE, pathlen:1\nsubjectKeyIdentifier = hash\n"
        )
        (pki / "x509-types" / "COMMON").write_text(
            "crlDistributionPoints = URI:http://example.net/ca.crl\n"
        )
    reference_ok(real_327, real, "--ku-crit", "build-ca", "nopass", check=True)
    product_ok(ours, "--ku-crit", "build-ca", "nopass")
    assert certificate_shape(ours / "ca.crt") == certificate_shape(real / "ca.crt")


def test_build_ca_default_common_name(reference_for: Any, tmp_path: Path) -> None:
    real, ours = init_both(reference_for("3.2.7"), tmp_path)
    reference_ok(reference_for("3.2.7"), real, "build-ca", "nopass", check=True)
    product_ok(ours, "build-ca", "nopass")
    name = load_certificate(ours / "ca.crt").subject.rfc4514_string()
    assert name == "CN=Easy-RSA CA"
    assert name == load_certificate(real / "ca.crt").subject.rfc4514_string()


def test_build_ca_asks_common_name(reference_for: Any, tmp_path: Path) -> None:
    """Without --batch, build-ca prompts for the subject as easy-rsa's openssl req does."""
    real, ours = init_both(reference_for("3.2.7"), tmp_path)
    reference_ok(reference_for("3.2.7"), real, "build-ca", "nopass", batch=False,
                 input="Example VPN CA\n", check=True)
    result = product_ok(ours, "build-ca", "nopass", batch=False, input="Example VPN CA\n")
    name = load_certificate(ours / "ca.crt").subject.rfc4514_string()
    assert name == "CN=Example VPN CA"
    assert name == load_certificate(real / "ca.crt").subject.rfc4514_string()
    assert "Common Name (eg: your user, host, or server name) [Easy-RSA CA]:" in result.stderr


@pytest.mark.parametrize(
    "options",
    [
        ("--algo=ec", "--curve=prime256v1", "--digest=sha384"),
        ("--algo=ed",),
        ("--keysize=3072", "--digest=sha512"),
        # Only sign-req reads --subca-len; build-ca ignores it in every version.
        ("--subca-len=1",),
    ],
)
def test_build_ca_algorithms_match(
    reference_for: Any, tmp_path: Path, options: tuple[str, ...]
) -> None:
    real_327 = reference_for("3.2.7")
    real, ours = init_both(real_327, tmp_path)
    reference_ok(real_327, real, *options, "build-ca", "nopass", check=True)
    product_ok(ours, *options, "build-ca", "nopass")
    assert certificate_shape(ours / "ca.crt") == certificate_shape(real / "ca.crt")


def test_build_ca_org_subject_matches(reference: Any, tmp_path: Path) -> None:
    options = (
        "--dn-mode=org",
        "--req-cn=Org CA",
        "--req-c=DE",
        "--req-st=",
        "--req-city=Berlin",
        "--req-org=Example GmbH",
        "--req-ou=IT",
        "--req-email=ca@example.org",
    )
    real, ours = init_both(reference, tmp_path)
    reference_ok(reference, real, *options, "build-ca", "nopass", check=True)
    product_ok(ours, *options, "build-ca", "nopass")
    assert (
        load_certificate(ours / "ca.crt").subject.public_bytes()
        == load_certificate(real / "ca.crt").subject.public_bytes()
    )


def test_build_ca_passout_encrypts_key(reference_for: Any, tmp_path: Path) -> None:
    real_327 = reference_for("3.2.7")
    real, ours = init_both(real_327, tmp_path)
    passes = (f"--passout=pass:{PASSPHRASE}", f"--passin=pass:{PASSPHRASE}")
    reference_ok(real_327, real, *passes, "build-ca", check=True)
    product_ok(ours, *passes, "build-ca")
    expected = private_key_shape(real / "private" / "ca.key", PASSPHRASE.encode())
    assert (
        private_key_shape(ours / "private" / "ca.key", PASSPHRASE.encode()) == expected
    )
    assert expected[0] == "-----BEGIN ENCRYPTED PRIVATE KEY-----"


def test_build_ca_prompts_twice(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    result = product(pki, "build-ca", input="abc\nlongenough\nlongenough\n")
    assert result.returncode == 0, result.stderr
    assert "Enter New CA Key Passphrase: " in result.stderr
    assert "The passphrase is too short: use 4 characters or more." in result.stderr
    assert "Confirm New CA Key Passphrase: " in result.stderr
    private_key_shape(pki / "private" / "ca.key", b"longenough")


def test_build_ca_prompt_mismatch(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    before = pki_state(pki)
    result = product(pki, "build-ca", input="first-one\nsecond-one\n")
    assert result.returncode == 1
    assert "Passphrase mismatch" in result.stderr
    assert pki_state(pki) == before


def test_build_ca_prompt_end_of_input(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    before = pki_state(pki)
    result = product(pki, "build-ca", input="")
    assert result.returncode == 1
    assert "--passout" in result.stderr
    assert pki_state(pki) == before


def test_build_ca_subca_request_matches(reference: Any, tmp_path: Path) -> None:
    real, ours = init_both(reference, tmp_path)
    reference_ok(reference, real, "build-ca", "nopass", "subca", check=True)
    product_ok(ours, "build-ca", "nopass", "subca")
    assert not (ours / "ca.crt").exists()
    real_request = x509.load_pem_x509_csr((real / "reqs" / "ca.req").read_bytes())
    our_request = x509.load_pem_x509_csr((ours / "reqs" / "ca.req").read_bytes())
    assert our_request.subject.rfc4514_string() == "CN=Easy-RSA Sub-CA"
    # 3.1.0 named a sub-CA "Easy-RSA CA" like a root CA.
    expected = (
        "CN=Easy-RSA CA" if reference.version == "3.1.0" else "CN=Easy-RSA Sub-CA"
    )
    assert real_request.subject.rfc4514_string() == expected
    assert our_request.is_signature_valid
    assert key_shape(our_request.public_key()) == key_shape(real_request.public_key())
    assert (ours / "private" / "ca.key").is_file()


def test_build_ca_rejects_existing_ca(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "build-ca", "nopass")
    before = pki_state(pki)
    result = product(pki, "build-ca", "nopass")
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert pki_state(pki) == before


def test_build_ca_rejects_subca_key(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "build-ca", "nopass", "subca")
    before = pki_state(pki)
    result = product(pki, "build-ca", "nopass")
    assert result.returncode == 1
    assert "ca.key" in result.stderr
    assert pki_state(pki) == before


def test_build_ca_rejects_index_records(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    (pki / "index.txt").write_text("V\t301231235959Z\t\t01\tunknown\t/CN=a\n")
    before = pki_state(pki)
    result = product(pki, "build-ca", "nopass")
    assert result.returncode == 1
    assert "index.txt" in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("build-ca", "nopass", "extra"), "Unknown build-ca option 'extra'"),
        (("--digest=md4", "build-ca", "nopass"), "Invalid digest 'md4'"),
        (("--dn-mode=org", "--req-c=DEU", "build-ca", "nopass"), "Invalid value 'DEU'"),
        (("--algo=ec", "--curve=nocurve", "build-ca", "nopass"), "nocurve"),
        (("--req-cn=" + "x" * 65, "build-ca", "nopass"), "at most 64 bytes"),
        (("--raw-ca", "build-ca"), "--batch"),
    ],
)
def test_build_ca_bad_input(
    tmp_path: Path, arguments: tuple[str, ...], message: str
) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    before = pki_state(pki)
    result = product(pki, *arguments)
    assert result.returncode == 1
    assert message in result.stderr
    assert pki_state(pki) == before


# --- mixed use -------------------------------------------------------------------


def test_real_script_signs_with_our_ca(reference_for: Any, tmp_path: Path) -> None:
    real_327 = reference_for("3.2.7")
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, f"--passout=pass:{PASSPHRASE}", "build-ca")
    passin = f"--passin=pass:{PASSPHRASE}"
    reference_ok(
        real_327, pki, passin, "build-client-full", "alice", "nopass", check=True
    )
    reference_ok(real_327, pki, passin, "revoke", "alice", check=True)
    reference_ok(real_327, pki, passin, "gen-crl", check=True)
    verify = subprocess.run(
        [
            "openssl",
            "crl",
            "-in",
            str(pki / "crl.pem"),
            "-CAfile",
            str(pki / "ca.crt"),
            "-noout",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


def test_real_script_signs_with_our_subca(reference_for: Any, tmp_path: Path) -> None:
    real_327 = reference_for("3.2.7")
    root, sub = tmp_path / "root" / "pki", tmp_path / "sub" / "pki"
    root.parent.mkdir()
    sub.parent.mkdir()
    reference_ok(real_327, root, "init-pki", check=True)
    reference_ok(real_327, root, "build-ca", "nopass", check=True)

    product_ok(sub, "init-pki")
    product_ok(sub, "build-ca", "nopass", "subca")
    reference_ok(
        real_327, root, "import-req", str(sub / "reqs" / "ca.req"), "sub", check=True
    )
    reference_ok(real_327, root, "sign-req", "ca", "sub", check=True)

    (sub / "ca.crt").write_bytes((root / "issued" / "sub.crt").read_bytes())
    reference_ok(real_327, sub, "build-server-full", "vpn", "nopass", check=True)

    chain = tmp_path / "chain.pem"
    chain.write_bytes((root / "ca.crt").read_bytes())
    verify = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(chain),
            "-untrusted",
            str(sub / "ca.crt"),
            str(sub / "issued" / "vpn.crt"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


# --- renew-ca --------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
def test_renew_ca_matches(reference_for: Any, tmp_path: Path, version: str) -> None:
    real_327 = reference_for(version)
    real, ours = init_both(real_327, tmp_path)
    for pki in (real, ours):
        reference_ok(
            real_327,
            pki,
            "--req-cn=Renew CA",
            "--digest=sha384",
            "--ku-crit",
            "build-ca",
            "nopass",
            check=True,
        )
    old = load_certificate(ours / "ca.crt")
    reference_ok(real_327, real, "--days=500", "renew-ca", check=True)
    product_ok(ours, "--days=500", "renew-ca")

    expected = certificate_shape(real / "ca.crt")
    if version == "3.2.2":
        # 3.2.2 signs with the default sha256 and its `ca` profile leaves
        # basicConstraints non-critical. 3.2.7 keeps the old digest.
        assert expected["signature"] == "1.2.840.113549.1.1.11"
        expected["signature"] = "1.2.840.113549.1.1.12"
        oid, critical, value = expected["extensions"][0]
        assert (oid, critical) == ("2.5.29.19", False)
        expected["extensions"][0] = (oid, True, value)
    assert certificate_shape(ours / "ca.crt") == expected

    new = load_certificate(ours / "ca.crt")
    assert new.public_key() == old.public_key()
    assert new.serial_number != old.serial_number
    archive = (ours / "expired-ca.list").read_bytes()
    assert archive.startswith(b"# Easy-RSA expired CA certificate list:\n# ====")
    assert x509.load_pem_x509_certificates(archive) == [old]
    assert tree_modes(ours) == tree_modes(real)


def test_renew_ca_twice_keeps_both(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "build-ca", "nopass")
    first = load_certificate(pki / "ca.crt")
    product_ok(pki, "renew-ca")
    second = load_certificate(pki / "ca.crt")
    product_ok(pki, "renew-ca")
    archive = (pki / "expired-ca.list").read_bytes()
    assert archive.count(b"# Easy-RSA expired CA certificate list:") == 1
    assert x509.load_pem_x509_certificates(archive) == [second, first]


def test_renew_ca_wrong_passphrase(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, f"--passout=pass:{PASSPHRASE}", "build-ca")
    before = pki_state(pki)
    result = product(pki, "--passin=pass:wrong-pass", "renew-ca")
    assert result.returncode == 1
    assert "does not decrypt the CA key" in result.stderr
    assert pki_state(pki) == before


def test_renew_ca_confirmation_no(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "build-ca", "nopass")
    before = pki_state(pki)
    result = product(pki, "renew-ca", batch=False, input="no\n")
    assert result.returncode == 1
    assert "Install the new CA certificate ? " in result.stderr
    assert pki_state(pki) == before


def test_renew_ca_of_real_ca(reference_for: Any, tmp_path: Path) -> None:
    real_327 = reference_for("3.2.7")
    pki = tmp_path / "pki"
    reference_ok(real_327, pki, "init-pki", check=True)
    reference_ok(
        real_327,
        pki,
        f"--passout=pass:{PASSPHRASE}",
        f"--passin=pass:{PASSPHRASE}",
        "build-ca",
        check=True,
    )
    product_ok(pki, f"--passin=pass:{PASSPHRASE}", "renew-ca")
    reference_ok(
        real_327,
        pki,
        f"--passin=pass:{PASSPHRASE}",
        "build-client-full",
        "bob",
        "nopass",
        check=True,
    )
    verify = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(pki / "ca.crt"),
            str(pki / "issued" / "bob.crt"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


# --- self-sign -------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
@pytest.mark.parametrize("kind", ["server", "client"])
def test_self_sign_matches(
    reference_for: Any, tmp_path: Path, kind: str, version: str
) -> None:
    real_327 = reference_for(version)
    real, ours = init_both(real_327, tmp_path)
    reference_ok(real_327, real, f"self-sign-{kind}", "alice", "nopass", check=True)
    product_ok(ours, f"self-sign-{kind}", "alice", "nopass")
    assert certificate_shape(ours / "issued" / "alice.crt") == certificate_shape(
        real / "issued" / "alice.crt"
    )
    assert private_key_shape(ours / "private" / "alice.key", None) == private_key_shape(
        real / "private" / "alice.key", None
    )
    assert (ours / "inline" / "private" / "alice.inline").is_file()
    if version == "3.2.2":
        # 3.2.2 did not mark the PKI, so it let build-ca run in it afterwards,
        # and wrote no peer-fingerprint list.
        assert not (real / "peer-fp.mode").exists()
    else:
        assert (ours / "peer-fp.mode").read_bytes() == (
            real / "peer-fp.mode"
        ).read_bytes()
        assert tree_modes(ours) == tree_modes(real)
        fingerprint = load_certificate(ours / "issued" / "alice.crt").fingerprint(
            hashes.SHA256()
        )
        listing = (ours / "inline" / f"pfp-{kind}.list-inline").read_text()
        assert fingerprint.hex(":").upper() in listing


def test_self_sign_ed_key(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki", "ed")
    product_ok(pki, "self-sign-client", "bob", "nopass")
    key = load_certificate(pki / "issued" / "bob.crt").public_key()
    assert isinstance(key, ed25519.Ed25519PublicKey)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("self-sign-server",), "Missing name"),
        (("self-sign-server", "nopass"), "Invalid name 'nopass'"),
        (("self-sign-server", "../x", "nopass"), "Invalid certificate name"),
        (("self-sign-server", "a/b", "nopass"), "Invalid certificate name"),
        (("self-sign-server", "a", "extra"), "Unknown self-sign-server option 'extra'"),
        (("--req-cn=other", "self-sign-server", "a", "nopass"), "--req-cn"),
    ],
)
def test_self_sign_bad_input(
    tmp_path: Path, arguments: tuple[str, ...], message: str
) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    before = pki_state(pki)
    result = product(pki, *arguments)
    assert result.returncode == 1
    assert message in result.stderr
    assert pki_state(pki) == before


def test_self_sign_rejected_in_ca(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "build-ca", "nopass")
    before = pki_state(pki)
    result = product(pki, "self-sign-server", "alice", "nopass")
    assert result.returncode == 1
    assert "with a CA" in result.stderr
    assert pki_state(pki) == before


def test_build_ca_rejected_after_self_sign(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "self-sign-server", "alice", "nopass")
    before = pki_state(pki)
    result = product(pki, "build-ca", "nopass")
    assert result.returncode == 1
    assert "peer-fp.mode" in result.stderr
    assert pki_state(pki) == before


# --- import-ca -------------------------------------------------------------------


def test_import_ca_matches(reference_for: Any, tmp_path: Path) -> None:
    real_327 = reference_for("3.2.7")
    real, ours = init_both(real_327, tmp_path)
    other = tmp_path / "other" / "pki"
    other.parent.mkdir()
    reference_ok(real_327, other, "init-pki", check=True)
    reference_ok(real_327, other, "build-ca", "nopass", check=True)
    for pki in (real, ours):
        reference_ok(real_327, pki, "build-ca", "nopass", check=True)
    reference_ok(real_327, real, "import-ca", str(other / "ca.crt"), check=True)
    product_ok(ours, "import-ca", str(other / "ca.crt"))
    product_ok(ours, "import-ca", str(other / "ca.crt"))
    real_list = (real / "inline" / "external-ca.list").read_bytes()
    our_list = (ours / "inline" / "external-ca.list").read_bytes()
    assert our_list.splitlines()[0] == real_list.splitlines()[0]
    assert x509.load_pem_x509_certificates(
        our_list
    ) == 2 * x509.load_pem_x509_certificates(real_list)
    assert tree_modes(ours, exclude=("inline/private*",)) == tree_modes(
        real, exclude=("inline/private*",)
    )


@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_import_ca_bad_file(tmp_path: Path, content: bytes | None) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "build-ca", "nopass")
    source = tmp_path / "ca.pem"
    if content is not None:
        source.write_bytes(content)
    before = pki_state(pki)
    result = product(pki, "import-ca", str(source))
    assert result.returncode == 1
    assert str(source) in result.stderr
    assert pki_state(pki) == before


def test_import_ca_text_identical(reference_for: Any, tmp_path: Path) -> None:
    real_327 = reference_for("3.2.7")
    real, ours = init_both(real_327, tmp_path)
    source = tmp_path / "other-ca.pem"
    other = tmp_path / "other" / "pki"
    other.parent.mkdir()
    reference_ok(real_327, other, "init-pki", check=True)
    reference_ok(
        real_327,
        other,
        "--dn-mode=org",
        "--req-cn=Other CA",
        "build-ca",
        "nopass",
        check=True,
    )
    source.write_bytes((other / "ca.crt").read_bytes())
    for pki in (real, ours):
        reference_ok(real_327, pki, "build-ca", "nopass", check=True)
    reference_ok(real_327, real, "import-ca", str(source), check=True)
    product_ok(ours, "import-ca", str(source))
    real_list = (real / "inline" / "external-ca.list").read_text()
    assert (ours / "inline" / "external-ca.list").read_text() == real_list


@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
def test_renew_ca_archive_identical(
    reference_for: Any, tmp_path: Path, version: str
) -> None:
    real_327 = reference_for(version)
    real = tmp_path / "real" / "pki"
    real.parent.mkdir()
    reference_ok(real_327, real, "init-pki", check=True)
    reference_ok(
        real_327,
        real,
        "--dn-mode=org",
        "--req-org=Example, Inc.",
        "build-ca",
        "nopass",
        check=True,
    )
    ours = tmp_path / "ours" / "pki"
    shutil.copytree(real, ours)
    reference_ok(real_327, real, "renew-ca", check=True)
    product_ok(ours, "renew-ca")
    assert (ours / "expired-ca.list").read_text() == (
        real / "expired-ca.list"
    ).read_text()


def test_self_sign_text_identical(reference_for: Any, tmp_path: Path) -> None:
    real_327 = reference_for("3.2.7")
    real, ours = init_both(real_327, tmp_path)
    reference_ok(real_327, real, "self-sign-server", "alice", "nopass", check=True)
    product_ok(ours, "self-sign-server", "alice", "nopass")
    ours_text = (ours / "issued" / "alice.crt").read_text().split("-----BEGIN")[0]
    real_text = (real / "issued" / "alice.crt").read_text().split("-----BEGIN")[0]
    # Keys, serials, dates and signatures differ, so compare the other lines.
    assert stable_lines(ours_text) == stable_lines(real_text)
    assert (
        load_certificate(ours / "issued" / "alice.crt").subject.rfc4514_string()
        == "CN=alice"
    )


def test_build_ca_text_option(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "--text", "build-ca", "nopass")
    text = (pki / "ca.crt").read_text()
    assert text.startswith("Certificate:\n    Data:\n")
    assert "        Subject: CN = Easy-RSA CA\n" in text
    load_certificate(pki / "ca.crt")


def test_renew_ca_warns_pinned_certificates(reference_for: Any, tmp_path: Path) -> None:
    real_327 = reference_for("3.2.7")
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "build-ca", "nopass")
    old_ca = (pki / "ca.crt").read_bytes()
    reference_ok(real_327, pki, "build-client-full", "bob", "nopass", check=True)
    result = product_ok(pki, "renew-ca")
    assert "1 issued certificate(s) (bob.crt)" in result.stderr
    bob = str(pki / "issued" / "bob.crt")
    alone = subprocess.run(
        ["openssl", "verify", "-CAfile", str(pki / "ca.crt"), bob],
        capture_output=True,
        text=True,
        check=False,
    )
    # The limit the warning describes: OpenSSL matches the AKI serial.
    assert alone.returncode != 0
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes((pki / "ca.crt").read_bytes() + old_ca)
    both = subprocess.run(
        ["openssl", "verify", "-CAfile", str(bundle), bob],
        capture_output=True,
        text=True,
        check=False,
    )
    assert both.returncode == 0, both.stdout + both.stderr


def test_renew_ca_keeps_whole_subject(reference_for: Any, tmp_path: Path) -> None:
    real_327 = reference_for("3.2.7")
    real = tmp_path / "real" / "pki"
    real.parent.mkdir()
    reference_ok(real_327, real, "init-pki", check=True)
    options = ("--dn-mode=org", "--req-cn=Org CA", "--req-org=Example")
    reference_ok(real_327, real, *options, "build-ca", "nopass", check=True)
    ours = tmp_path / "ours" / "pki"
    shutil.copytree(real, ours)
    old_subject = load_certificate(real / "ca.crt").subject
    reference_ok(real_327, real, "renew-ca", check=True)
    product_ok(ours, "renew-ca")
    assert load_certificate(ours / "ca.crt").subject == old_subject
    # easy-rsa 3.2.7 rebuilds the subject from the default cn_only setting.
    assert load_certificate(real / "ca.crt").subject.rfc4514_string() == "CN=Org CA"


def test_renew_ca_rejects_sub_ca(reference_for: Any, tmp_path: Path) -> None:
    real_327 = reference_for("3.2.7")
    root, sub = tmp_path / "root" / "pki", tmp_path / "sub" / "pki"
    root.parent.mkdir()
    sub.parent.mkdir()
    reference_ok(real_327, root, "init-pki", check=True)
    reference_ok(real_327, root, "build-ca", "nopass", check=True)
    product_ok(sub, "init-pki")
    product_ok(sub, "--req-cn=Sub", "build-ca", "nopass", "subca")
    reference_ok(
        real_327, root, "import-req", str(sub / "reqs" / "ca.req"), "sub", check=True
    )
    reference_ok(real_327, root, "sign-req", "ca", "sub", check=True)
    (sub / "ca.crt").write_bytes((root / "issued" / "sub.crt").read_bytes())
    before = pki_state(sub)
    result = product(sub, "renew-ca")
    assert result.returncode == 1
    assert "sub-CA certificate" in result.stderr
    assert pki_state(sub) == before


# --- hostile layouts -------------------------------------------------------------


def test_build_ca_index_folder_unchanged(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    (pki / "index.txt").mkdir()
    before = pki_state(pki)
    result = product(pki, "build-ca", "nopass")
    assert result.returncode == 1
    assert "index.txt" in result.stderr
    assert pki_state(pki) == before


def test_init_pki_rejects_file_path(tmp_path: Path) -> None:
    target = tmp_path / "pki"
    target.write_text("not a folder\n")
    result = product(target, "init-pki")
    assert result.returncode == 1
    assert "is not a folder" in result.stderr
    assert target.read_text() == "not a folder\n"


def test_init_pki_rejects_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real-pki"
    product_ok(real, "init-pki")
    link = tmp_path / "pki"
    link.symlink_to(real)
    before = pki_state(real)
    # run_product resolves EASYRSA_PKI, so the link goes in through --pki.
    result = product(real, f"--pki={link}", "init-pki")
    assert result.returncode == 1
    assert "symbolic link" in result.stderr
    assert pki_state(real) == before


def test_clean_all_is_init_pki(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "build-ca", "nopass")
    product_ok(pki, "clean-all")
    assert sorted(p.name for p in pki.iterdir()) == [
        "issued",
        "private",
        "reqs",
        "vars.example",
    ]


@pytest.mark.parametrize("arguments", [(), ("a.pem", "b.pem"), ("",)])
def test_import_ca_usage(tmp_path: Path, arguments: tuple[str, ...]) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    product_ok(pki, "build-ca", "nopass")
    before = pki_state(pki)
    result = product(pki, "import-ca", *arguments)
    assert result.returncode == 1
    assert "Usage: import-ca FILE" in result.stderr
    assert pki_state(pki) == before


def test_renew_ca_needs_ca(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    product_ok(pki, "init-pki")
    before = pki_state(pki)
    result = product(pki, "renew-ca")
    assert result.returncode == 1
    assert "build-ca" in result.stderr
    assert pki_state(pki) == before
