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
