"""Hostile and careless input to the CA and issuing commands.

Each case is one an operator can type. Every refused command must exit 1
with a message that names the value at fault, print no traceback, and
leave every file of the PKI as it was.
"""

from __future__ import annotations

import stat
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from pkitools import pki_state, run_product

# A passphrase one byte longer than `cryptography` can encrypt a key with.
LONG_PASSPHRASE = "x" * 1024


def assert_rejected(
    pki: Path, *args: str, expected: str, env: dict[str, str] | None = None
) -> str:
    """Run a command that must fail, and check its message and that nothing changed."""
    before = pki_state(pki)
    result = run_product(pki, *args, env=env)

    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    assert expected in result.stderr
    assert pki_state(pki) == before
    return result.stderr


@pytest.fixture
def pki(pki_copy) -> Path:
    return pki_copy("v3.2.7-rsa")


@pytest.fixture
def empty_pki(tmp_path: Path) -> Path:
    """Return a PKI made by init-pki, without a CA."""
    pki = tmp_path / "pki"
    result = run_product(pki, "init-pki")
    assert result.returncode == 0, result.stderr
    return pki


# -- serial file ----------------------------------------------------------------


@pytest.mark.parametrize("serial", ["00", "FF" * 20])
def test_serial_out_of_range_rejected(pki: Path, serial: str) -> None:
    (pki / "serial").write_text(serial + "\n")

    assert_rejected(
        pki,
        "build-client-full",
        "zed",
        "nopass",
        expected=f"The next serial {serial} in {pki / 'serial'} cannot be used",
        env={"EASYRSA_RAND_SN": "no"},
    )


def test_largest_serial_accepted(pki: Path) -> None:
    largest = "7F" + "FF" * 19
    (pki / "serial").write_text(largest + "\n")

    result = run_product(pki, "build-client-full", "zed", "nopass", env={"EASYRSA_RAND_SN": "no"})

    assert result.returncode == 0, result.stderr
    assert f"\t{largest}\t" in (pki / "index.txt").read_text()


# -- passphrases ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["gen-req", "build-client-full"])
def test_long_passout_rejected(pki: Path, command: str) -> None:
    assert_rejected(
        pki,
        f"--passout=pass:{LONG_PASSPHRASE}",
        command,
        "zed",
        expected="The new passphrase is 1024 bytes long",
    )


def test_long_passout_build_ca_rejected(empty_pki: Path) -> None:
    message = assert_rejected(
        empty_pki,
        f"--passout=pass:{LONG_PASSPHRASE}",
        "build-ca",
        expected="at most 1023 bytes",
    )

    assert LONG_PASSPHRASE not in message


# -- validity -----------------------------------------------------------------------


def test_huge_days_rejected_by_sign(pki: Path) -> None:
    assert_rejected(
        pki,
        "--days=99999999",
        "build-client-full",
        "zed",
        "nopass",
        expected="Invalid validity of 99999999 days (--days, or EASYRSA_CERT_EXPIRE",
    )


@pytest.mark.parametrize("command", [["build-ca", "nopass"], ["self-sign-server", "srv", "nopass"]])
def test_huge_days_rejected_by_self_signing(empty_pki: Path, command: list[str]) -> None:
    assert_rejected(empty_pki, "--days=99999999", *command, expected="Invalid validity of 99999999 days")


def test_huge_days_rejected_by_renew_ca(pki: Path) -> None:
    assert_rejected(pki, "--days=3000000", "renew-ca", expected="Invalid validity of 3000000 days")


# -- subjectAltName and profile lines ---------------------------------------------------


@pytest.mark.parametrize(
    ("san", "expected"),
    [
        ("DNS:bücher.example", "DNS values must be ASCII"),
        ("email:zoë@example.org", "email values must be ASCII"),
        ("URI:https://bücher.example/", "URI values must be ASCII"),
        (",", "no names in ','"),
    ],
)
def test_bad_san_rejected(pki: Path, san: str, expected: str) -> None:
    assert_rejected(pki, f"--san={san}", "build-client-full", "zed", "nopass", expected=expected)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("keyUsage =", "keyUsage: the value is empty"),
        ("extendedKeyUsage = ", "extendedKeyUsage: the value is empty"),
        ("crlDistributionPoints = URI:http://bücher.example/crl", "URI values must be ASCII"),
        ("basicConstraints = CA:TRUE, pathlen:99999999999999999999", "pathlen 99999999999999999999 is too large"),
    ],
)
def test_bad_extra_extension_rejected(pki: Path, line: str, expected: str) -> None:
    assert_rejected(
        pki,
        "build-client-full",
        "zed",
        "nopass",
        expected=expected,
        env={"EASYRSA_EXTRA_EXTS": line},
    )


