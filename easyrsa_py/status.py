"""The certificate status reports: show-expire, show-revoke and show-renew.

Each report reads index.txt once and lists one entry per matching row, as
easy-rsa 3.2.7's read_db() does. Certificate files are read only where the
report needs a value that index.txt lacks: ca.crt for show-expire and the
old certificate of a renewal for show-renew.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from easyrsa_py.certificate import read_certificate
from easyrsa_py.errors import UsageError
from easyrsa_py.index import (
    STATUS_REVOKED,
    IndexDatabase,
    IndexRow,
    parse_openssl_time,
    serial_hex,
)
from easyrsa_py.pki import PKILayout

logger = logging.getLogger(__name__)

REPORT_EXPIRE = "expire"
REPORT_REVOKE = "revoke"
REPORT_RENEW = "renew"

JSON_OPTION = "--json"


@dataclass(frozen=True)
class StatusEntry:
    """One certificate in a status report."""

    name: str  # the commonName, which easy-rsa uses as the file name base
    serial: str  # as index.txt spells it
    status: str  # V, E or R, from index.txt
    expires_at: datetime
    revoked_at: datetime | None = None
    reason: str | None = None
    # The old certificate of a renewal is in renewed/certs_by_serial/, which
    # easy-rsa 3.1.0 to 3.2.7 read but never write. 3.2.7 marks these
    # entries as needing 'rewind-renew', a command it no longer has.
    needs_rewind: bool = False
    is_ca: bool = False


@dataclass(frozen=True)
class StatusRequest:
    """The parsed arguments of a show-* command."""

    name: str | None
    json_output: bool


def parse_status_arguments(command: str, arguments: list[str]) -> StatusRequest:
    """Parse `[NAME] [--json]`. Any other option or a second name raises UsageError."""
    names: list[str] = []
    json_output = False
    for argument in arguments:
        if argument == JSON_OPTION:
            json_output = True
        elif argument.startswith("-"):
            raise UsageError(
                f"Unknown option '{argument}' for '{command}': usage is "
                f"'{command} [NAME] [--json]'. Global options such as --days go before "
                "the command."
            )
        else:
            names.append(argument)
    if len(names) > 1:
        raise UsageError(
            f"Unexpected argument '{names[1]}': '{command}' takes at most one name, "
            f"as in '{command} {names[0]}'."
        )
    if names and not names[0]:
        raise UsageError(
            f"Empty certificate name for '{command}': give a name or none."
        )
    return StatusRequest(names[0] if names else None, json_output)


def common_name(row: IndexRow) -> str:
    """Return the commonName of a row as easy-rsa reads it from the subject.

    easy-rsa takes the text after the first "/CN=" up to the next "/", and
    uses it as the file name base of the certificate.
    """
    _, found, rest = row.subject.partition("/CN=")
    if not found:
        return row.subject
    return _unescape_oneline(rest.partition("/")[0])


_ONELINE_ESCAPE = re.compile(r"(?:\\x[0-9A-F]{2})+")


def _unescape_oneline(text: str) -> str:
    r"""Turn X509_NAME_oneline's \xHH escapes of UTF-8 bytes back into characters.

    `openssl ca` writes a commonName 'jöhn' as 'j\xC3\xB6hn' in index.txt,
    while the certificate's file is issued/jöhn.crt.
    """
    def decode(match: re.Match[str]) -> str:
        data = bytes.fromhex(match.group(0).replace("\\x", ""))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return match.group(0)

    return _ONELINE_ESCAPE.sub(decode, text)


def _file_names(folder: Path) -> set[str]:
    try:
        return set(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return set()


def _rows_named(
    database: IndexDatabase, name: str | None
) -> list[tuple[str, IndexRow]]:
    named = [(common_name(row), row) for row in database.rows]
    if name is None:
        return named
    return [(row_name, row) for row_name, row in named if row_name == name]


def expiring_certificates(
    layout: PKILayout,
    window_days: int,
    name: str | None = None,
    now: datetime | None = None,
) -> list[StatusEntry]:
    """List the V and E rows with a certificate in issued/ that ends within the window.

    A certificate is listed when its end date is at or before now plus
    `window_days`, as `openssl x509 -checkend` decides. The CA comes last
    when it ends within the window too.
    """
    cutoff = (now or datetime.now(UTC)) + timedelta(days=window_days)
    database = IndexDatabase.load(layout.index)
    issued = _file_names(layout.root / "issued")
    entries = []
    for row_name, row in _rows_named(database, name):
        if row.status == STATUS_REVOKED or f"{row_name}.crt" not in issued:
            continue
        # NOTE: the end date comes from the row, not from issued/NAME.crt.
        # They differ only for the old row of a renewal, which easy-rsa
        # reports with the new certificate's date.
        if row.expires_at <= cutoff:
            entries.append(
                StatusEntry(row_name, row.serial, row.status, row.expires_at)
            )
    ca = read_certificate(layout.ca_cert)
    ca_expires_at = parse_openssl_time(ca.not_after_text)
    if ca_expires_at <= cutoff:
        entries.append(
            StatusEntry(
                "ca", serial_hex(ca.serial_number), "V", ca_expires_at, is_ca=True
            )
        )
    return entries


def revoked_certificates(
    layout: PKILayout, name: str | None = None
) -> list[StatusEntry]:
    """List the R rows of index.txt with their revocation date and reason."""
    database = IndexDatabase.load(layout.index)
    return [
        StatusEntry(
            row_name, row.serial, row.status, row.expires_at, row.revoked_at, row.reason
        )
        for row_name, row in _rows_named(database, name)
        if row.status == STATUS_REVOKED
    ]


def renewed_certificates(
    layout: PKILayout, name: str | None = None
) -> list[StatusEntry]:
    """List the old certificates of renewals that are not revoked yet.

    A V or E row is listed when renewed/issued/NAME.crt or the older
    renewed/certs_by_serial/SERIAL.crt contains the certificate with that
    row's serial. The file's serial is checked because the new certificate's
    row has the same name.
    """
    database = IndexDatabase.load(layout.index)
    renewed_by_name = _file_names(layout.root / "renewed" / "issued")
    renewed_by_serial = _file_names(layout.root / "renewed" / "certs_by_serial")
    entries = []
    for row_name, row in _rows_named(database, name):
        if row.status == STATUS_REVOKED:
            continue
        path = None
        if f"{row_name}.crt" in renewed_by_name:
            path = layout.root / "renewed" / "issued" / f"{row_name}.crt"
        if f"{row.serial}.crt" in renewed_by_serial:
            if path is not None:
                # easy-rsa 3.2.7 stops with "Too many certs" here.
                logger.warning(
                    "Found both %s and renewed/certs_by_serial/%s.crt for '%s', so the "
                    "second is listed. Remove the one that is not the old certificate.",
                    path,
                    row.serial,
                    row_name,
                )
            path = layout.root / "renewed" / "certs_by_serial" / f"{row.serial}.crt"
        if path is None:
            continue
        certificate = read_certificate(path)
        if certificate.serial_number != row.serial_number:
            logger.debug(
                "Skipping serial %s: %s has serial %X",
                row.serial,
                path,
                certificate.serial_number,
            )
            continue
        expires_at = parse_openssl_time(certificate.not_after_text)
        needs_rewind = path.parent.name == "certs_by_serial"
        entries.append(
            StatusEntry(
                row_name, row.serial, row.status, expires_at, needs_rewind=needs_rewind
            )
        )
    return entries


def names_in_index(layout: PKILayout) -> set[str]:
    """Return the commonName of every row of index.txt."""
    return {common_name(row) for row in IndexDatabase.load(layout.index).rows}


def _format_time(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_json(entries: list[StatusEntry]) -> str:
    """Return the entries as one JSON list, dates in ISO 8601 UTC."""
    documents = [
        {
            "name": entry.name,
            "serial": entry.serial,
            "status": entry.status,
            "expires": _format_time(entry.expires_at),
            "revoked": _format_time(entry.revoked_at),
            "reason": entry.reason,
            "needs_rewind": entry.needs_rewind,
            "ca": entry.is_ca,
        }
        for entry in entries
    ]
    return json.dumps(documents, indent=2)


def render_line(entry: StatusEntry) -> str:
    """Return one entry as a line of `|`-separated fields, like easy-rsa's lines."""
    if entry.is_ca:
        expires = _text_time(entry.expires_at)
        return f"CA | Serial: {entry.serial} | Expires: {expires} | File: ca.crt"
    fields = [entry.status, f"Serial: {entry.serial}"]
    if entry.revoked_at is not None:
        fields.append(f"Revoked: {_text_time(entry.revoked_at)}")
        fields.append(f"Reason: {entry.reason or 'none given'}")
    else:
        fields.append(f"Expires: {_text_time(entry.expires_at)}")
    fields.append(f"CN: {entry.name}")
    line = " | ".join(fields)
    return f"*** {line}" if entry.needs_rewind else line


def render_text(entries: list[StatusEntry]) -> str:
    """Return one line per entry, or an empty string when there are none."""
    return "\n".join(render_line(entry) for entry in entries)


def report_heading(report: str, window_days: int) -> str:
    """Return the notice printed before a report of every certificate."""
    if report == REPORT_EXPIRE:
        return (
            f"Certificates that expire within {window_days} days (--days), "
            "and the CA if it does:"
        )
    if report == REPORT_REVOKE:
        return "Revoked certificates:"
    return (
        "Certificates that were renewed and are not revoked yet. Lines marked *** "
        "are in renewed/certs_by_serial/, where easy-rsa 3.0 kept them: move such a file "
        "to renewed/issued/NAME.crt before revoking it with 'revoke-renewed':"
    )
