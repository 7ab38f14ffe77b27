"""show-req, show-cert, show-ca and show-host, compared with OpenSSL and the real easy-rsa.

easy-rsa prints `openssl x509|req -text` output, so the renderer is checked
byte for byte against OpenSSL 3.0 on the fixture PKIs and on certificates
built here with every extension the renderer handles. The commands are then
run beside the real script on copies of one PKI.
"""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
)
from pkitools import pki_state, run_product
from reference import REPO_ROOT

from easyrsa_py.names import SHORT_NAMES
from easyrsa_py.x509_text import render_certificate, render_request

FIXTURES = ("v3.1.0-rsa", "v3.2.2-ec", "v3.2.7-ed25519", "v3.2.7-rsa")
NAME_OPTIONS = "utf8,sep_multiline,space_eq,lname,align"
# The fixture PKI each reference version can run on: 3.1.0 needs the
# openssl-easyrsa.cnf that only its own PKIs contain.
REFERENCE_FIXTURES = {"3.1.0": "v3.1.0-rsa", "3.2.2": "v3.2.2-ec", "3.2.7": "v3.2.7-rsa"}


def openssl_text(kind: str, path: Path, full: bool) -> str:
    """Run the OpenSSL command that easy-rsa's show-* runs and return its output."""
    command = ["openssl", kind, "-in", str(path), "-noout", "-text", "-nameopt", NAME_OPTIONS]
    if not full:
        command += ["-certopt" if kind == "x509" else "-reqopt", "no_pubkey,no_sigdump"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def fixture_files() -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    for fixture in FIXTURES:
        pki = REPO_ROOT / "pki_fixtures" / fixture / "pki"
        files.append(("x509", pki / "ca.crt"))
        files += [("x509", path) for path in sorted((pki / "issued").glob("*.crt"))]
        files += [("req", path) for path in sorted((pki / "reqs").glob("*.req"))]
    return files


def render(kind: str, path: Path, full: bool) -> str:
    data = path.read_bytes()
    if kind == "x509":
        return render_certificate(x509.load_pem_x509_certificate(data), full) + "\n"
    return render_request(x509.load_pem_x509_csr(data), full) + "\n"


@pytest.mark.parametrize("full", [False, True], ids=["short", "full"])
@pytest.mark.parametrize(
    ("kind", "path"),
    fixture_files(),
    ids=lambda value: value if isinstance(value, str) else f"{value.parents[1].name}/{value.name}",
)
def test_fixture_text_matches_openssl(kind: str, path: Path, full: bool) -> None:
    assert render(kind, path, full) == openssl_text(kind, path, full)


# --- certificates and requests with every rendered extension ----------------

RICH_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Müller, Söhne & Co"),
        x509.NameAttribute(NameOID.COMMON_NAME, "rich #1 \"quoted\" +plus;semi"),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.org"),
    ]
)


def rich_extensions(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed448.Ed448PrivateKey) -> list[
    tuple[x509.ExtensionType, bool]
]:
    uri = x509.UniformResourceIdentifier
    return [
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (x509.KeyUsage(True, True, True, True, True, True, True, False, True), True),
        (
            x509.ExtendedKeyUsage(
                [
                    ExtendedKeyUsageOID.SERVER_AUTH,
                    ExtendedKeyUsageOID.CLIENT_AUTH,
                    ExtendedKeyUsageOID.CODE_SIGNING,
                    ExtendedKeyUsageOID.EMAIL_PROTECTION,
                    ExtendedKeyUsageOID.TIME_STAMPING,
                    ExtendedKeyUsageOID.OCSP_SIGNING,
                    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
                    x509.ObjectIdentifier("1.3.6.1.5.2.3.5"),
                    x509.ObjectIdentifier("1.3.6.1.5.2.3.4"),
                    x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.2"),
                    x509.ObjectIdentifier("1.2.3.4.5"),
                ]
            ),
            False,
        ),
        (
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("vpn.example.org"),
                    x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
                    x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
                    x509.RFC822Name("ops@example.org"),
                    uri("https://example.org/x"),
                    x509.DirectoryName(RICH_NAME),
                    x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),
                ]
            ),
            False,
        ),
        (x509.IssuerAlternativeName([x509.DNSName("ca.example.org")]), False),
        (
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint([uri("http://crl.example.org/ca.crl"), x509.DNSName("crl")], None, None, None),
                    x509.DistributionPoint([uri("http://crl2.example.org/ca.crl")], None, None, None),
                ]
            ),
            False,
        ),
        (
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(AuthorityInformationAccessOID.OCSP, uri("http://ocsp.example.org")),
                    x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, uri("http://example.org/ca.crt")),
                ]
            ),
            False,
        ),
        # nsCertType client and server, and an nsComment, as --ns-cert adds them.
        (x509.UnrecognizedExtension(x509.ObjectIdentifier("2.16.840.1.113730.1.1"), bytes.fromhex("030206c0")), False),
        (x509.UnrecognizedExtension(x509.ObjectIdentifier("2.16.840.1.113730.1.13"), b"\x16\x0bEasy-RSA 3x"), False),
        (x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5.6"), b"\x04\x03ab\x01"), False),
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
    ]