def test_huge_subca_len_rejected(pki: Path) -> None:
    (pki / "reqs" / "sub.req").write_bytes((pki / "reqs" / "alice.req").read_bytes())

    assert_rejected(
        pki,
        "--subca-len=99999999999999999999",
        "sign-req",
        "ca",
        "sub",
        expected="pathlen 99999999999999999999 is too large",
    )


# -- folder modes ---------------------------------------------------------------------


@pytest.mark.parametrize("umask", ["000", "022"])
def test_private_folders_stay_private(tmp_path: Path, umask: str) -> None:
    pki = tmp_path / "pki"
    for command in (["init-pki"], ["build-ca", "nopass"]):
        result = run_product(pki, f"--umask={umask}", *command)
        assert result.returncode == 0, result.stderr

    for folder in ("private", "revoked/private_by_serial"):
        mode = stat.S_IMODE((pki / folder).stat().st_mode)
        assert mode == 0o700, f"{folder} has mode {mode:o}"


# -- certificate types ------------------------------------------------------------------


@pytest.mark.parametrize("cert_type", ["../../../etc/passwd", "", "..", "cl\nient"])
def test_path_like_type_rejected(pki: Path, cert_type: str) -> None:
    message = assert_rejected(
        pki, "sign-req", cert_type, "francois", expected="Invalid certificate type"
    )

    assert "not a standard certificate type" not in message


# -- CA certificate -------------------------------------------------------------------


def expire_ca_certificate(pki: Path) -> None:
    """Replace ca.crt by a copy, signed with the same key, that expired in 2021."""
    old = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((pki / "private" / "ca.key").read_bytes(), None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.subject)
        .public_key(old.public_key())
        .serial_number(old.serial_number)
        .not_valid_before(datetime(2020, 1, 1))
        .not_valid_after(datetime(2021, 1, 1))
    )
    for extension in old.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    certificate = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    (pki / "ca.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize(
    "command", [["build-client-full", "zed", "nopass"], ["sign-req", "client", "francois-2"]]
)
def test_expired_ca_rejected(pki: Path, command: list[str]) -> None:
    expire_ca_certificate(pki)
    (pki / "reqs" / "francois-2.req").write_bytes((pki / "reqs" / "francois.req").read_bytes())

    assert_rejected(pki, *command, expected="expired on 2021-01-01 00:00:00 UTC")


# -- subject strings ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--req-c=é", "for 'Country Name (2 letter code)': only letters, digits"),
        ("--req-serial=a_b", "for 'Serial-number (eg, device serial-number)': only letters"),
        ("--req-email=zoë@example.org", "for 'Email Address': an IA5String allows only ASCII"),
    ],
)
def test_subject_string_types_checked(pki: Path, option: str, expected: str) -> None:
    assert_rejected(pki, "--dn-mode=org", option, "build-client-full", "zed", "nopass", expected=expected)


def test_build_ca_country_checked(empty_pki: Path) -> None:
    assert_rejected(empty_pki, "--dn-mode=org", "--req-c=é", "build-ca", "nopass", expected="only letters, digits")


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("/C=é/CN=zed", "the value of C 'é' is invalid"),
        ("/emailAddress=é@example.org/CN=zed", "an IA5String allows only ASCII"),
    ],
)
def test_new_subject_string_types_checked(pki: Path, subject: str, expected: str) -> None:
    (pki / "reqs" / "zed.req").write_bytes((pki / "reqs" / "francois.req").read_bytes())

    assert_rejected(pki, f"--new-subject={subject}", "sign-req", "client", "zed", "newsubj", expected=expected)


# -- request extensions ------------------------------------------------------------------

# An OpenSSL request config whose extension section contains subjectAltName
# twice: once by name and once as raw DER (SEQUENCE { dNSName "b.example" }).
DUPLICATE_SAN_CONFIG = """\
[req]
distinguished_name = dn
req_extensions = ext
prompt = no
[dn]
CN = dup
[ext]
subjectAltName = DNS:a.example
2.5.29.17 = DER:300B8209622E6578616D706C65
"""


