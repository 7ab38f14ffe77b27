"""Unit tests of the x509-types profiles: lookup, parsing and extension building."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from easyrsa_py import profiles

ISSUER = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])


@pytest.fixture
def context() -> profiles.ExtensionContext:
    subject_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    issuer_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return profiles.ExtensionContext(
        subject_public_key=subject_key,
        issuer_name=ISSUER,
        issuer_public_key=issuer_key,
        serial_number=7,
        environment={"EASYRSA_KDC_REALM": "EXAMPLE.ORG"},
    )


def build(text: str, context: profiles.ExtensionContext) -> list[x509.Extension[x509.ExtensionType]]:
    profile = profiles.parse_profile("test", text, "test-profile")
    return profiles.build_extensions(profile.lines, context, profile.sections)


def test_comments_and_critical_prefix(context: profiles.ExtensionContext) -> None:
    extensions = build("# header\nkeyUsage = critical,digitalSignature # why\n\n", context)

    assert len(extensions) == 1
    assert extensions[0].critical is True
    assert isinstance(extensions[0].value, x509.KeyUsage)
    assert extensions[0].value.digital_signature is True


def test_duplicate_name_keeps_last_in_last_place(context: profiles.ExtensionContext) -> None:
    text = "keyUsage = digitalSignature\nextendedKeyUsage = clientAuth\nkeyUsage = keyAgreement\n"
    extensions = build(text, context)

    assert [type(extension.value) for extension in extensions] == [x509.ExtendedKeyUsage, x509.KeyUsage]
    assert extensions[1].value.key_agreement is True  # type: ignore[attr-defined]


def test_long_names_accepted(context: profiles.ExtensionContext) -> None:
    text = "keyUsage = Digital Signature, Key Encipherment\nextendedKeyUsage = TLS Web Server Authentication\n"
    extensions = build(text, context)

    assert extensions[0].value.key_encipherment is True  # type: ignore[attr-defined]
    assert list(extensions[1].value) == [ExtendedKeyUsageOID.SERVER_AUTH]  # type: ignore[call-overload]


def test_quoted_ns_comment(context: profiles.ExtensionContext) -> None:
    extensions = build('nsComment = "Made # here"\n', context)

    assert extensions[0].value.value == b"\x16\x0bMade # here"  # type: ignore[attr-defined]


def test_ns_cert_type_bits(context: profiles.ExtensionContext) -> None:
    extensions = build("nsCertType = server, client\n", context)

    assert extensions[0].value.value == b"\x03\x02\x06\xc0"  # type: ignore[attr-defined]


def test_unsupported_extension_names_line(context: profiles.ExtensionContext) -> None:
    with pytest.raises(profiles.ProfileError) as caught:
        build("keyUsage = digitalSignature\ncertificatePolicies = 1.2.3.4\n", context)

    assert "test-profile, line 2" in str(caught.value)
    assert "certificatePolicies" in str(caught.value)


def test_unknown_key_usage_names_value(context: profiles.ExtensionContext) -> None:
    with pytest.raises(profiles.ProfileError) as caught:
        build("keyUsage = digitalSignatur\n", context)

    assert "'digitalSignatur'" in str(caught.value)


def test_line_without_equals(context: profiles.ExtensionContext) -> None:
    with pytest.raises(profiles.ProfileError) as caught:
        profiles.parse_profile("bad", "keyUsage digitalSignature\n", "bad-file")

    assert "bad-file, line 1" in str(caught.value)


def test_missing_variable_names_it(context: profiles.ExtensionContext) -> None:
    with pytest.raises(profiles.ProfileError) as caught:
        build("subjectAltName = DNS:${ENV::EASYRSA_H1_UNSET_NAME}\n", context)

    assert "EASYRSA_H1_UNSET_NAME" in str(caught.value)


def test_variable_expanded(context: profiles.ExtensionContext) -> None:
    extensions = build("subjectAltName = DNS:kdc.$ENV::EASYRSA_KDC_REALM\n", context)

    assert list(extensions[0].value) == [x509.DNSName("kdc.EXAMPLE.ORG")]  # type: ignore[call-overload]


def test_kdc_principal_name(context: profiles.ExtensionContext) -> None:
    profile = profiles.load_profile("kdc", [])
    extensions = profiles.build_extensions(profile.lines, context, profile.sections)
    names = next(e for e in extensions if isinstance(e.value, x509.SubjectAlternativeName)).value
    other = next(iter(names))

    assert isinstance(other, x509.OtherName)
    assert other.type_id.dotted_string == "1.3.6.1.5.2.2"
    assert b"krbtgt" in other.value
    assert other.value.count(b"EXAMPLE.ORG") == 2


def test_authority_key_identifier_self_signed(context: profiles.ExtensionContext) -> None:
    own_key = context.subject_public_key
    self_signed = profiles.ExtensionContext(own_key, ISSUER, own_key, serial_number=9)

    assert build("authorityKeyIdentifier = keyid,issuer\n", self_signed) == []
    always = build("authorityKeyIdentifier = keyid:always,issuer:always\n", self_signed)[0].value
    assert always.authority_cert_serial_number == 9  # type: ignore[attr-defined]
    assert always.key_identifier == x509.SubjectKeyIdentifier.from_public_key(own_key).digest  # type: ignore[attr-defined]


def test_search_order_prefers_pki(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    easyrsa = tmp_path / "easyrsa"
    for root in (pki, easyrsa):
        (root / "x509-types").mkdir(parents=True)
        (root / "x509-types" / "client").write_text(f"nsComment = from {root.name}\n")
    folders = profiles.search_folders(pki, easyrsa, {}, cwd=tmp_path)

    assert profiles.load_profile("client", folders).lines[0].value == "from pki"


def test_explicit_ext_dir_is_only_folder(tmp_path: Path) -> None:
    folders = profiles.search_folders(tmp_path / "pki", tmp_path, {"EASYRSA_EXT_DIR": "/somewhere"})

    assert folders == [Path("/somewhere")]


def test_missing_type_falls_back_to_builtin(tmp_path: Path) -> None:
    (tmp_path / "x509-types").mkdir()
    profile = profiles.load_profile("server", [tmp_path / "x509-types"])

    assert profile.source == "built-in server"


def test_unknown_type_lists_folders(tmp_path: Path) -> None:
    with pytest.raises(profiles.UnknownProfile) as caught:
        profiles.load_profile("nosuch", [tmp_path / "a", tmp_path / "b"])

    assert str(tmp_path / "a") in str(caught.value)
    assert str(tmp_path / "b") in str(caught.value)


@pytest.mark.parametrize("name", ["../client", "a/b", "", ".."])
def test_path_like_type_rejected(name: str, tmp_path: Path) -> None:
    with pytest.raises(profiles.UnknownProfile):
        profiles.load_profile(name, [tmp_path])


def test_make_critical_only_named_line() -> None:
    profile = profiles.parse_profile("t", "basicConstraints = CA:FALSE\nkeyUsage = digitalSignature\n", "t")
    lines = profiles.make_critical(profile.lines, "keyUsage")

    assert [line.critical for line in lines] == [False, True]


def test_default_key_identifiers_added(context: profiles.ExtensionContext) -> None:
    lines = profiles.parse_profile("t", "basicConstraints = CA:FALSE\n", "t").lines
    extensions = profiles.build_extensions(lines, context)
    result = profiles.add_default_key_identifiers(extensions, lines, context)

    assert [type(extension.value) for extension in result] == [
        x509.BasicConstraints,
        x509.SubjectKeyIdentifier,
        x509.AuthorityKeyIdentifier,
    ]


def test_default_key_identifiers_skip_named_none(context: profiles.ExtensionContext) -> None:
    lines = profiles.parse_profile("t", "basicConstraints = CA:FALSE\nsubjectKeyIdentifier = none\n", "t").lines
    extensions = profiles.build_extensions(lines, context)
    result = profiles.add_default_key_identifiers(extensions, lines, context)

    assert [type(extension.value) for extension in result] == [
        x509.BasicConstraints,
        x509.AuthorityKeyIdentifier,
    ]


KDC_FILE_TEXT = """\
basicConstraints = CA:FALSE
extendedKeyUsage = 1.3.6.1.5.2.3.5
subjectAltName = otherName:1.3.6.1.5.2.2;SEQUENCE:kdc_princ_name

[kdc_princ_name]
realm = EXP:0,GeneralString:${ENV::EASYRSA_KDC_REALM}
principal_name = EXP:1,SEQUENCE:kdc_principal_seq

[kdc_principal_seq]
name_type = EXP:0,INTEGER:1
name_string = EXP:1,SEQUENCE:kdc_principals

[kdc_principals]
princ1 = GeneralString:krbtgt
princ2 = GeneralString:${ENV::EASYRSA_KDC_REALM}
"""


def test_kdc_file_sections_accepted(context: profiles.ExtensionContext) -> None:
    extensions = build(KDC_FILE_TEXT, context)

    assert isinstance(extensions[-1].value, x509.SubjectAlternativeName)


def test_kdc_changed_sections_rejected(context: profiles.ExtensionContext) -> None:
    with pytest.raises(profiles.ProfileError) as caught:
        build(KDC_FILE_TEXT.replace("GeneralString:krbtgt", "GeneralString:other"), context)

    assert "test-profile, line 3" in str(caught.value)
    assert "kdc_princ_name" in str(caught.value)