KEYS = {
    "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "ed448": ed448.Ed448PrivateKey.generate,
}


def sign_hash(key: object) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA384()


@pytest.mark.parametrize("serial", [1, 2**63 - 1, 2**63, 2**159 - 1])
@pytest.mark.parametrize("key_name", sorted(KEYS))
def test_rich_certificate_matches_openssl(tmp_path: Path, key_name: str, serial: int) -> None:
    key = KEYS[key_name]()
    builder = (
        x509.CertificateBuilder()
        .subject_name(RICH_NAME)
        .issuer_name(RICH_NAME)
        .public_key(key.public_key())  # type: ignore[union-attr]
        .serial_number(serial)
        .not_valid_before(datetime.datetime(2024, 2, 9, 8, 7, 6))
        .not_valid_after(datetime.datetime(2051, 12, 31, 23, 59, 59))
    )
    for extension, critical in rich_extensions(key):  # type: ignore[arg-type]
        builder = builder.add_extension(extension, critical=critical)
    certificate = builder.sign(key, sign_hash(key))  # type: ignore[arg-type]
    path = tmp_path / "rich.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    for full in (False, True):
        assert render("x509", path, full) == openssl_text("x509", path, full)


@pytest.mark.parametrize("key_name", ["rsa", "p256", "ed448"])
def test_request_with_extensions_matches_openssl(tmp_path: Path, key_name: str) -> None:
    key = KEYS[key_name]()
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(RICH_NAME)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("vpn.example.org")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_attribute(x509.ObjectIdentifier("1.2.840.113549.1.9.7"), b"challenge")
    )
    request = builder.sign(key, sign_hash(key))  # type: ignore[arg-type]
    path = tmp_path / "rich.req"
    path.write_bytes(request.public_bytes(serialization.Encoding.PEM))
    for full in (False, True):
        assert render("req", path, full) == openssl_text("req", path, full)


def every_named_attribute() -> x509.Name:
    """Build a name with one attribute of each type in easyrsa_py.names."""
    two_letter = {"2.5.4.6", "1.3.6.1.4.1.311.60.2.1.3"}
    return x509.Name(
        [
            x509.NameAttribute(x509.ObjectIdentifier(dotted), "DE" if dotted in two_letter else f"v{index}")
            for index, dotted in enumerate(SHORT_NAMES)
        ]
    )


NAME_FORMS = {
    "multi-valued": x509.Name(
        [
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.COMMON_NAME, "a"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "b")]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]),
        ]
    ),
    "string-types": x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Grüße", _ASN1Type.BMPString),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tele", _ASN1Type.T61String),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "ctrl\x01 tab\t", _ASN1Type.UTF8String),
        ]
    ),
    "empty": x509.Name([]),
    "unknown-oid": x509.Name([x509.NameAttribute(x509.ObjectIdentifier("1.2.3.4"), "x")]),
    "every-attribute": every_named_attribute(),
}


