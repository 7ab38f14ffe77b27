"""Tests for easyrsa_py.names against the subjects OpenSSL writes.

Two oracles: `openssl ca` itself, whose index.txt rows carry the subject of
each certificate it signs, and X509_NAME_oneline() called through ctypes on
the DER of generated names, which reaches string types and values that
`openssl ca` refuses to sign.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier
from hypothesis import given, settings
from hypothesis import strategies as st

from easyrsa_py.names import SHORT_NAMES, escape_value, subject_oneline

requires_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl is not installed"
)

CA_CONFIG = """\
[ ca ]
default_ca = CA_default
[ CA_default ]
database = {dir}/index.txt
new_certs_dir = {dir}/certs
certificate = {dir}/ca.crt
private_key = {dir}/ca.key
serial = {dir}/serial
default_md = sha256
default_days = 30
policy = policy_anything
unique_subject = no
[ policy_anything ]
commonName = optional
[ req ]
distinguished_name = dn
[ dn ]
"""


class OpenSSLCA:
    """A throwaway `openssl ca` in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = folder / "ca.cnf"
        (folder / "certs").mkdir()
        (folder / "index.txt").write_bytes(b"")
        (folder / "serial").write_bytes(b"01\n")
        self.config.write_text(CA_CONFIG.format(dir=folder))
        # One key signs the CA certificate and every request.
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.key_path = folder / "ca.key"
        self.key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.run(
            "req", "-x509", "-key", str(self.key_path), "-out", str(folder / "ca.crt"),
            "-subj", "/CN=Test CA", "-days", "30",
        )  # fmt: skip

    def run(self, *args: str) -> None:
        subprocess.run(
            ["openssl", *args, "-config", str(self.config)],
            check=True,
            capture_output=True,
        )

    def sign(self, csr: Path) -> tuple[x509.Certificate, str]:
        """Sign `csr` keeping its DN, and return the certificate and row subject."""
        out = csr.with_suffix(".crt")
        self.run(
            "ca", "-batch", "-utf8", "-preserveDN", "-in", str(csr), "-out", str(out)
        )
        row = (self.folder / "index.txt").read_text().splitlines()[-1]
        certificate = x509.load_pem_x509_certificate(out.read_bytes())
        return certificate, row.split("\t")[5]

    def sign_name(self, name: x509.Name, stem: str) -> tuple[x509.Certificate, str]:
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(name)
            .sign(self.key, hashes.SHA256())
        )
        csr = self.folder / f"{stem}.csr"
        csr.write_bytes(request.public_bytes(serialization.Encoding.PEM))
        return self.sign(csr)

    def sign_subj(
        self, subj: str, stem: str, *options: str
    ) -> tuple[x509.Certificate, str]:
        csr = self.folder / f"{stem}.csr"
        self.run(
            "req", "-new", "-key", str(self.key_path), "-out", str(csr),
            "-utf8", "-subj", subj, *options,
        )  # fmt: skip
        return self.sign(csr)


@pytest.fixture(scope="module")
def openssl_ca(tmp_path_factory: pytest.TempPathFactory) -> OpenSSLCA:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return OpenSSLCA(tmp_path_factory.mktemp("names-ca"))


def single(
    oid: ObjectIdentifier, value: str, kind: _ASN1Type | None = None
) -> x509.Name:
    if kind is None:
        return x509.Name([x509.NameAttribute(oid, value)])
    return x509.Name([x509.NameAttribute(oid, value, kind)])


# -- against openssl ca ---------------------------------------------------------


@requires_openssl
@pytest.mark.parametrize(
    ("stem", "subj", "options"),
    [
        ("ascii", "/C=US/O=Org/CN=alice", ()),
        ("utf8", "/C=DE/O=Müller GmbH/CN=José", ()),
        ("emoji", "/CN=snow ☃ and 😀", ()),
        ("slash-plus", "/O=a\\/b/CN=c\\+d", ()),
        ("multivalue", "/C=US/O=Org+OU=Unit/CN=bob+UID=7", ("-multivalue-rdn",)),
        (
            "many-types",
            (
                "/GN=Ann/SN=Lee/title=Dr/name=Ann Lee/initials=AL/dnQualifier=q"
                "/pseudonym=al/serialNumber=123/street=Main St 1/postalCode=12345"
                "/DC=example/DC=com/UID=ann/emailAddress=ann@example.com"
                "/jurisdictionC=US/businessCategory=Private Organization"
                "/organizationIdentifier=VATDE-123/description=test"
            ),
            (),
        ),
    ],
)
def test_oneline_matches_openssl_ca(
    openssl_ca: OpenSSLCA, stem: str, subj: str, options: tuple[str, ...]
) -> None:
    certificate, expected = openssl_ca.sign_subj(subj, stem, *options)

    assert subject_oneline(certificate.subject) == expected