def duplicate_extension_request(folder: Path) -> Path:
    """Write a request with two subjectAltName extensions, made by `openssl req`."""
    config = folder / "dup.cnf"
    config.write_text(DUPLICATE_SAN_CONFIG)
    key = folder / "dup.key"
    request = folder / "dup.req"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["openssl", "req", "-new", "-key", str(key), "-config", str(config), "-out", str(request)],
        check=True,
        capture_output=True,
    )
    return request


@pytest.mark.parametrize("options", [[], ["--copy-ext"]])
def test_duplicate_extension_sign_rejected(pki: Path, tmp_path: Path, options: list[str]) -> None:
    request = duplicate_extension_request(tmp_path)
    (pki / "reqs" / "dup.req").write_bytes(request.read_bytes())

    assert_rejected(pki, *options, "sign-req", "client", "dup", expected="Duplicate 2.5.29.17 extension")


def test_duplicate_extension_import_rejected(pki: Path, tmp_path: Path) -> None:
    request = duplicate_extension_request(tmp_path)

    assert_rejected(pki, "import-req", str(request), "dup", expected="its extensions cannot be read")


# -- self-sign ------------------------------------------------------------------------


def self_signed_extensions(path: Path) -> dict[str, tuple[bool, x509.ExtensionType]]:
    """Map each extension of a certificate file, except the key identifiers, to its value."""
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    key_identifiers = (x509.SubjectKeyIdentifier, x509.AuthorityKeyIdentifier)
    return {
        extension.oid.dotted_string: (extension.critical, extension.value)
        for extension in certificate.extensions
        if not isinstance(extension.value, key_identifiers)
    }


def test_self_sign_extra_extensions_match(reference_for: Any, tmp_path: Path) -> None:
    real_script = reference_for("3.2.7")
    real, ours = tmp_path / "real" / "pki", tmp_path / "ours" / "pki"
    options = ("--san=DNS:peer.example", "self-sign-server", "peer", "nopass")
    extra = {"EASYRSA_EXTRA_EXTS": "keyUsage = digitalSignature"}
    real_script.run(real, "init-pki")
    real_script.run(real, *options, env=extra)
    assert run_product(ours, "init-pki").returncode == 0
    result = run_product(ours, *options, env=extra)
    assert result.returncode == 0, result.stderr

    ours_extensions = self_signed_extensions(ours / "issued" / "peer.crt")

    assert ours_extensions == self_signed_extensions(real / "issued" / "peer.crt")
    assert ours_extensions["2.5.29.17"][1] == x509.SubjectAlternativeName([x509.DNSName("peer.example")])


def test_self_sign_long_name_rejected(empty_pki: Path) -> None:
    assert_rejected(empty_pki, "self-sign-server", "a" * 65, "nopass", expected="at most 64 bytes long")


def test_build_ca_san_matches(reference_for: Any, tmp_path: Path) -> None:
    real_script = reference_for("3.2.7")
    real, ours = tmp_path / "real" / "pki", tmp_path / "ours" / "pki"
    options = ("--san=DNS:ca.example", "build-ca", "nopass")
    extra = {"EASYRSA_EXTRA_EXTS": "nsComment = extra line"}
    real_script.run(real, "init-pki")
    real_script.run(real, *options, env=extra)
    assert run_product(ours, "init-pki").returncode == 0
    result = run_product(ours, *options, env=extra)
    assert result.returncode == 0, result.stderr

    ours_extensions = self_signed_extensions(ours / "ca.crt")

    assert ours_extensions == self_signed_extensions(real / "ca.crt")
    assert ours_extensions["2.5.29.17"][1] == x509.SubjectAlternativeName([x509.DNSName("ca.example")])


def test_renew_sha1_ca_upgrades_hash(pki: Path) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-new", "-sha1", "-days", "100",
            "-key", str(pki / "private" / "ca.key"),
            "-subj", "/CN=Example VPN CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=keyCertSign,cRLSign",
            "-out", str(pki / "ca.crt"),
        ],
        check=True,
        capture_output=True,
    )

    result = run_product(pki, "renew-ca")

    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert "signed with sha1" in result.stderr
    renewed = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    assert isinstance(renewed.signature_hash_algorithm, hashes.SHA256)
