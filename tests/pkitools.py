"""Helpers for tests that run easyrsa_py beside the real easy-rsa on one PKI.

- ``run_product(pki, *args, ...)``: run ``python -m easyrsa_py`` in the same
  clean environment that ``reference.run_reference`` gives the real script.
- ``read_index(pki)``, ``normalized_rows(rows)``: index.txt rows as field
  lists, and the same rows with each revocation date replaced by a marker.
- ``assert_recent(date_text)``: an index.txt or CRL date is within a minute
  of now.
- ``crl_summary(path)``: the parts of a CRL that must match between tools.
- ``openssl_crl_verify(pki)``: ``openssl crl -CAfile ca.crt -noout``.
- ``tree_modes(pki)``, ``tree_contents(pki)``: whole-tree views for diffs.
- ``append_index_rows(pki, rows)``: hand-edit index.txt.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from reference import REPO_ROOT, reference_env, tree_snapshot

# Temporary names either tool may leave while it runs; none survives a run.
TEMP_PATTERNS = (".*.tmp", "*.tmp", "temp.*", "easy-rsa-*", "????????")
# easy-rsa 3.1.0 rewrites safessl-easyrsa.cnf with the PKI's own path on
# every run, so the file differs between two copies of one PKI.
SAFESSL_CNF = "safessl-easyrsa.cnf"
REVOCATION_DATE_MARKER = "<revocation date>"
RECENT = timedelta(minutes=1)


def product_env(
    pki: Path, home: Path, *, batch: bool = True, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Build the clean environment for one easyrsa_py run."""
    run_env = reference_env(Path(pki).resolve(), home, batch, env)
    run_env["PYTHONPATH"] = str(REPO_ROOT)
    return run_env


def product_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "easyrsa_py", *args]


