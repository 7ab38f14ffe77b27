"""Whole-database operations: generating the CRL and marking expired rows.

Both follow `openssl ca`: it loads and checks the CA key and certificate
before touching the database, so easyrsa_py does too, asking for the CA
passphrase at the same point as easy-rsa.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from easyrsa_py import files
from easyrsa_py.crl import SignedCRL, build_crl
from easyrsa_py.index import IndexDatabase, parse_openssl_time, read_revocations
from easyrsa_py.pki import PKILayout, load_ca_certificate, load_ca_key

logger = logging.getLogger(__name__)


def generate_crl(
    layout: PKILayout, *, passin: str | None, digest: str, days: int, now: datetime | None = None
) -> SignedCRL:
    """Build a CRL from index.txt and write crl.pem and crl.der.

    Each file is replaced atomically and keeps its mode and owner, so an
    OpenVPN server that reads crl.pem never sees a partial file or loses
    read access.
    """
    for path in (layout.crl_pem, layout.crl_der):
        files.resolve_target(path)
    ca_cert = load_ca_certificate(layout)
    ca_key = load_ca_key(layout, passin, ca_cert)
    serials, revocations = read_revocations(layout.index)
    crl = build_crl(ca_cert, ca_key, serials, revocations, digest=digest, days=days, now=now)
    files.atomic_write_all([(layout.crl_pem, crl.pem, None), (layout.crl_der, crl.der, None)])
    return crl


@dataclass(frozen=True)
class UpdateResult:
    expired_serials: list[str]


def update_database(layout: PKILayout, *, passin: str | None, now: datetime | None = None) -> UpdateResult:
    """Mark every valid row whose expiry date has passed as expired (`E`).

    Like `openssl ca -updatedb`, the files are rewritten (with .old
    backups) only when at least one row changed.
    """
    ca_cert = load_ca_certificate(layout)
    load_ca_key(layout, passin, ca_cert)
    now = now or datetime.now(UTC)
    database = IndexDatabase.load(layout.index)
    expired = []
    for row in list(database.rows):
        if row.status == "V" and parse_openssl_time(row.expires) <= now:
            database.replace(row.serial_number, row.mark_expired())
            expired.append(row.serial)
    if expired:
        files.write_with_backup(layout.index, database.to_bytes())
        if layout.index_attr.is_file():
            files.write_with_backup(layout.index_attr, layout.index_attr.read_bytes())
    logger.info("update-db marked %d rows expired", len(expired))
    return UpdateResult(expired)