@pytest.mark.parametrize("form", sorted(NAME_FORMS))
def test_name_forms_match_openssl(tmp_path: Path, form: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(NAME_FORMS[form])
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2024, 1, 1))
        .not_valid_after(datetime.datetime(2050, 1, 1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "name.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    assert render("x509", path, False) == openssl_text("x509", path, False)


# --- the commands, beside the real script ----------------------------------


def text_after_notice(output: str) -> str:
    """Drop the version line and notice that easy-rsa prints on stdout before OpenSSL's text."""
    lines = output.splitlines()
    for position, line in enumerate(lines):
        if line in ("Certificate:", "Certificate Request:"):
            return "\n".join(lines[position:])
    raise AssertionError(f"no certificate text in easy-rsa's output:\n{output}")


SHOW_CASES = [
    ("show-cert", "alice"),
    ("show-cert", "alice", "full"),
    ("show-req", "alice"),
    ("show-req", "server", "full"),
    ("show-ca",),
    ("show-ca", "full"),
]


@pytest.mark.reference
@pytest.mark.parametrize("version", sorted(REFERENCE_FIXTURES))
def test_show_matches_reference(reference_for, pki_copy, version: str) -> None:
    reference = reference_for(version)
    fixture = REFERENCE_FIXTURES[version]
    for args in SHOW_CASES:
        ours_pki = pki_copy(fixture)
        theirs_pki = pki_copy(fixture)
        before = pki_state(ours_pki)
        ours = run_product(ours_pki, *args)
        theirs = reference.run(theirs_pki, *args)
        assert ours.returncode == 0, ours.stderr
        assert theirs.returncode == 0, theirs.stdout + theirs.stderr
        assert ours.stdout.rstrip("\n") == text_after_notice(theirs.stdout), args
        assert pki_state(ours_pki) == before


def test_show_notice_goes_to_stderr(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "show-cert", "francois")
    assert result.returncode == 0
    assert result.stdout.startswith("Certificate:\n")
    assert "Showing the certificate 'francois'" in result.stderr
    assert str(pki / "issued" / "francois.crt") in result.stderr


def test_show_unknown_word_warns(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "show-cert", "alice", "fulll")
    assert result.returncode == 0
    assert "Ignoring unknown argument 'fulll'" in result.stderr
    assert "Subject Public Key Info" not in result.stdout


# --- bad input ---------------------------------------------------------------

BAD_NAMES = ["../alice", "a/b", "/etc/passwd", "", "..", "al\0ice"]


@pytest.mark.parametrize("command", ["show-cert", "show-req"])
@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_show_rejects_path_like_name(
    pki_copy, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str, name: str
) -> None:
    from easyrsa_py.cli import main

    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    # In-process, because a NUL byte cannot pass through argv.
    monkeypatch.chdir(pki.parent)
    monkeypatch.setenv("EASYRSA_PKI", str(pki))
    assert main(["--batch", command, name]) == 1
    captured = capsys.readouterr()
    assert f"Invalid certificate name {name!r}" in captured.err
    assert captured.out == ""
    assert pki_state(pki) == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("show-cert", "nobody"), "No certificate at {pki}/issued/nobody.crt"),
        (("show-req", "nobody"), "No certificate request at {pki}/reqs/nobody.req"),
        (("show-cert",), "Missing name: usage is 'show-cert NAME [full]'"),
        (("show-req",), "Missing name: usage is 'show-req NAME [full]'"),
    ],
)
def test_show_missing_file_or_name(pki_copy, args: tuple[str, ...], expected: str) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, *args)
    assert result.returncode == 1
    assert expected.format(pki=pki) in result.stderr
    assert result.stdout == ""
    assert pki_state(pki) == before


@pytest.mark.parametrize(
    ("args", "relative", "content"),
    [
        (("show-cert", "alice"), "issued/alice.crt", b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"),
        (("show-req", "alice"), "reqs/alice.req", b"garbage\n"),
        (("show-ca",), "ca.crt", b""),
    ],
)
def test_show_invalid_file(pki_copy, args: tuple[str, ...], relative: str, content: bytes) -> None:
    pki = pki_copy("v3.2.7-rsa")
    (pki / relative).write_bytes(content)
    before = pki_state(pki)
    result = run_product(pki, *args)
    assert result.returncode == 1
    assert f"Invalid {Path(relative).name} at {pki / relative}" in result.stderr
    assert pki_state(pki) == before


def test_show_ca_without_ca(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    (pki / "ca.crt").unlink()
    result = run_product(pki, "show-ca")
    assert result.returncode == 1
    assert f"The CA file {pki / 'ca.crt'} is missing" in result.stderr


# --- show-host ---------------------------------------------------------------


def test_show_host_lists_facts(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(
        pki, "--passin=pass:top-secret-in", "show-host", env={"EASYRSA_PASSOUT": "pass:top-secret-out"}
    )
    assert result.returncode == 0
    labels = [line.split(":", 1)[0] for line in result.stdout.splitlines()]
    assert labels[:3] == ["Version", "Crypto library", "Python"]
    assert "PKI:" in result.stdout
    assert str(pki) in result.stdout
    assert "top-secret" not in result.stdout + result.stderr


def test_show_host_silent_prints_nothing(tmp_path: Path) -> None:
    result = run_product(tmp_path / "no-pki", "--silent", "show-host")
    assert result.returncode == 0
    assert result.stdout == ""


def test_show_host_rejects_arguments(tmp_path: Path) -> None:
    result = run_product(tmp_path / "no-pki", "show-host", "extra")
    assert result.returncode == 1
    assert "Unexpected argument 'extra': 'show-host' takes no arguments." in result.stderr
