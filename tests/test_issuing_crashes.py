"""sign-req killed or out of disk space at each write step.

A killed run may leave a row without its certificate file, as `openssl ca`
can, but never a certificate file without its index.txt row. A full disk
before the first rename leaves the PKI as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from issuing_tools import pem_part
from pkitools import pki_state, read_index, run_product

# sign-req renames eight files: three .old copies, index.txt,
# index.txt.attr, serial, the certs_by_serial copy and issued/NAME.crt.
RENAMES = 8


def prepared_pki(pki_copy) -> Path:
    pki = pki_copy("v3.2.7-rsa")
    (pki / "reqs" / "crash.req").write_bytes((pki / "reqs" / "alice.req").read_bytes())
    return pki


def certificate_files(pki: Path) -> list[Path]:
    issued = [pki / "issued" / "crash.crt"]
    by_serial = sorted((pki / "certs_by_serial").glob("*.pem"))
    return [path for path in issued + by_serial if path.is_file()]


@pytest.mark.parametrize("count", range(1, RENAMES + 1))
def test_killed_sign_req_keeps_rows(pki_copy, count: int) -> None:
    pki = prepared_pki(pki_copy)
    fault = {"EASYRSA_PY_FAULT": f"write-rename-before:{count}:kill"}
    result = run_product(pki, "sign-req", "client", "crash", env=fault)
    assert result.returncode != 0

    serials = {row[3] for row in read_index(pki)}
    for path in certificate_files(pki):
        certificate = x509.load_pem_x509_certificate(pem_part(path.read_bytes()))
        text = f"{certificate.serial_number:X}"
        assert text.zfill(len(text) + len(text) % 2) in serials, path


@pytest.mark.parametrize("point", ["write-temp-before", "write-temp-after"])
def test_full_disk_leaves_pki_unchanged(pki_copy, point: str) -> None:
    pki = prepared_pki(pki_copy)
    before = pki_state(pki)
    fault = {"EASYRSA_PY_FAULT": f"{point}:3:enospc"}
    result = run_product(pki, "sign-req", "client", "crash", env=fault)

    assert result.returncode == 1
    assert "No space left" in result.stderr
    assert pki_state(pki) == before
