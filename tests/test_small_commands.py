"""rand and serial/check-serial, compared with the real easy-rsa 3.2.7."""

from __future__ import annotations

import re

import pytest
from pkitools import read_index, run_product

FIXTURE = "v3.2.7-rsa"


def run_both(reference_for, pki_copy, *args, batch=True):
    """Run the same command on two copies of the fixture: easy-rsa 3.2.7, then easyrsa_py."""
    ref_pki = pki_copy(FIXTURE)
    py_pki = pki_copy(FIXTURE)
    reference = reference_for("3.2.7").run(ref_pki, *args, check=False, batch=batch)
    product = run_product(py_pki, *args, batch=batch)
    return reference, product, py_pki


# --- rand ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["rand", "random"])
def test_rand_prints_hex(tmp_path, command):
    result = run_product(tmp_path / "no-pki", command, "16")

    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"[0-9a-f]{32}\n", result.stdout)


def test_rand_matches_reference_shape(reference_for, pki_copy):
    reference, product, _ = run_both(reference_for, pki_copy, "rand", "5")

    assert reference.returncode == 0
    assert product.returncode == 0
    assert len(reference.stdout) == 11
    assert len(product.stdout) == 11


def test_rand_differs_each_run(tmp_path):
    first = run_product(tmp_path / "no-pki", "rand", "16")
    second = run_product(tmp_path / "no-pki", "rand", "16")

    assert first.stdout != second.stdout


def test_rand_ignores_extra_words(tmp_path):
    result = run_product(tmp_path / "no-pki", "rand", "2", "3")

    assert re.fullmatch(r"[0-9a-f]{4}\n", result.stdout)


def test_rand_needs_no_pki(tmp_path):
    result = run_product(tmp_path / "no-pki", "rand", "1")

    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "no-pki").exists()


def test_rand_takes_no_lock(pki_copy):
    pki = pki_copy(FIXTURE)
    (pki / "lock.file").write_text("12345\n")

    result = run_product(pki, "rand", "1")

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("count", ["0", "x", "", "012", "-1", "1.5"])
def test_rand_bad_count(reference_for, pki_copy, tree_snapshot, count):
    reference, product, py_pki = run_both(reference_for, pki_copy, "rand", count)
    before = tree_snapshot(pki_copy(FIXTURE), exclude=())

    assert reference.returncode == 1
    assert product.returncode == 1
    assert f"Invalid byte count '{count}'" in product.stderr
    assert product.stdout == ""
    assert tree_snapshot(py_pki) == before


def test_rand_missing_count(tmp_path):
    result = run_product(tmp_path / "no-pki", "rand")

    assert result.returncode == 1
    assert "Invalid byte count ''" in result.stderr


# --- serial / check-serial ------------------------------------------------------


def serial_of(pki, subject):
    return next(row[3] for row in read_index(pki) if row[5] == subject)


@pytest.mark.parametrize("command", ["serial", "check-serial"])
def test_serial_present_batch_exits_1(reference_for, pki_copy, command):
    serial = serial_of(pki_copy(FIXTURE), "/CN=alice").lower()

    reference, product, _ = run_both(reference_for, pki_copy, command, serial)

    assert reference.returncode == 1
    assert product.returncode == 1
    assert product.stdout == ""


@pytest.mark.parametrize("serial", ["abcd", "abc", "00", "0"])
def test_serial_absent_batch_exits_0(reference_for, pki_copy, serial):
    reference, product, _ = run_both(reference_for, pki_copy, "serial", serial)

    assert reference.returncode == 0
    assert product.returncode == 0
    assert product.stdout == ""


def test_serial_leading_zero_still_found(reference_for, pki_copy):
    serial = "0" + serial_of(pki_copy(FIXTURE), "/CN=alice").lower()

    reference, product, _ = run_both(reference_for, pki_copy, "serial", serial)

    assert reference.returncode == 1
    assert product.returncode == 1


def test_serial_revoked_batch_exits_1(reference_for, pki_copy):
    serial = serial_of(pki_copy(FIXTURE), "/CN=bob").lower()

    reference, product, _ = run_both(reference_for, pki_copy, "serial", serial)

    assert reference.returncode == 1
    assert product.returncode == 1


def test_serial_interactive_present(reference_for, pki_copy):
    serial = serial_of(pki_copy(FIXTURE), "/CN=bob")

    reference, product, py_pki = run_both(
        reference_for, pki_copy, "serial", serial.lower(), batch=False
    )

    assert reference.returncode == 0
    assert product.returncode == 0
    assert f"{serial}=Revoked (R)" in reference.stdout
    assert product.stdout == f"Serial {serial} is in {py_pki / 'index.txt'}: Revoked (R).\n"


