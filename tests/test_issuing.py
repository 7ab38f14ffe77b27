"""Differential tests of gen-req, sign-req, build-*-full and import-req.

The real easy-rsa and easyrsa_py run the same commands on two copies of one
fixture PKI. The new certificate, request, key, index row and files must
agree field by field, as issuing_tools describes. Deliberate differences are
asserted where they show.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509

pytest.register_assert_rewrite("issuing_tools")

from issuing_tools import (
    compare_certificates,
    key_format,
    last_row,
    load_certificate,
    new_paths,
    pem_part,
    summarize_request,
    tree_shape,
    without_inline,
)
from pkitools import run_product

VERSION_FIXTURES = {"3.1.0": "v3.1.0-rsa", "3.2.2": "v3.2.2-ec", "3.2.7": "v3.2.7-rsa"}
FIXTURE_OPTIONS = {"3.2.2": ("--passin=pass:fixture-ec-ca-pass",)}


def run_both(
    reference, pki_copy, commands: Sequence[Sequence[str]], env: dict[str, str] | None = None
) -> tuple[Path, Path, dict[str, int], dict[str, int]]:
    """Run each command with both tools on copies of the version's fixture.

    Returns both PKIs and the files each run added, with their modes.
    """
    fixture = VERSION_FIXTURES[reference.version]
    extra = FIXTURE_OPTIONS.get(reference.version, ())
    reference_pki = pki_copy(fixture)
    product_pki = pki_copy(fixture)
    before = tree_shape(reference_pki)
    for command in commands:
        reference.run(reference_pki, *extra, *command, env=env)
        result = run_product(product_pki, *extra, *command, env=env)
        assert result.returncode == 0, result.stderr
    return (
        reference_pki,
        product_pki,
        new_paths(before, tree_shape(reference_pki)),
        new_paths(before, tree_shape(product_pki)),
    )


def assert_same_issue(
    reference_pki: Path, product_pki: Path, name: str, version: str = "3.2.7", cert_type: str = ""
) -> None:
    compare_certificates(
        reference_pki / "issued" / f"{name}.crt",
        product_pki / "issued" / f"{name}.crt",
        version,
        cert_type,
    )
    assert last_row(product_pki) == last_row(reference_pki)


def assert_same_new_files(
    version: str, reference_new: dict[str, int], product_new: dict[str, int], cert_type: str = ""
) -> None:
    """Compare the added files; 3.1.0 writes no inline files, 3.2.2 also writes one for a sub-CA."""
    if version == "3.1.0":
        assert without_inline(product_new) == reference_new
    elif version == "3.2.2" and cert_type == "ca":
        assert product_new == without_inline(reference_new)
        assert any(path.startswith("inline/private/") for path in reference_new)
    else:
        assert product_new == reference_new


@pytest.mark.parametrize("kind", ["client", "server", "serverClient"])
def test_build_full_matches(reference, pki_copy, kind: str) -> None:
    command = (f"build-{kind}-full", "zed", "nopass")
    reference_pki, product_pki, reference_new, product_new = run_both(reference, pki_copy, [command])

    assert_same_issue(reference_pki, product_pki, "zed", reference.version, kind)
    assert summarize_request(product_pki / "reqs" / "zed.req") == summarize_request(
        reference_pki / "reqs" / "zed.req"
    )
    assert key_format(product_pki / "private" / "zed.key") == key_format(
        reference_pki / "private" / "zed.key"
    )
    assert_same_new_files(reference.version, reference_new, product_new)


@pytest.mark.parametrize("cert_type", ["client", "server", "serverClient", "ca", "email"])
def test_sign_req_profiles_match(reference, pki_copy, cert_type: str) -> None:
    commands = [("gen-req", "yan", "nopass"), ("sign-req", cert_type, "yan")]
    reference_pki, product_pki, reference_new, product_new = run_both(reference, pki_copy, commands)

    assert_same_issue(reference_pki, product_pki, "yan", reference.version, cert_type)
    assert_same_new_files(reference.version, reference_new, product_new, cert_type)


def test_sign_req_code_signing_matches(reference_for, pki_copy) -> None:
    reference = reference_for("3.2.7")
    commands = [("gen-req", "coder", "nopass"), ("sign-req", "code-signing", "coder")]
    reference_pki, product_pki, _, _ = run_both(reference, pki_copy, commands)

    assert_same_issue(reference_pki, product_pki, "coder")


def test_sign_req_kdc_matches(reference_for, pki_copy) -> None:
    reference = reference_for("3.2.7")
    commands = [("gen-req", "kdc1", "nopass"), ("sign-req", "kdc", "kdc1")]
    env = {"EASYRSA_KDC_REALM": "EXAMPLE.ORG"}
    reference_pki, product_pki, _, _ = run_both(reference, pki_copy, commands, env=env)

    assert_same_issue(reference_pki, product_pki, "kdc1")


OPTION_CASES = {
    "san": [("--san=DNS:vpn.example.org", "--san=IP:192.0.2.7", "build-server-full", "s1", "nopass")],
    "san-gen-req": [
        ("--san=DNS:req.example.org", "gen-req", "s1", "nopass"),
        ("sign-req", "server", "s1"),
    ],
    "copy-ext": [
        ("--san=DNS:req.example.org", "gen-req", "s1", "nopass"),
        ("--copy-ext", "sign-req", "server", "s1"),
    ],
    "auto-san-dns": [("--auto-san", "build-server-full", "vpn.example.org", "nopass")],
    "auto-san-ip": [("--auto-san", "build-server-full", "192.0.2.9", "nopass")],
    "auto-san-critical": [("--auto-san", "--san-crit", "build-server-full", "host.example", "nopass")],
    "critical-flags": [("--bc-crit", "--ku-crit", "--eku-crit", "build-client-full", "s1", "nopass")],
    "ns-cert": [("--ns-cert=yes", "build-server-full", "s1", "nopass")],
    "ns-comment": [("--ns-cert=yes", "--ns-comment=Made by tests", "build-client-full", "s1", "nopass")],
    "days": [("--days=30", "build-client-full", "s1", "nopass")],
    "dates": [
        ("--startdate=20300101000000Z", "--enddate=20310101000000Z", "build-client-full", "s1", "nopass")
    ],
    "dates-utctime": [
        ("--startdate=300101000000Z", "--enddate=310101000000Z", "build-client-full", "s1", "nopass")
    ],
    "dates-generalized": [
        ("--startdate=20600101000000Z", "--enddate=20610101000000Z", "build-client-full", "s1", "nopass")
    ],
    "digest": [("--digest=sha384", "build-client-full", "s1", "nopass")],
    "notext": [("--notext", "build-client-full", "s1", "nopass")],
    "subca-len": [("gen-req", "sub", "nopass"), ("--subca-len=2", "sign-req", "ca", "sub")],
    "new-subject": [
        ("gen-req", "s1", "nopass"),
        ("--new-subject=/CN=renamed/O=Example Org/OU=Unit", "sign-req", "client", "s1", "newsubj"),
    ],
    "org-dn": [
        (
            "--dn-mode=org", "--req-c=FR", "--req-st=Paris", "--req-city=Paris", "--req-org=Acme",
            "--req-ou=IT", "--req-email=it@example.org", "--req-serial=42", "--req-cn=Org Host",
            "gen-req", "s1", "nopass",
        ),
        ("sign-req", "server", "s1"),
    ],
    "org-dn-preserve": [
        (
            "--dn-mode=org", "--req-c=FR", "--req-st=Paris", "--req-city=Paris", "--req-org=Acme",
            "--req-ou=IT", "--req-email=it@example.org", "--req-cn=Org Host", "gen-req", "s1",
            "nopass",
        ),
        ("sign-req", "server", "s1", "preserve"),
    ],
    "req-cn": [("--req-cn=Other Name", "gen-req", "s1", "nopass"), ("sign-req", "client", "s1")],
    "org-dn-utf8": [
        (
            "--dn-mode=org", "--req-c=DE", "--req-st=Bayern", "--req-city=München",
            "--req-org=Bäckerei Müller", "--req-ou=Qualité", "--req-email=f@example.org",
            "--req-cn=François Dupré", "build-client-full", "s1", "nopass",
        ),
    ],
}


def _issued_name(commands: Sequence[Sequence[str]]) -> str:
    for command in commands:
        for position, word in enumerate(command):
            if word.startswith("build-") or word == "gen-req":
                return command[position + 1]
    raise AssertionError(f"no gen-req or build-*-full in {commands}")


# easy-rsa 3.1.0 lacks --auto-san, --san-crit, the other --*-crit
# options, --startdate, --enddate, --new-subject, --subca-len and
# --notext, and rejects --req-cn with build-*-full. It also adds a default
# subjectAltName to server certificates and orders the Netscape lines
# differently, so only the client cases below run on it.
CASES_FOR_3_1_0 = ("days", "digest", "req-cn")
VERSION_CASES = [
    *((case, version) for case in sorted(OPTION_CASES) for version in ("3.2.2", "3.2.7")),
    *((case, "3.1.0") for case in CASES_FOR_3_1_0),
]


@pytest.mark.parametrize(("case", "version"), VERSION_CASES)
def test_options_match(reference_for, pki_copy, case: str, version: str) -> None:
    reference = reference_for(version)
    commands = OPTION_CASES[case]
    name = _issued_name(commands)
    cert_type = "ca" if case == "subca-len" else ""
    reference_pki, product_pki, reference_new, product_new = run_both(reference, pki_copy, commands)

    compare_certificates(
        reference_pki / "issued" / f"{name}.crt", product_pki / "issued" / f"{name}.crt", version, cert_type
    )
    fixed_end = any(word.startswith("--enddate=") for command in commands for word in command)
    assert last_row(product_pki, fixed_end) == last_row(reference_pki, fixed_end)
    assert summarize_request(product_pki / "reqs" / f"{name}.req") == summarize_request(
        reference_pki / "reqs" / f"{name}.req"
    )
    assert_same_new_files(version, reference_new, product_new, cert_type)


def test_custom_profile_in_pki(reference, pki_copy) -> None:
    fixture = VERSION_FIXTURES[reference.version]
    profile = (
        "# A custom type with a comment\n"
        "basicConstraints = CA:FALSE\n"
        "keyUsage = critical, digitalSignature  # trailing comment\n"
        "extendedKeyUsage = 1.3.6.1.5.5.7.3.8, clientAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid,issuer:always\n"
        "subjectAltName = DNS:custom.example, email:ops@example.org\n"
    )
    extra = FIXTURE_OPTIONS.get(reference.version, ())
    pkis = []
    for runner in ("reference", "product"):
        pki = pki_copy(fixture)
        (pki / "x509-types").mkdir()
        (pki / "x509-types" / "stamper").write_text(profile)
        (pki / "x509-types" / "COMMON").write_text("")
        commands = [("gen-req", "tsa", "nopass"), ("sign-req", "stamper", "tsa")]
        for command in commands:
            if runner == "reference":
                reference.run(pki, *extra, *command)
            else:
                result = run_product(pki, *extra, *command)
                assert result.returncode == 0, result.stderr
        pkis.append(pki)

    assert_same_issue(pkis[0], pkis[1], "tsa", reference.version, "stamper")


def test_custom_client_profile_overrides_builtin(reference_for, pki_copy) -> None:
    reference = reference_for("3.2.7")
    pkis = []
    for runner in ("reference", "product"):
        pki = pki_copy("v3.2.7-rsa")
        (pki / "x509-types").mkdir()
        (pki / "x509-types" / "client").write_text(
            "basicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyAgreement\n"
            "extendedKeyUsage = clientAuth\n"
        )
        (pki / "x509-types" / "COMMON").write_text("crlDistributionPoints = URI:http://crl.example/ca.crl\n")
        if runner == "reference":
            reference.run(pki, "build-client-full", "c1", "nopass")
        else:
            result = run_product(pki, "build-client-full", "c1", "nopass")
            assert result.returncode == 0, result.stderr
        pkis.append(pki)

    assert_same_issue(pkis[0], pkis[1], "c1")


def test_sequential_serials_match(reference_for, pki_copy) -> None:
    reference = reference_for("3.2.7")
    env = {"EASYRSA_RAND_SN": "no"}
    commands = [("build-client-full", "q1", "nopass"), ("build-client-full", "q2", "nopass")]
    pkis = []
    for runner in ("reference", "product"):
        pki = pki_copy("v3.2.7-rsa")
        (pki / "serial").write_text("0A\n")
        for command in commands:
            if runner == "reference":
                reference.run(pki, *command, env=env)
            else:
                result = run_product(pki, *command, env=env)
                assert result.returncode == 0, result.stderr
        pkis.append(pki)
    reference_pki, product_pki = pkis

    for name in ("q1", "q2"):
        reference_serial = load_certificate(reference_pki / "issued" / f"{name}.crt").serial_number
        product_serial = load_certificate(product_pki / "issued" / f"{name}.crt").serial_number
        assert product_serial == reference_serial
    assert (product_pki / "serial").read_bytes() == (reference_pki / "serial").read_bytes()
    assert (product_pki / "serial.old").read_bytes() == (reference_pki / "serial.old").read_bytes()
    assert sorted(p.name for p in (product_pki / "certs_by_serial").iterdir()) == sorted(
        p.name for p in (reference_pki / "certs_by_serial").iterdir()
    )


def test_random_serial_files(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "build-client-full", "r1", "nopass")
    assert result.returncode == 0, result.stderr
    serial = load_certificate(pki / "issued" / "r1.crt").serial_number

    assert serial.bit_length() > 120
    assert (pki / "serial.old").read_text() == f"{serial:032x}\n"
    assert (pki / "serial").read_text() == f"{serial + 1:032X}\n"
    assert (pki / "certs_by_serial" / f"{serial:032X}.pem").read_bytes() == (
        pki / "issued" / "r1.crt"
    ).read_bytes()


def test_text_block_matches_openssl(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(
        pki, "--dn-mode=org", "--req-email=x@example.org", "build-client-full", "t1", "nopass"
    )
    assert result.returncode == 0, result.stderr
    data = (pki / "issued" / "t1.crt").read_bytes()
    text = data[: data.index(b"-----BEGIN")]
    openssl = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-nameopt", "compat", "-in", str(pki / "issued" / "t1.crt")],
        capture_output=True,
        check=True,
    )

    assert text == openssl.stdout


def test_import_req_matches(reference, pki_copy, tmp_path: Path) -> None:
    fixture = VERSION_FIXTURES[reference.version]
    source = pki_copy(fixture) / "reqs" / "alice.req"
    outside = tmp_path / "incoming.req"
    outside.write_bytes(source.read_bytes())
    reference_pki, product_pki, reference_new, product_new = run_both(
        reference, pki_copy, [("import-req", str(outside), "imported")]
    )

    assert (reference_pki / "reqs" / "imported.req").read_bytes() == outside.read_bytes()
    assert (product_pki / "reqs" / "imported.req").read_bytes() == outside.read_bytes()
    assert product_new == reference_new


def test_gen_req_prompts_for_common_name(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "gen-req", "p1", "nopass", batch=False, input="Typed Name\n")
    assert result.returncode == 0, result.stderr
    request = x509.load_pem_x509_csr(pem_part((pki / "reqs" / "p1.req").read_bytes()))

    assert "Common Name (eg: your user, host, or server name) [p1]:" in result.stderr
    assert "If you enter '.', the field will be left blank." in result.stderr
    assert request.subject.rfc4514_string() == "CN=Typed Name"


def test_gen_req_empty_answer_keeps_default(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "gen-req", "p2", "nopass", batch=False, input="\n")
    assert result.returncode == 0, result.stderr
    request = x509.load_pem_x509_csr(pem_part((pki / "reqs" / "p2.req").read_bytes()))

    assert request.subject.rfc4514_string() == "CN=p2"


def test_sign_req_confirmation_prompt(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    assert run_product(pki, "gen-req", "c2", "nopass").returncode == 0
    result = run_product(pki, "sign-req", "client", "c2", batch=False, input="yes\n")
    assert result.returncode == 0, result.stderr

    assert "  Requested CN:     'c2'\n  Requested type:   'client'\n" in result.stderr
    assert "subject=\n    commonName                = c2" in result.stderr
    assert "  Confirm requested details: " in result.stderr
    assert (pki / "issued" / "c2.crt").is_file()


def test_sign_req_refused_confirmation_changes_nothing(pki_copy) -> None:
    from pkitools import pki_state

    pki = pki_copy("v3.2.7-rsa")
    assert run_product(pki, "gen-req", "c3", "nopass").returncode == 0
    before = pki_state(pki)
    result = run_product(pki, "sign-req", "client", "c3", batch=False, input="no\n")

    assert result.returncode == 1
    assert "Aborting without confirmation." in result.stderr
    assert pki_state(pki) == before


def test_gen_req_with_passphrase(pki_copy) -> None:
    from issuing_tools import key_of

    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "--passout=pass:secret-words", "gen-req", "enc1")
    assert result.returncode == 0, result.stderr

    assert key_format(pki / "private" / "enc1.key") == "-----BEGIN ENCRYPTED PRIVATE KEY-----"
    assert key_of(pki / "private" / "enc1.key", b"secret-words") is not None
    assert (pki / "private" / "enc1.key").stat().st_mode & 0o777 == 0o600


def test_sign_alias_matches_3_1_0(reference_for, pki_copy) -> None:
    reference = reference_for("3.1.0")
    commands = [("gen-req", "old1", "nopass"), ("sign", "client", "old1")]
    reference_pki, product_pki, _, _ = run_both(reference, pki_copy, commands)

    assert_same_issue(reference_pki, product_pki, "old1", "3.1.0", "client")


def test_san_critical_with_san_differs(reference_for, pki_copy) -> None:
    """easy-rsa 3.2.7 ignores --san-crit for a --san value; easyrsa_py marks it critical."""
    reference = reference_for("3.2.7")
    commands = [("--san=DNS:crit.example", "--san-crit", "build-server-full", "c9", "nopass")]
    reference_pki, product_pki, _, _ = run_both(reference, pki_copy, commands)
    reference_san = load_certificate(reference_pki / "issued" / "c9.crt").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    product_san = load_certificate(product_pki / "issued" / "c9.crt").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )

    assert reference_san.critical is False
    assert product_san.critical is True
    assert product_san.value == reference_san.value


def test_gen_req_text_matches_openssl(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "--dn-mode=org", "gen-req", "rt1", "nopass", "text")
    assert result.returncode == 0, result.stderr
    path = pki / "reqs" / "rt1.req"
    data = path.read_bytes()
    openssl = subprocess.run(
        ["openssl", "req", "-noout", "-text", "-in", str(path)], capture_output=True, check=True
    )

    assert data[: data.index(b"-----BEGIN")] == openssl.stdout


def test_ed25519_ca_matches(reference_for, pki_copy) -> None:
    reference = reference_for("3.2.7")
    pkis = []
    for runner in ("reference", "product"):
        pki = pki_copy("v3.2.7-ed25519")
        command = ("--use-algo=ed", "--curve=ed25519", "build-server-full", "edge", "nopass")
        if runner == "reference":
            reference.run(pki, *command)
        else:
            result = run_product(pki, *command)
            assert result.returncode == 0, result.stderr
        pkis.append(pki)

    assert_same_issue(pkis[0], pkis[1], "edge", "3.2.7", "server")
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(pkis[1] / "ca.crt"), str(pkis[1] / "issued" / "edge.crt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


def test_extra_exts_from_environment_match(reference_for, pki_copy) -> None:
    reference = reference_for("3.2.7")
    env = {"EASYRSA_EXTRA_EXTS": "subjectAltName = DNS:extra.example, IP:198.51.100.4"}
    commands = [("gen-req", "ex1", "nopass"), ("sign-req", "server", "ex1")]
    reference_pki, product_pki, _, _ = run_both(reference, pki_copy, commands, env=env)

    assert_same_issue(reference_pki, product_pki, "ex1")
    assert summarize_request(product_pki / "reqs" / "ex1.req") == summarize_request(
        reference_pki / "reqs" / "ex1.req"
    )


def test_real_script_revokes_product_certificate(reference_for, pki_copy) -> None:
    reference = reference_for("3.2.7")
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "build-client-full", "mixed1", "nopass")
    assert result.returncode == 0, result.stderr
    serial = f"{load_certificate(pki / 'issued' / 'mixed1.crt').serial_number:032X}"

    reference.run(pki, "revoke", "mixed1", "superseded")
    reference.run(pki, "gen-crl")
    reference.run(pki, "build-client-full", "mixed2", "nopass")

    assert (pki / "revoked" / "certs_by_serial" / f"{serial}.crt").is_file()
    crl = x509.load_pem_x509_crl((pki / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None
    assert (pki / "issued" / "mixed2.crt").is_file()


def test_sequential_serials_interleave(reference_for, pki_copy) -> None:
    reference = reference_for("3.2.7")
    pki = pki_copy("v3.2.7-rsa")
    (pki / "serial").write_text("10\n")
    env = {"EASYRSA_RAND_SN": "no"}
    reference.run(pki, "build-client-full", "seq1", "nopass", env=env)
    result = run_product(pki, "build-client-full", "seq2", "nopass", env=env)
    assert result.returncode == 0, result.stderr
    reference.run(pki, "build-client-full", "seq3", "nopass", env=env)

    serials = [load_certificate(pki / "issued" / f"seq{n}.crt").serial_number for n in (1, 2, 3)]
    assert serials == [0x10, 0x11, 0x12]


def test_sequential_serial_already_used(pki_copy) -> None:
    from pkitools import pki_state

    pki = pki_copy("v3.2.7-rsa")
    used = load_certificate(pki / "issued" / "alice.crt").serial_number
    (pki / "serial").write_text(f"{used:032X}\n")
    (pki / "reqs" / "dup.req").write_bytes((pki / "reqs" / "alice.req").read_bytes())
    before = pki_state(pki)
    result = run_product(pki, "sign-req", "client", "dup", env={"EASYRSA_RAND_SN": "no"})

    assert result.returncode == 1
    assert f"{used:032X}" in result.stderr
    assert pki_state(pki) == before


def test_unique_subject_yes_rejects_duplicate(pki_copy) -> None:
    from pkitools import pki_state

    pki = pki_copy("v3.2.7-rsa")
    (pki / "index.txt.attr").write_text("unique_subject = yes\n")
    (pki / "reqs" / "alice2.req").write_bytes((pki / "reqs" / "alice.req").read_bytes())
    before = pki_state(pki)
    result = run_product(pki, "sign-req", "client", "alice2")

    assert result.returncode == 1
    assert "/CN=alice" in result.stderr
    assert pki_state(pki) == before


def test_org_prompts_dot_leaves_field_out(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    answers = "DE\n.\n\nAcme\n.\nWeb Host\n.\n\n"
    result = run_product(
        pki, "--dn-mode=org", "gen-req", "p3", "nopass", batch=False, input=answers
    )
    assert result.returncode == 0, result.stderr
    request = x509.load_pem_x509_csr(pem_part((pki / "reqs" / "p3.req").read_bytes()))

    assert "Country Name (2 letter code) [US]:" in result.stderr
    assert "Email Address [me@example.net]:" in result.stderr
    assert request.subject.rfc4514_string() == "CN=Web Host,O=Acme,L=San Francisco,C=DE"


def test_gen_req_overwrite_asks_for_confirmation(pki_copy) -> None:
    pki = pki_copy("v3.2.7-rsa")
    old_key = (pki / "private" / "alice.key").read_bytes()
    result = run_product(pki, "gen-req", "alice", "nopass", batch=False, input="yes\nyes\n\n")
    assert result.returncode == 0, result.stderr

    assert "  Confirm request overwrite: " in result.stderr
    assert "  Confirm key overwrite: " in result.stderr
    assert (pki / "private" / "alice.key").read_bytes() != old_key


def test_build_full_refused_confirmation_keeps_pki(pki_copy) -> None:
    from pkitools import pki_state

    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, "build-client-full", "nope", "nopass", batch=False, input="no\n")

    assert result.returncode == 1
    assert "  Confirm requested details: " in result.stderr
    assert "Aborting without confirmation." in result.stderr
    assert pki_state(pki) == before
