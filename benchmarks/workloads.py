"""Build the PKIs that the benchmarks run on.

- ``write_large_index``: an easy-rsa index.txt with many rows, part of them
  revoked, in the layout ``openssl ca`` writes.
- ``copy_fixture_pki``: a copy of a PKI from ``pki_fixtures/`` with the
  modes and empty folders that git does not keep.
- ``build_client_pki``: a small PKI made by the real easy-rsa script.
- ``build_ca_pki``: a PKI with only a CA, made by the real easy-rsa script.
- ``write_issued_certificates``: an issued/NAME.crt for each V row of an
  index.txt, so that show-expire has the files it checks.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from reference import run_reference

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = REPO_ROOT / "pki_fixtures"

# easy-rsa runs under umask 077, and git stores neither of these modes.
PKI_DIR_MODE = 0o700
PKI_FILE_MODE = 0o600

# Share of revoked rows per reason, as written by `easyrsa revoke NAME
# [REASON]`. None is a revocation without a reason, which easy-rsa writes as
# a bare date. These are the reasons easy-rsa 3.2.7 accepts. The weights are
# an assumed mix, not taken from a real CA.
REASON_WEIGHTS: tuple[tuple[str | None, int], ...] = (
    (None, 30),
    ("keyCompromise", 20),
    ("superseded", 18),
    ("cessationOfOperation", 15),
    ("affiliationChanged", 8),
    ("unspecified", 5),
    ("certificateHold", 3),
    ("CACompromise", 1),
)

SERIAL_BITS = 128
# Revocations fall in this window, and expiry dates in the one after it.
REVOCATION_START = datetime(2024, 1, 1, tzinfo=UTC)
REVOCATION_SPAN = timedelta(days=700)
EXPIRY_START = datetime(2026, 1, 1, tzinfo=UTC)
EXPIRY_SPAN = timedelta(days=4 * 365)
# The CA key types that write_issued_certificates can sign with.
CA_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)


@dataclass(frozen=True)
class IndexSummary:
    """Row counts and size of an index.txt written by ``write_large_index``."""

    rows: int
    revoked: int
    reasons: dict[str, int]
    size_bytes: int


def openssl_time(when: datetime) -> str:
    """Format ``when`` as OpenSSL's index.txt UTCTime, YYMMDDHHMMSSZ."""
    return when.strftime("%y%m%d%H%M%SZ")


def distinct_times(
    rng: random.Random, count: int, start: datetime, span: timedelta
) -> list[datetime]:
    """Pick ``count`` distinct whole-second times in ``[start, start+span)``."""
    seconds = rng.sample(range(int(span.total_seconds())), count)
    return [start + timedelta(seconds=offset) for offset in seconds]


def distinct_serials(rng: random.Random, count: int) -> list[str]:
    """Pick ``count`` distinct random serials, in OpenSSL's even-length hex."""
    serials: set[int] = set()
    while len(serials) < count:
        serials.add(rng.getrandbits(SERIAL_BITS) or 1)
    texts = []
    for number in serials:
        text = f"{number:X}"
        texts.append(text if len(text) % 2 == 0 else "0" + text)
    return texts


def pick_reasons(rng: random.Random, count: int) -> list[str | None]:
    reasons = [reason for reason, _ in REASON_WEIGHTS]
    weights = [weight for _, weight in REASON_WEIGHTS]
    return rng.choices(reasons, weights=weights, k=count)


def index_lines(rows: int, revoked: int, seed: int) -> Iterator[tuple[str, str | None]]:
    """Yield ``(line, reason)`` for each row, with reason None for V rows.

    Revoked rows are spread through the file at random, as they would be
    in a CA that revokes certificates over the years.
    """
    rng = random.Random(seed)
    serials = distinct_serials(rng, rows)
    expiries = distinct_times(rng, rows, EXPIRY_START, EXPIRY_SPAN)
    revocations = iter(distinct_times(rng, revoked, REVOCATION_START, REVOCATION_SPAN))
    reasons = iter(pick_reasons(rng, revoked))
    revoked_rows = set(rng.sample(range(rows), revoked))

    for number in range(rows):
        expiry = openssl_time(expiries[number])
        subject = f"/CN=client-{number + 1:06d}"
        if number not in revoked_rows:
            yield f"V\t{expiry}\t\t{serials[number]}\tunknown\t{subject}\n", None
            continue
        reason = next(reasons)
        revocation = openssl_time(next(revocations))
        if reason is not None:
            revocation += "," + reason
        line = f"R\t{expiry}\t{revocation}\t{serials[number]}\tunknown\t{subject}\n"
        yield line, reason or "(none)"