def test_serial_interactive_absent(reference_for, pki_copy):
    reference, product, py_pki = run_both(reference_for, pki_copy, "serial", "abc", batch=False)

    assert reference.returncode == 0
    assert product.returncode == 0
    assert "Serial 0ABC not present in db." in reference.stdout
    assert product.stdout == f"Serial 0ABC is not in {py_pki / 'index.txt'}, so it is unique.\n"


@pytest.mark.parametrize("serial", ["XYZ", "ABCD", "12-3"])
def test_serial_invalid(reference_for, pki_copy, tree_snapshot, serial):
    reference, product, py_pki = run_both(reference_for, pki_copy, "serial", serial)
    before = tree_snapshot(pki_copy(FIXTURE))

    assert reference.returncode == 1
    assert product.returncode == 1
    assert f"Invalid serial number '{serial}'" in product.stderr
    assert tree_snapshot(py_pki) == before


def test_serial_missing(reference_for, pki_copy):
    reference, product, _ = run_both(reference_for, pki_copy, "serial")

    assert reference.returncode == 1
    assert product.returncode == 1
    assert "Missing serial number" in product.stderr


def test_serial_needs_pki(tmp_path):
    result = run_product(tmp_path / "no-pki", "serial", "ab")

    assert result.returncode == 1
    assert "does not exist" in result.stderr


# --- display-dn ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "relative"),
    [
        ("x509", "issued/alice.crt"),
        ("x509", "issued/francois.crt"),
        ("req", "reqs/alice.req"),
        ("req", "reqs/francois.req"),
        ("x509", "ca.crt"),
    ],
)
def test_display_dn_matches_reference(reference_for, pki_copy, form, relative):
    ref_pki = pki_copy(FIXTURE)
    py_pki = pki_copy(FIXTURE)

    reference = reference_for("3.2.7").run(ref_pki, "display-dn", form, str(ref_pki / relative))
    product = run_product(py_pki, "display-dn", form, str(py_pki / relative))

    assert product.returncode == 0, product.stderr
    assert product.stdout == reference.stdout


def test_display_dn_needs_no_pki(pki_copy, tmp_path):
    certificate = pki_copy(FIXTURE) / "issued" / "alice.crt"

    result = run_product(tmp_path / "no-pki", "display-dn", "x509", str(certificate))

    assert result.returncode == 0, result.stderr
    assert "commonName                = alice" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x509",), "usage is 'display-dn x509|req FILE'"),
        (("foo", "issued/alice.crt"), "Invalid format 'foo'"),
        (("x509", "/nonexistent/alice.crt"), "No file at /nonexistent/alice.crt"),
    ],
)
def test_display_dn_bad_arguments(reference_for, pki_copy, tree_snapshot, args, message):
    reference, product, py_pki = run_both(reference_for, pki_copy, "display-dn", *args)
    before = tree_snapshot(pki_copy(FIXTURE))

    assert reference.returncode == 1
    assert product.returncode == 1
    assert message in product.stderr
    assert tree_snapshot(py_pki) == before


@pytest.mark.parametrize(("form", "relative"), [("x509", "reqs/alice.req"), ("req", "issued/alice.crt")])
def test_display_dn_wrong_kind(reference_for, pki_copy, form, relative):
    ref_pki = pki_copy(FIXTURE)
    py_pki = pki_copy(FIXTURE)

    reference = reference_for("3.2.7").run(ref_pki, "display-dn", form, str(ref_pki / relative), check=False)
    product = run_product(py_pki, "display-dn", form, str(py_pki / relative))

    assert reference.returncode == 1
    assert product.returncode == 1
    assert f"Invalid {relative.split('/')[1]}" in product.stderr


# --- show-eku -----------------------------------------------------------------


def reference_eku_type(output):
    """Return the type in 3.2.7's line, such as client or self-signed-undefined."""
    return re.search(r"Extended Key Usage: '(.*)'", output)[1]


@pytest.mark.parametrize(
    ("command", "argument", "expected"),
    [
        ("show-eku", "alice", "client"),
        ("show-eku", "server", "server"),
        ("x509-eku", "carol", "client"),
        ("show-eku", "issued/francois.crt", "client"),
    ],
)
def test_show_eku_known(reference_for, pki_copy, command, argument, expected):
    ref_pki = pki_copy(FIXTURE)
    py_pki = pki_copy(FIXTURE)
    ref_argument = str(ref_pki / argument) if "/" in argument else argument
    py_argument = str(py_pki / argument) if "/" in argument else argument

    reference = reference_for("3.2.7").run(ref_pki, command, ref_argument, check=False)
    product = run_product(py_pki, command, py_argument)

    assert reference.returncode == 0
    assert product.returncode == 0, product.stderr
    assert reference_eku_type(reference.stdout) == expected
    assert f"extended key usage of type '{expected}'" in product.stdout


