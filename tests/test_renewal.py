"""renew and expire, compared with the real easy-rsa, mixed with it, and on bad input.

Each differential test prepares one PKI copy (with the real script where a
certificate must exist first), clones it, and runs the same command with
the real script on one copy and easyrsa_py on the other. Certificates are
compared field by field, because serials and signatures are random.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pkitools import (
    extension_list,
    parse_index_time,
    pki_state,
    read_index,
    run_product,
    tree_contents,
    tree_modes,
)

from easyrsa_py.commands import Context
from easyrsa_py.console import Console
from easyrsa_py.errors import UsageError
from easyrsa_py.pki import PKILayout
from easyrsa_py.renewal import expire, renew, subject_alt_name_text
from easyrsa_py.settings import build_settings

EC_PASSIN = {"EASYRSA_PASSIN": "pass:fixture-ec-ca-pass"}
FIXTURE_ENV = {"v3.2.2-ec": EC_PASSIN}
# Random serials make these names differ between two runs.
RANDOM_NAMES = ("certs_by_serial/*",)


def twin_pkis(
    pki_copy: Callable[[str], Path], fixture: str, prepare: Callable[[Path], Any] | None = None
) -> tuple[Path, Path]:
    """Copy `fixture`, let `prepare` change it, and return it with an exact twin."""
    first = pki_copy(fixture)
    if prepare is not None:
        prepare(first)
    twin = first.parent.with_name(first.parent.name + "-twin") / "pki"
    twin.parent.mkdir()
    shutil.copytree(first, twin, symlinks=True)
    return first, twin


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def certificate_fields(certificate: x509.Certificate) -> dict[str, Any]:
    """Return the fields two tools must agree on when they sign the same request."""
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    return {
        "subject": certificate.subject.public_bytes(),
        "issuer": certificate.issuer.public_bytes(),
        "lifetime in minutes": round(lifetime.total_seconds() / 60),
        "extensions": extension_list(certificate.extensions),
        "signature algorithm": certificate.signature_algorithm_oid.dotted_string,
        "public key": certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "version": certificate.version,
    }


def assert_recent_start(certificate: x509.Certificate) -> None:
    assert abs(certificate.not_valid_before_utc - datetime.now(UTC)) < timedelta(minutes=2)


def rows_without_dates(pki: Path) -> list[list[str]]:
    """Return index.txt rows with end date and serial blanked, which differ for each new certificate."""
    return [row[:1] + ["<date>", row[2], "<serial>", *row[4:]] for row in read_index(pki)]


def run_pair(
    reference: Any, ref_pki: Path, py_pki: Path, *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    expected = reference.run(ref_pki, *args, env=env, check=False, **kwargs)
    actual = run_product(py_pki, *args, env=env, **kwargs)
    return expected, actual


def assert_same_renewal(ref_pki: Path, py_pki: Path, name: str, old: bytes) -> None:
    assert (py_pki / "renewed" / "issued" / f"{name}.crt").read_bytes() == old
    assert (ref_pki / "renewed" / "issued" / f"{name}.crt").read_bytes() == old
    expected = load(ref_pki / "issued" / f"{name}.crt")
    actual = load(py_pki / "issued" / f"{name}.crt")
    assert certificate_fields(actual) == certificate_fields(expected)
    assert_recent_start(actual)
    assert actual.serial_number != load_old(old).serial_number
    assert rows_without_dates(py_pki) == rows_without_dates(ref_pki)
    new_row = read_index(py_pki)[-1]
    assert new_row[3] == f"{actual.serial_number:X}".zfill(32)
    assert parse_index_time(new_row[1]) == actual.not_valid_after_utc.replace(microsecond=0)
    assert (py_pki / "index.txt.attr").read_text() == "unique_subject = no\n"
    assert tree_modes(py_pki, RANDOM_NAMES) == tree_modes(ref_pki, RANDOM_NAMES)
    assert len(list((py_pki / "certs_by_serial").iterdir())) == len(list((ref_pki / "certs_by_serial").iterdir()))
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(py_pki / "ca.crt"), str(py_pki / "issued" / f"{name}.crt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


def load_old(data: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data)


# --- renew, differential --------------------------------------------------------


@pytest.mark.reference
@pytest.mark.parametrize(
    ("version", "fixture", "name"),
    [
        ("3.2.7", "v3.2.7-rsa", "alice"),
        ("3.2.7", "v3.2.7-rsa", "server"),
        ("3.2.7", "v3.2.7-rsa", "francois"),
        ("3.2.7", "v3.2.7-rsa", "dave"),
        ("3.2.7", "v3.2.7-ed25519", "alice"),
        ("3.2.2", "v3.2.2-ec", "alice"),
        ("3.2.2", "v3.2.7-rsa", "alice"),
    ],
)
def test_renew_matches_reference(version: str, fixture: str, name: str, pki_copy: Any, reference_for: Any) -> None:
    ref_pki, py_pki = twin_pkis(pki_copy, fixture)
    old = (py_pki / "issued" / f"{name}.crt").read_bytes()
    expected, actual = run_pair(reference_for(version), ref_pki, py_pki, "renew", name, env=FIXTURE_ENV.get(fixture))
    assert expected.returncode == 0, expected.stdout + expected.stderr
    assert actual.returncode == 0, actual.stderr
    assert_same_renewal(ref_pki, py_pki, name, old)
    assert "revoke-renewed" in actual.stderr


@pytest.mark.reference
def test_renew_copies_san_and_critical(pki_copy: Any, reference_for: Any) -> None:
    reference = reference_for("3.2.7")

    def build(pki: Path) -> None:
        reference.run(
            pki, "--san=DNS:web.example", "--san=IP:192.0.2.7", "--san=email:ops@example.org",
            "--bc-crit", "--ku-crit", "--eku-crit", "--digest=sha384",
            "build-serverClient-full", "web", "nopass",
        )

    ref_pki, py_pki = twin_pkis(pki_copy, "v3.2.7-rsa", build)
    old = (py_pki / "issued" / "web.crt").read_bytes()
    expected, actual = run_pair(reference, ref_pki, py_pki, "renew", "web")
    assert expected.returncode == 0, expected.stdout
    assert actual.returncode == 0, actual.stderr
    assert_same_renewal(ref_pki, py_pki, "web", old)
    renewed = load(py_pki / "issued" / "web.crt")
    critical = {extension.oid.dotted_string for extension in renewed.extensions if extension.critical}
    assert critical == {"2.5.29.19", "2.5.29.15", "2.5.29.37"}
    assert renewed.signature_hash_algorithm is not None
    assert renewed.signature_hash_algorithm.name == "sha384"


@pytest.mark.reference
def test_renew_days_option(pki_copy: Any, reference_for: Any) -> None:
    ref_pki, py_pki = twin_pkis(pki_copy, "v3.2.7-rsa")
    old = (py_pki / "issued" / "alice.crt").read_bytes()
    expected, actual = run_pair(reference_for("3.2.7"), ref_pki, py_pki, "--days=30", "renew", "alice")
    assert expected.returncode == 0, expected.stdout
    assert actual.returncode == 0, actual.stderr
    assert_same_renewal(ref_pki, py_pki, "alice", old)
    lifetime = load(py_pki / "issued" / "alice.crt").not_valid_after_utc - datetime.now(UTC)
    assert timedelta(days=29) < lifetime <= timedelta(days=30)


@pytest.mark.reference
def test_renew_deletes_exports_and_inline(pki_copy: Any, reference_for: Any) -> None:
    def add_exports(pki: Path) -> None:
        for relative in ("issued/alice.p7b", "private/alice.p12", "private/alice.p8", "inline/alice.inline"):
            (pki / relative).write_text("export\n")

    ref_pki, py_pki = twin_pkis(pki_copy, "v3.2.7-rsa", add_exports)
    expected, actual = run_pair(reference_for("3.2.7"), ref_pki, py_pki, "renew", "alice")
    assert expected.returncode == 0, expected.stdout
    assert actual.returncode == 0, actual.stderr
    assert tree_contents(py_pki, RANDOM_NAMES).keys() == tree_contents(ref_pki, RANDOM_NAMES).keys()
    for relative in ("issued/alice.p7b", "private/alice.p12", "private/alice.p8", "inline/alice.inline"):
        assert not (py_pki / relative).exists(), relative
    inline_text = (py_pki / "inline/private/alice.inline").read_text()
    serial = load(py_pki / "issued/alice.crt").serial_number
    assert f"# Decimal serial number: {serial}\n" in inline_text


@pytest.mark.reference
def test_renew_code_signing(pki_copy: Any, reference_for: Any) -> None:
    reference = reference_for("3.2.7")

    def build(pki: Path) -> None:
        reference.run(pki, "gen-req", "signer", "nopass")
        reference.run(pki, "sign-req", "code-signing", "signer")

    ref_pki, py_pki = twin_pkis(pki_copy, "v3.2.7-rsa", build)
    old = (py_pki / "issued" / "signer.crt").read_bytes()
    expected, actual = run_pair(reference, ref_pki, py_pki, "renew", "signer")
    assert expected.returncode == 0, expected.stdout
    assert actual.returncode == 0, actual.stderr
    assert_same_renewal(ref_pki, py_pki, "signer", old)


@pytest.mark.reference
def test_renew_email_differs(pki_copy: Any, reference_for: Any) -> None:
    # 3.2.7 passes "'E-mail Protection'" to sign-req as the type, which fails.
    reference = reference_for("3.2.7")

    def build(pki: Path) -> None:
        reference.run(pki, "gen-req", "mailer", "nopass")
        reference.run(pki, "sign-req", "email", "mailer")

    ref_pki, py_pki = twin_pkis(pki_copy, "v3.2.7-rsa", build)
    expected, actual = run_pair(reference, ref_pki, py_pki, "renew", "mailer")
    assert expected.returncode != 0
    assert (ref_pki / "issued" / "mailer.crt").is_file()
    assert actual.returncode == 0, actual.stderr
    old = load(py_pki / "renewed/issued/mailer.crt")
    new = load(py_pki / "issued/mailer.crt")
    assert extension_list(new.extensions) == extension_list(old.extensions)


@pytest.mark.reference
@pytest.mark.parametrize(
    ("case", "name", "prepare"),
    [
        ("renewed already", "carol", None),
        ("no certificate", "nobody", None),
        ("request missing", "alice", lambda pki: (pki / "reqs/alice.req").unlink()),
        (
            "common name mismatch",
            "alice",
            lambda pki: shutil.copy(pki / "reqs/carol.req", pki / "reqs/alice.req"),
        ),
        ("invalid certificate", "alice", lambda pki: (pki / "issued/alice.crt").write_text("junk\n")),
        ("unknown option", "alice extra", None),
    ],
)
def test_renew_rejects_like_reference(
    case: str, name: str, prepare: Callable[[Path], Any] | None, pki_copy: Any, reference_for: Any
) -> None:
    ref_pki, py_pki = twin_pkis(pki_copy, "v3.2.7-rsa", prepare)
    ref_before, py_before = pki_state(ref_pki), pki_state(py_pki)
    expected, actual = run_pair(reference_for("3.2.7"), ref_pki, py_pki, "renew", *name.split())
    assert expected.returncode == 1, expected.stdout
    assert actual.returncode == 1, actual.stderr
    assert "Error:" in actual.stderr
    assert pki_state(py_pki) == py_before
    assert pki_state(ref_pki) == ref_before


# --- renew, mixed use ------------------------------------------------------------


@pytest.mark.reference
def test_renew_then_reference_revokes(pki_copy: Any, reference_for: Any) -> None:
    reference = reference_for("3.2.7")
    pki = pki_copy("v3.2.7-rsa")
    old_serial = f"{load(pki / 'issued/alice.crt').serial_number:X}".zfill(32)
    result = run_product(pki, "renew", "alice")
    assert result.returncode == 0, result.stderr
    reference.run(pki, "revoke-renewed", "alice", "superseded")
    reference.run(pki, "gen-crl")
    rows = {row[3]: row for row in read_index(pki)}
    assert rows[old_serial][0] == "R"
    assert rows[old_serial][2].endswith(",superseded")
    assert (pki / "revoked/certs_by_serial" / f"{old_serial}.crt").is_file()
    crl = x509.load_pem_x509_crl((pki / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(int(old_serial, 16)) is not None
    verify = subprocess.run(
        ["openssl", "verify", "-crl_check", "-CAfile", str(pki / "ca.crt"), "-CRLfile", str(pki / "crl.pem"),
         str(pki / "issued/alice.crt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


@pytest.mark.reference
def test_reference_renews_then_product_revokes(pki_copy: Any, reference_for: Any) -> None:
    reference = reference_for("3.2.7")
    pki = pki_copy("v3.2.7-rsa")
    old_serial = f"{load(pki / 'issued/alice.crt').serial_number:X}".zfill(32)
    reference.run(pki, "renew", "alice")
    result = run_product(pki, "revoke-renewed", "alice")
    assert result.returncode == 0, result.stderr
    rows = {row[3]: row for row in read_index(pki)}
    assert rows[old_serial][0] == "R"
    # The product then renews the new certificate once more: renewed/issued is free again.
    again = run_product(pki, "renew", "alice")
    assert again.returncode == 0, again.stderr
    reference.run(pki, "revoke-renewed", "alice")


@pytest.mark.reference
def test_renew_31_window_differs(pki_copy: Any, reference_for: Any) -> None:
    # 3.1.0 renews only within 30 days of the end date; 3.2 renews at any time.
    ref_pki, py_pki = twin_pkis(pki_copy, "v3.1.0-rsa")
    expected, actual = run_pair(reference_for("3.1.0"), ref_pki, py_pki, "renew", "alice", "nopass")
    assert expected.returncode == 1
    assert "Renewal not allowed" in expected.stdout + expected.stderr
    assert actual.returncode == 0, actual.stderr
    assert (py_pki / "renewed/issued/alice.crt").is_file()
    assert (py_pki / "private/alice.key").is_file()


@pytest.mark.reference
def test_renew_on_31_pki_then_31_revokes(pki_copy: Any, reference_for: Any) -> None:
    # easyrsa_py writes 3.2's layout; 3.1.0's revoke-renewed also reads renewed/issued.
    pki = pki_copy("v3.1.0-rsa")
    old_serial = f"{load(pki / 'issued/alice.crt').serial_number:X}".zfill(32)
    result = run_product(pki, "renew", "alice")
    assert result.returncode == 0, result.stderr
    reference_for("3.1.0").run(pki, "revoke-renewed", "alice")
    rows = {row[3]: row for row in read_index(pki)}
    assert rows[old_serial][0] == "R"
    assert (pki / "revoked/certs_by_serial" / f"{old_serial}.crt").is_file()
    assert not (pki / "renewed/issued/alice.crt").exists()


# --- renew, bad input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("renew",), "Missing certificate name"),
        (("renew", ""), "Missing certificate name"),
        (("renew", "../issued/alice"), "Invalid certificate name"),
        (("renew", "a/b"), "Invalid certificate name"),
        (("renew", "/tmp/alice"), "Invalid certificate name"),
        (("renew", "bob"), "no certificate at"),
    ],
)
def test_renew_bad_input(args: tuple[str, ...], message: str, pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert pki_state(pki) == before


def test_renew_wrong_passphrase_changes_nothing(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.2-ec")
    (pki / "issued/alice.p12").write_text("export\n")
    before = pki_state(pki)
    result = run_product(pki, "--passin=pass:wrong", "renew", "alice")
    assert result.returncode == 1
    assert "passphrase" in result.stderr
    assert pki_state(pki) == before


def test_renew_nopass_warns(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "renew", "alice", "nopass")
    assert result.returncode == 0, result.stderr
    assert "'nopass' has no effect" in result.stderr


def test_renew_confirmations(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    refused = run_product(pki, "renew", "alice", batch=False, input="yes\nno\n")
    assert refused.returncode == 1
    assert "Continue with 'renew' ? " in refused.stderr
    assert "Confirm requested details: " in refused.stderr
    assert (pki / "issued/alice.crt").is_file()
    assert not (pki / "renewed/issued/alice.crt").exists()
    accepted = run_product(pki, "renew", "alice", batch=False, input="yes\nyes\n")
    assert accepted.returncode == 0, accepted.stderr
    assert (pki / "renewed/issued/alice.crt").is_file()


def test_renew_self_signed_rejected(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(4242)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.AuthorityKeyIdentifier(None, [x509.DirectoryName(name)], 4242), critical=False)
        .sign(key, hashes.SHA256())
    )
    (pki / "issued/alice.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    before = pki_state(pki)
    for command in ("renew", "expire"):
        result = run_product(pki, command, "alice")
        assert result.returncode == 1
        assert "self-signed" in result.stderr
        assert pki_state(pki) == before


def test_renew_unsupported_type(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    ca = load(pki / "ca.crt")
    ca_key = serialization.load_pem_private_key((pki / "private/ca.key").read_bytes(), None)
    request = x509.load_pem_x509_csr((pki / "reqs/alice.req").read_bytes())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca.subject)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.TIME_STAMPING]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    (pki / "issued/alice.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    before = pki_state(pki)
    result = run_product(pki, "renew", "alice")
    assert result.returncode == 1
    assert "'Time Stamping' matches no type" in result.stderr
    assert pki_state(pki) == before


def in_process_context(pki: Path, command: str) -> Context:
    settings = build_settings({"EASYRSA_BATCH": "1"}, {"EASYRSA_PKI": str(pki)}, pki.parent)
    console = Console(batch=True, stdout=io.StringIO(), stderr=io.StringIO())
    return Context(settings=settings, layout=PKILayout(pki), console=console, command_name=command)


@pytest.mark.parametrize("handler", [renew, expire])
def test_name_with_nul_rejected(handler: Any, pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    with pytest.raises(UsageError, match="Invalid certificate name"):
        handler(in_process_context(pki, handler.__name__), ["al\0ice"])
    assert pki_state(pki) == before


def test_san_text_round_trip() -> None:
    names = x509.SubjectAlternativeName(
        [x509.DNSName("a.example"), x509.RFC822Name("x@example.org"), x509.UniformResourceIdentifier("https://e.example/")]
    )
    assert subject_alt_name_text(names, Path("x.crt")) == "DNS:a.example,email:x@example.org,URI:https://e.example/"
    directory = x509.SubjectAlternativeName([x509.DirectoryName(x509.Name([]))])
    with pytest.raises(UsageError, match="cannot copy"):
        subject_alt_name_text(directory, Path("x.crt"))


# --- expire -----------------------------------------------------------------------


@pytest.mark.reference
@pytest.mark.parametrize(
    ("version", "fixture"),
    [("3.2.7", "v3.2.7-rsa"), ("3.2.2", "v3.2.7-rsa"), ("3.2.7", "v3.2.7-ed25519"), ("3.2.2", "v3.2.2-ec")],
)
def test_expire_matches_reference(version: str, fixture: str, pki_copy: Any, reference_for: Any) -> None:
    ref_pki, py_pki = twin_pkis(pki_copy, fixture)
    expected, actual = run_pair(reference_for(version), ref_pki, py_pki, "expire", "alice")
    assert expected.returncode == 0, expected.stdout
    assert actual.returncode == 0, actual.stderr
    assert tree_contents(py_pki) == tree_contents(ref_pki)
    assert tree_modes(py_pki) == tree_modes(ref_pki)
    assert "revoke-expired alice" in actual.stderr


@pytest.mark.reference
def test_expire_then_reference_revokes(pki_copy: Any, reference_for: Any) -> None:
    reference = reference_for("3.2.7")
    pki = pki_copy("v3.2.7-rsa")
    serial = f"{load(pki / 'issued/alice.crt').serial_number:X}".zfill(32)
    result = run_product(pki, "expire", "alice")
    assert result.returncode == 0, result.stderr
    reference.run(pki, "revoke-expired", "alice")
    rows = {row[3]: row for row in read_index(pki)}
    assert rows[serial][0] == "R"
    assert (pki / "revoked/certs_by_serial" / f"{serial}.crt").is_file()
    assert (pki / "private/alice.key").is_file()


@pytest.mark.reference
@pytest.mark.parametrize(
    ("case", "args", "prepare"),
    [
        ("already expired", ("expire", "erin"), lambda pki: shutil.copy(pki / "expired/erin.crt", pki / "issued/erin.crt")),
        ("no certificate", ("expire", "nobody"), None),
        ("unknown option", ("expire", "alice", "extra"), None),
        ("invalid certificate", ("expire", "alice"), lambda pki: (pki / "issued/alice.crt").write_text("junk\n")),
    ],
)
def test_expire_rejects_like_reference(
    case: str, args: tuple[str, ...], prepare: Callable[[Path], Any] | None, pki_copy: Any, reference_for: Any
) -> None:
    ref_pki, py_pki = twin_pkis(pki_copy, "v3.2.7-rsa", prepare)
    before = pki_state(py_pki)
    expected, actual = run_pair(reference_for("3.2.7"), ref_pki, py_pki, *args)
    assert expected.returncode == 1, expected.stdout
    assert actual.returncode == 1, actual.stderr
    assert pki_state(py_pki) == before


def test_expire_missing_leaves_no_folder(pki_copy: Any) -> None:
    # easy-rsa 3.2.7 creates expired/ before its checks, even when they fail.
    pki = pki_copy("v3.2.7-ed25519")
    assert not (pki / "expired").exists()
    result = run_product(pki, "expire", "nobody")
    assert result.returncode == 1
    assert not (pki / "expired").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("expire",), "Missing certificate name"),
        (("expire", "../issued/alice"), "Invalid certificate name"),
        (("expire", "a/b"), "Invalid certificate name"),
        (("expire", "/tmp/alice"), "Invalid certificate name"),
        (("expire", "."), "Invalid certificate name"),
    ],
)
def test_expire_bad_input(args: tuple[str, ...], message: str, pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert pki_state(pki) == before


def test_expire_confirmation(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    refused = run_product(pki, "expire", "alice", batch=False, input="no\n")
    assert refused.returncode == 1
    assert "    Continue with expiry: " in refused.stderr
    assert "serial-number             = 7C0895ABACCC34C8C33A3BF77B85058C" in refused.stderr
    assert "notAfter date             = Mar  8 15:51:29 2029 GMT" in refused.stderr
    assert pki_state(pki) == before
    accepted = run_product(pki, "expire", "alice", batch=False, input="yes\n")
    assert accepted.returncode == 0, accepted.stderr
    assert (pki / "expired/alice.crt").is_file()


def test_expire_nopass_warns(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "expire", "alice", "nopass")
    assert result.returncode == 0, result.stderr
    assert "'nopass' has no effect" in result.stderr


def test_renew_request_bad_signature(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    path = pki / "reqs/alice.req"
    request = x509.load_pem_x509_csr(path.read_bytes())
    der = bytearray(request.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 1
    path.write_bytes(x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM))
    before = pki_state(pki)
    result = run_product(pki, "renew", "alice")
    assert result.returncode == 1
    assert "alice.req" in result.stderr
    assert pki_state(pki) == before