@requires_openssl
def test_oneline_utf8_escapes_bytes(openssl_ca: OpenSSLCA) -> None:
    certificate, expected = openssl_ca.sign_subj("/CN=José", "jose")

    assert expected == "/CN=Jos\\xC3\\xA9"
    assert subject_oneline(certificate.subject) == expected


@requires_openssl
@pytest.mark.parametrize(
    ("stem", "name"),
    [
        ("bmp", single(NameOID.ORGANIZATION_NAME, "JĀé", _ASN1Type.BMPString)),
        (
            "universal",
            single(NameOID.ORGANIZATION_NAME, "AĀ", _ASN1Type.UniversalString),
        ),
        ("control", single(NameOID.COMMON_NAME, "tab\there\x01\x7f")),
        ("unknown-oid", single(ObjectIdentifier("1.3.6.1.4.1.99999.7"), "x")),
        ("t61", single(NameOID.COMMON_NAME, "teletex", _ASN1Type.T61String)),
        ("ia5", single(NameOID.EMAIL_ADDRESS, "a@b.example", _ASN1Type.IA5String)),
        (
            "long-oid",
            single(ObjectIdentifier("1.3.6.1.4.1." + ".".join(["123456"] * 14)), "x"),
        ),
        (
            "multi-oid",
            x509.Name(
                [
                    x509.RelativeDistinguishedName(
                        [
                            x509.NameAttribute(NameOID.COMMON_NAME, "x"),
                            x509.NameAttribute(NameOID.SERIAL_NUMBER, "42"),
                            x509.NameAttribute(ObjectIdentifier("1.2.3.4"), "y"),
                        ]
                    )
                ]
            ),
        ),
    ],
)
def test_oneline_matches_openssl_ca_for_types(
    openssl_ca: OpenSSLCA, stem: str, name: x509.Name
) -> None:
    certificate, expected = openssl_ca.sign_name(name, stem)

    assert subject_oneline(certificate.subject) == expected


@requires_openssl
def test_oneline_bmp_keeps_zero_bytes(openssl_ca: OpenSSLCA) -> None:
    name = single(NameOID.COMMON_NAME, "Jé", _ASN1Type.BMPString)
    certificate, expected = openssl_ca.sign_name(name, "bmp-zero")

    assert expected == "/CN=\\x00J\\x00\\xE9"
    assert subject_oneline(certificate.subject) == expected


@requires_openssl
def test_oneline_truncates_long_oid(openssl_ca: OpenSSLCA) -> None:
    oid = "1.3.6.1.4.1." + ".".join(["987654321"] * 10)
    certificate, expected = openssl_ca.sign_name(
        single(ObjectIdentifier(oid), "v"), "trunc"
    )

    assert len(oid) > 79
    assert expected == f"/{oid[:79]}=v"
    assert subject_oneline(certificate.subject) == expected


# -- against X509_NAME_oneline() through ctypes --------------------------------


def load_libcrypto() -> ctypes.CDLL | None:
    path = ctypes.util.find_library("crypto")
    if path is None:
        return None
    library = ctypes.CDLL(path)
    library.d2i_X509_NAME.restype = ctypes.c_void_p
    library.d2i_X509_NAME.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_long,
    ]
    library.X509_NAME_oneline.restype = ctypes.c_void_p
    library.X509_NAME_oneline.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
    ]
    library.X509_NAME_free.argtypes = [ctypes.c_void_p]
    library.CRYPTO_free.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    return library


LIBCRYPTO = load_libcrypto()