def test_show_eku_ca_unknown(reference_for, pki_copy):
    ref_pki = pki_copy(FIXTURE)
    py_pki = pki_copy(FIXTURE)

    reference = reference_for("3.2.7").run(ref_pki, "show-eku", str(ref_pki / "ca.crt"), check=False)
    product = run_product(py_pki, "show-eku", str(py_pki / "ca.crt"))

    assert reference.returncode == 1
    assert product.returncode == 1
    assert reference_eku_type(reference.stdout) == "self-signed-undefined"
    assert "'self-signed-undefined' matches no easy-rsa type" in product.stdout


def test_show_eku_silent_prints_nothing(pki_copy):
    result = run_product(pki_copy(FIXTURE), "--silent", "show-eku", "alice")

    assert result.returncode == 0
    assert result.stdout == ""


@pytest.mark.parametrize("args", [("nobody",), ()])
def test_show_eku_missing_certificate(reference_for, pki_copy, tree_snapshot, args):
    reference, product, py_pki = run_both(reference_for, pki_copy, "show-eku", *args)
    before = tree_snapshot(pki_copy(FIXTURE))

    assert reference.returncode == 1
    assert product.returncode == 1
    assert "No certificate at" in product.stderr
    assert tree_snapshot(py_pki) == before


def test_show_eku_request_file(reference_for, pki_copy):
    ref_pki = pki_copy(FIXTURE)
    py_pki = pki_copy(FIXTURE)

    reference = reference_for("3.2.7").run(ref_pki, "show-eku", str(ref_pki / "reqs/alice.req"), check=False)
    product = run_product(py_pki, "show-eku", str(py_pki / "reqs/alice.req"))

    assert reference.returncode == 1
    assert product.returncode == 1
    assert "not a valid PEM certificate" in product.stderr


def write_certificate(path, purposes):
    """Write a self-issued end-entity certificate with this extendedKeyUsage."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eku-test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1000)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize(
    ("purposes", "expected", "code"),
    [
        (("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"), "serverClient", 0),
        (("1.3.6.1.5.5.7.3.3",), "codeSigning", 0),
        (("1.3.6.1.5.5.7.3.4", "1.2.3.4"), "E-mail Protection, 1.2.3.4", 1),
    ],
)
def test_show_eku_crafted(reference_for, pki_copy, tmp_path, purposes, expected, code):
    from cryptography.x509 import ObjectIdentifier

    certificate = tmp_path / "crafted.crt"
    write_certificate(certificate, [ObjectIdentifier(dotted) for dotted in purposes])

    reference = reference_for("3.2.7").run(pki_copy(FIXTURE), "show-eku", str(certificate), check=False)
    product = run_product(pki_copy(FIXTURE), "show-eku", str(certificate))

    assert reference.returncode == code
    assert product.returncode == code
    assert reference_eku_type(reference.stdout).strip("'") == expected
    assert f"'{expected}'" in product.stdout


# --- renewable (easy-rsa 3.1 only) --------------------------------------------

FIXTURE_310 = "v3.1.0-rsa"


def reference_names(result):
    return [line for line in result.stdout.splitlines() if line and not line.startswith("*")]


@pytest.mark.parametrize(
    "window, args",
    [("1200", ("alice",)), ("1200", ("alice", "carol")), ("1200", ("nobody",)), ("30", ("alice",))],
)
def test_renewable_matches_310(reference_for, pki_copy, window, args):
    ref_pki = pki_copy(FIXTURE_310)
    py_pki = pki_copy(FIXTURE_310)

    reference = reference_for("3.1.0").run(ref_pki, f"--renew-days={window}", "renewable", *args, check=False)
    result = run_product(py_pki, f"--renew-days={window}", "renewable", *args)

    assert result.returncode == reference.returncode
    assert result.stdout.split() == reference.stdout.split()


def test_renewable_without_names_lists_all(reference_for, pki_copy):
    """3.1.0 fails here: its empty name pattern is an awk syntax error under mawk."""
    pki = pki_copy(FIXTURE_310)

    reference = reference_for("3.1.0").run(pki, "renewable", check=False)
    result = run_product(pki, "--renew-days=1200", "renewable")

    assert reference.returncode == 1
    assert result.returncode == 0
    assert result.stdout.split() == ["alice", "carol", "server", "backup-server", "server", "dave"]


def test_renewable_matches_exact_names_only(pki_copy):
    pki = pki_copy(FIXTURE_310)

    result = run_product(pki, "--renew-days=1200", "renewable", "serv")

    assert result.returncode == 1
    assert result.stdout == ""


def test_renewable_bad_window(pki_copy, tree_snapshot):
    pki = pki_copy(FIXTURE_310)
    before = tree_snapshot(pki)

    result = run_product(pki, "--renew-days=soon", "renewable")

    assert result.returncode == 1
    assert "Invalid renewal window 'soon'" in result.stderr
    assert tree_snapshot(pki) == before