def run_product(
    pki: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    batch: bool = True,
    cwd: Path | None = None,
    prefix: Sequence[str] = (),
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run easyrsa_py on ``pki`` as ``run_reference`` runs the real script.

    Without ``cwd`` the command runs in a fresh empty folder, so no vars
    file or ``pki/`` of the caller is picked up. ``env`` adds or overrides
    variables; a value of None removes one (for example EASYRSA_PKI).
    ``prefix`` is prepended to the command, as in ``run_reference``.
    """
    with tempfile.TemporaryDirectory(prefix="easyrsa-py-cwd-") as scratch:
        work = Path(cwd) if cwd is not None else Path(scratch)
        overrides = {k: v for k, v in (env or {}).items() if v is not None}
        run_env = product_env(pki, Path(scratch), batch=batch, env=overrides)
        for name, value in (env or {}).items():
            if value is None:
                run_env.pop(name, None)
        return subprocess.run(
            [*prefix, *product_command(*args)],
            cwd=work,
            env=run_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


# --- index.txt ---------------------------------------------------------------


def read_index(pki: Path, name: str = "index.txt") -> list[list[str]]:
    """Return the rows of an index file as lists of six fields."""
    text = (pki / name).read_bytes().decode("utf-8", "surrogateescape")
    return [line.split("\t") for line in text.splitlines()]


def revoked_serials(pki: Path) -> set[int]:
    """Return the serials of the `R` rows of the PKI's index.txt."""
    return {int(row[3], 16) for row in read_index(pki) if row[0] == "R"}


def crl_serials(pki: Path, name: str = "crl.pem") -> set[int]:
    """Return the serials that the PKI's CRL lists."""
    return {entry.serial_number for entry in load_crl(pki / name)}


def normalized_rows(rows: Iterable[Sequence[str]]) -> list[list[str]]:
    """Replace the date in each revocation field by a marker, keeping the rest."""
    normalized = []
    for row in rows:
        fields = list(row)
        if fields[2]:
            _, comma, rest = fields[2].partition(",")
            fields[2] = REVOCATION_DATE_MARKER + comma + rest
        normalized.append(fields)
    return normalized


def revocation_dates(rows: Iterable[Sequence[str]]) -> dict[str, str]:
    """Map each revoked serial to the date text of its revocation field."""
    return {row[3]: row[2].partition(",")[0] for row in rows if row[2]}


def parse_index_time(text: str) -> datetime:
    """Parse a 13-character UTCTime or 15-character GeneralizedTime text."""
    if len(text) == 13:
        parsed = datetime.strptime(text, "%y%m%d%H%M%SZ")
    else:
        parsed = datetime.strptime(text, "%Y%m%d%H%M%SZ")
    return parsed.replace(tzinfo=timezone.utc)


def assert_recent(when: str | datetime, now: datetime | None = None) -> None:
    moment = parse_index_time(when) if isinstance(when, str) else when
    now = now or datetime.now(timezone.utc)
    assert abs(now - moment) <= RECENT, f"{when} is not within a minute of {now}"


def append_index_rows(pki: Path, rows: Iterable[Sequence[str]]) -> None:
    """Append rows to index.txt, as an operator editing it by hand would."""
    lines = "".join("\t".join(row) + "\n" for row in rows)
    with open(pki / "index.txt", "a", encoding="utf-8") as handle:
        handle.write(lines)


# --- CRLs --------------------------------------------------------------------


def _extension_value(extension: x509.Extension[Any]) -> bytes:
    value = extension.value
    if isinstance(value, x509.UnrecognizedExtension):
        return value.value
    return value.public_bytes()


def extension_list(extensions: x509.Extensions) -> list[tuple[str, bool, bytes]]:
    return [
        (ext.oid.dotted_string, ext.critical, _extension_value(ext))
        for ext in extensions
    ]


@dataclass(frozen=True)
class CRLSummary:
    """The parts of a CRL that two tools must agree on, dates set apart."""

    issuer: bytes
    version: int
    signature_algorithm: str
    lifetime: timedelta
    last_update: datetime
    extensions: list[tuple[str, bool, bytes]]
    # (serial, extensions) in CRL order; dates are in `revocation_dates`.
    entries: list[tuple[int, list[tuple[str, bool, bytes]]]]
    revocation_dates: dict[int, datetime]


def load_crl(path: Path) -> x509.CertificateRevocationList:
    data = path.read_bytes()
    if data.startswith(b"-----"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def crl_summary(path: Path) -> CRLSummary:
    crl = load_crl(path)
    entries = [(entry.serial_number, extension_list(entry.extensions)) for entry in crl]
    # The CRL version is the first INTEGER of tbsCertList, when present.
    tbs = crl.tbs_certlist_bytes
    version = _crl_version(tbs)
    next_update = crl.next_update_utc
    assert next_update is not None, f"{path} has no nextUpdate"
    return CRLSummary(
        issuer=crl.issuer.public_bytes(),
        version=version,
        signature_algorithm=crl.signature_algorithm_oid.dotted_string,
        lifetime=next_update - crl.last_update_utc,
        last_update=crl.last_update_utc,
        extensions=extension_list(crl.extensions),
        entries=entries,
        revocation_dates={entry.serial_number: entry.revocation_date_utc for entry in crl},
    )


def _crl_version(tbs: bytes) -> int:
    """Return the version field of tbsCertList: 1 for v2, 0 when absent (v1)."""
    offset = 1
    length = tbs[offset]
    offset += 1 + (length & 0x7F if length & 0x80 else 0)
    if tbs[offset] == 0x02:
        return tbs[offset + 2]
    return 0


def openssl_crl_verify(pki: Path, crl: str = "crl.pem") -> subprocess.CompletedProcess[str]:
    """Run `openssl crl -CAfile ca.crt -noout` on a CRL of the PKI."""
    return subprocess.run(
        ["openssl", "crl", "-in", str(pki / crl), "-inform", "PEM" if crl.endswith(".pem") else "DER",
         "-CAfile", str(pki / "ca.crt"), "-noout"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def crl_der_matches_pem(pki: Path) -> bool:
    pem = x509.load_pem_x509_crl((pki / "crl.pem").read_bytes())
    return pem.public_bytes(serialization.Encoding.DER) == (pki / "crl.der").read_bytes()


# --- trees -------------------------------------------------------------------


def tree_modes(pki: Path, exclude: Iterable[str] = ()) -> dict[str, int]:
    """Map each path under ``pki`` to its mode, leaving out temporary files."""
    patterns = (*TEMP_PATTERNS, *exclude)
    return {path: mode for path, (mode, _) in tree_snapshot(pki, patterns).items()}


def tree_contents(pki: Path, exclude: Iterable[str] = ()) -> dict[str, str | None]:
    """Map each path under ``pki`` to its SHA-256, leaving out temporary files."""
    patterns = (*TEMP_PATTERNS, *exclude)
    return {path: digest for path, (_, digest) in tree_snapshot(pki, patterns).items()}


def pki_state(pki: Path) -> dict[str, tuple[int, str | None]]:
    """Snapshot every file of the PKI, temporary ones included, for "unchanged" checks."""
    return tree_snapshot(pki)


def serial_of(certificate_path: Path) -> str:
    """Return a certificate's serial as OpenSSL writes it in index.txt."""
    certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
    text = f"{certificate.serial_number:X}"
    return "0" + text if len(text) % 2 else text