def write_large_index(path: Path, rows: int, revoked: int, seed: int) -> IndexSummary:
    """Write an index.txt of ``rows`` rows, ``revoked`` of them revoked."""
    if not 0 <= revoked <= rows:
        raise ValueError(f"revoked rows ({revoked}) must be between 0 and {rows}")

    reasons: dict[str, int] = {}
    with path.open("w", encoding="ascii", newline="\n") as output:
        for line, reason in index_lines(rows, revoked, seed):
            output.write(line)
            if reason is not None:
                reasons[reason] = reasons.get(reason, 0) + 1
    return IndexSummary(rows, revoked, reasons, path.stat().st_size)


def restore_pki_layout(pki: Path, empty_dirs: list[str]) -> None:
    """Recreate the folders and modes that a git checkout loses."""
    for relative in empty_dirs:
        (pki / relative).mkdir(parents=True, exist_ok=True)
    for root, _, names in os.walk(pki):
        os.chmod(root, PKI_DIR_MODE)
        for name in names:
            os.chmod(os.path.join(root, name), PKI_FILE_MODE)


def copy_fixture_pki(name: str, target: Path) -> Path:
    """Copy ``pki_fixtures/NAME/pki`` to ``target`` and return ``target``."""
    source = FIXTURES_DIR / name
    manifest = json.loads((source / "fixture.json").read_text(encoding="utf-8"))
    shutil.copytree(source / "pki", target, symlinks=True)
    restore_pki_layout(target, manifest.get("empty_dirs", []))
    return target


def copy_pki(source: Path, target: Path) -> Path:
    """Copy a prepared PKI, keeping modes, and return ``target``."""
    shutil.copytree(source, target, symlinks=True)
    return target


def client_names(count: int) -> list[str]:
    return [f"client{number:02d}" for number in range(1, count + 1)]


def build_client_pki(version: str, pki: Path, clients: int) -> list[str]:
    """Build a PKI with the real easy-rsa: a CA and ``clients`` clients.

    The CA and client keys have no passphrase. Returns the client names.
    """
    names = client_names(clients)
    run_reference(version, pki, "init-pki")
    run_reference(version, pki, "--req-cn=Benchmark CA", "build-ca", "nopass")
    for name in names:
        run_reference(version, pki, "build-client-full", name, "nopass")
    logger.info("Built a %d-client PKI with easy-rsa %s in %s", clients, version, pki)
    return names


def build_ca_pki(version: str, pki: Path, *options: str) -> Path:
    """Build a PKI with the real easy-rsa that contains only a CA without passphrase.

    ``options`` are global options placed before each command, such as
    ``--use-algo=ec``. Returns ``pki``.
    """
    run_reference(version, pki, "init-pki")
    run_reference(version, pki, *options, "--req-cn=Benchmark CA", "build-ca", "nopass")
    logger.info(
        "Built a CA with easy-rsa %s (%s) in %s", version, " ".join(options), pki
    )
    return pki


def write_issued_certificates(pki: Path) -> int:
    """Write issued/NAME.crt for every V row of ``pki``/index.txt and return the count.

    Each certificate has the row's serial, commonName and end date, and is
    signed by the PKI's CA key, which must have no passphrase. All of them
    share one P-256 public key, because show-expire reads only the dates.
    """
    ca_certificate = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key(
        (pki / "private" / "ca.key").read_bytes(), password=None
    )
    if not isinstance(ca_key, CA_KEY_TYPES):
        raise TypeError(f"{pki / 'private' / 'ca.key'} is not an RSA or EC key")
    public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    issued = pki / "issued"
    count = 0
    for line in (pki / "index.txt").read_text(encoding="ascii").splitlines():
        status, expiry, _, serial, _, subject = line.split("\t")
        if status != "V":
            continue
        name = subject.partition("/CN=")[2]
        not_after = datetime.strptime(expiry, "%y%m%d%H%M%SZ").replace(tzinfo=UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_certificate.subject)
            .public_key(public_key)
            .serial_number(int(serial, 16))
            .not_valid_before(REVOCATION_START)
            .not_valid_after(not_after)
            .sign(ca_key, hashes.SHA256())
        )
        path = issued / f"{name}.crt"
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        os.chmod(path, PKI_FILE_MODE)
        count += 1
    return count