def openssl_oneline(name: x509.Name) -> str:
    """Return X509_NAME_oneline() of `name` from the system's libcrypto."""
    assert LIBCRYPTO is not None
    der = name.public_bytes()
    pointer = ctypes.c_char_p(der)
    handle = LIBCRYPTO.d2i_X509_NAME(None, ctypes.byref(pointer), len(der))
    assert handle, "libcrypto could not parse the name"
    try:
        text = LIBCRYPTO.X509_NAME_oneline(handle, None, 0)
        assert text
        try:
            return ctypes.string_at(text).decode("ascii")
        finally:
            LIBCRYPTO.CRYPTO_free(text, b"", 0)
    finally:
        LIBCRYPTO.X509_NAME_free(handle)


requires_libcrypto = pytest.mark.skipif(
    LIBCRYPTO is None, reason="libcrypto cannot be loaded"
)

KNOWN_OIDS = [ObjectIdentifier(dotted) for dotted in SHORT_NAMES]
TWO_LETTER_OIDS = {NameOID.COUNTRY_NAME, NameOID.JURISDICTION_COUNTRY_NAME}
UNKNOWN_OIDS = [ObjectIdentifier("1.3.6.1.4.1.55555.1"), ObjectIdentifier("2.999.3")]

# cryptography encodes these types from any str; PrintableString and
# NumericString would reject most generated text. OpenSSL cannot parse a
# name with a VisibleString value at all, so no index.txt row has one.
STRING_TYPES = [
    _ASN1Type.UTF8String,
    _ASN1Type.BMPString,
    _ASN1Type.UniversalString,
    _ASN1Type.T61String,
    _ASN1Type.IA5String,
]

attribute_values = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12
)


@st.composite
def names(draw: st.DrawFn) -> x509.Name:
    rdns = []
    for _ in range(draw(st.integers(0, 4))):
        size = draw(st.integers(1, 3))
        attributes = []
        for _ in range(size):
            oid = draw(st.sampled_from(KNOWN_OIDS + UNKNOWN_OIDS))
            kind = draw(st.sampled_from(STRING_TYPES))
            value = draw(attribute_values)
            if oid in TWO_LETTER_OIDS:
                # cryptography rejects country codes of any other length.
                value = draw(
                    st.text(st.characters(codec="ascii"), min_size=2, max_size=2)
                )
            if kind is _ASN1Type.BMPString:
                value = "".join(ch for ch in value if ord(ch) <= 0xFFFF) or "x"
            attributes.append(x509.NameAttribute(oid, value, kind))
        unique = {(a.oid, a.value): a for a in attributes}.values()
        rdns.append(x509.RelativeDistinguishedName(list(unique)))
    return x509.Name(rdns)


def reparsed(name: x509.Name) -> x509.Name:
    """Return `name` as a certificate parser sees it: RDNs in DER order."""
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .sign(key, hashes.SHA256())
    )
    return x509.load_der_x509_csr(
        request.public_bytes(serialization.Encoding.DER)
    ).subject


@requires_libcrypto
@settings(max_examples=150, deadline=None)
@given(names())
def test_oneline_matches_libcrypto(name: x509.Name) -> None:
    parsed = reparsed(name)

    assert subject_oneline(parsed) == openssl_oneline(parsed)


@requires_libcrypto
@pytest.mark.parametrize("oid", KNOWN_OIDS, ids=lambda oid: oid.dotted_string)
def test_short_name_matches_libcrypto(oid: ObjectIdentifier) -> None:
    name = single(oid, "vv", _ASN1Type.UTF8String)

    assert subject_oneline(name) == openssl_oneline(name)


# -- units ------------------------------------------------------------------------


def test_oneline_empty_name() -> None:
    assert subject_oneline(x509.Name([])) == ""


def test_escape_value_printable_bytes() -> None:
    assert escape_value(b"Az09 -_.~") == "Az09 -_.~"


def test_escape_value_separators() -> None:
    assert escape_value(b"a/b+c") == "a\\/b\\+c"


def test_escape_value_uppercase_hex() -> None:
    assert escape_value(b"\x00\x1f\x7f\x80\xff") == "\\x00\\x1F\\x7F\\x80\\xFF"


def test_escape_value_backslash_unchanged() -> None:
    assert escape_value(b"a\\b") == "a\\b"
