"""revoke, revoke-issued, revoke-expired and revoke-renewed.

The sequence follows easy-rsa 3.2.7: check the certificate and every file
the revocation will create, confirm, mark the row `R` in index.txt the way
`openssl ca -revoke` does, then move the certificate (and, for an issued
certificate, its key and request) into `revoked/*_by_serial/` and delete
its PKCS and inline files.

The database is written before any file moves, so an interruption can
never leave a certificate that looks revoked on disk but is valid in the
database. A later run that finds the row already `R` while the certificate
is still in place finishes the moves instead of stopping, as easy-rsa
would, with "Already revoked".
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from easyrsa_py import files, journal
from easyrsa_py.certificate import CertificateFile, check_request, read_certificate
from easyrsa_py.console import Console
from easyrsa_py.display import multiline_dn
from easyrsa_py.errors import (
    CertificateNotFound,
    EasyRSAError,
    FileFormatError,
    RevocationConflict,
    UsageError,
)
from easyrsa_py.index import (
    IndexDatabase,
    IndexRow,
    format_attr,
    parse_attr,
    serial_hex,
)
from easyrsa_py.journal import RedoStep
from easyrsa_py.names import oneline_from_der
from easyrsa_py.pki import PKILayout, load_ca_certificate, load_ca_key

logger = logging.getLogger(__name__)

# easy-rsa 3.2.7 accepts each CRL reason by a two-letter code or by a
# prefix of its name (3.1.0 accepts only the full names).
_REASON_PATTERNS = (
    ("unspecified", ("us",), ("uns",)),
    ("keyCompromise", ("kc",), ("key",)),
    ("CACompromise", ("cc",), ("ca", "cA", "Ca", "CA")),
    ("affiliationChanged", ("ac",), ("aff",)),
    ("superseded", ("ss",), ("sup",)),
    ("cessationOfOperation", ("co",), ("ces",)),
    ("certificateHold", ("ch",), ("cer",)),
)

# The folder each kind of revocation reads the certificate from, and whether
# it also moves the key and request (only a current, issued certificate has
# them).
_SOURCES = {
    "issued": ("issued", True),
    "expired": ("expired", False),
    "renewed": ("renewed/issued", False),
}


def normalize_reason(word: str) -> str:
    """Return the CRL reason name for an easy-rsa reason word or abbreviation."""
    for reason, codes, prefixes in _REASON_PATTERNS:
        if word in codes or word.startswith(prefixes):
            return reason
    raise UsageError(
        f"Invalid revocation reason '{word}'. Use one of: "
        + ", ".join(reason for reason, _, _ in _REASON_PATTERNS)
        + " (or its abbreviation; see 'help revoke')."
    )


def is_spelled_out_reason(word: str) -> bool:
    """Return whether `word` is a reason's full name or two-letter code, not just a prefix match."""
    return any(word == reason or word in codes for reason, codes, _ in _REASON_PATTERNS)


def reason_or_none(word: str) -> str | None:
    """Return the CRL reason for `word`, or None when it is not a reason word."""
    try:
        return normalize_reason(word)
    except UsageError:
        return None


def check_file_name_base(name: str) -> None:
    """Reject names that would address a file outside the PKI folder."""
    if not name or name in (".", "..") or "/" in name or "\0" in name or "\n" in name:
        raise UsageError(
            f"Invalid certificate name {name!r}: a name is a file name base such as 'alice', "
            "without '/', NUL or newline characters."
        )


@dataclass
class RevocationPlan:
    """Everything a revocation will read, change, move and delete."""

    command: str
    name: str
    reason: str | None
    certificate_path: Path
    certificate: CertificateFile
    serial: str
    database: IndexDatabase
    attributes: dict[str, str]
    already_revoked: bool
    moves: list[tuple[Path, Path]] = field(default_factory=list)
    deletions: list[Path] = field(default_factory=list)


def _is_self_signed_by_easyrsa(certificate: CertificateFile, path: Path) -> bool:
    # easy-rsa's self-sign commands write the certificate's own serial into
    # authorityKeyIdentifier; easy-rsa refuses to revoke such certificates.
    try:
        return certificate.authority_serial_number() == certificate.serial_number
    except (ValueError, IndexError):
        raise FileFormatError(path, None, "its authorityKeyIdentifier extension is malformed.") from None


def _check_conflicts(layout: PKILayout, command: str, name: str, batch: bool) -> None:
    if command != "revoke" or not layout.issued_cert(name).is_file():
        return
    others = [
        f"[{label}] {path}"
        for label, path in (("Expired", layout.expired_cert(name)), ("Renewed", layout.renewed_cert(name)))
        if path.is_file()
    ]
    if others and not batch:
        listing = "\n".join(others)
        raise RevocationConflict(
            f"More than one certificate named '{name}' exists:\n[Issued] {layout.issued_cert(name)}\n"
            f"{listing}\n\nChoose which one to revoke: 'revoke-issued', 'revoke-expired' "
            "or 'revoke-renewed'. See 'help revoke'."
        )


def _check_request(path: Path) -> None:
    if path.is_file():
        check_request(path)


def plan_revocation(
    layout: PKILayout,
    command: str,
    kind: str,
    name: str,
    reason: str | None,
    batch: bool,
    database: IndexDatabase | None = None,
) -> RevocationPlan:
    """Check everything a revocation needs and list the file changes, changing nothing.

    Several revocations in one run share `database`, so index.txt is read
    and written once.
    """
    check_file_name_base(name)
    folder, moves_key_and_request = _SOURCES[kind]
    cert_path = layout.root / folder / f"{name}.crt"
    if not cert_path.is_file():
        raise CertificateNotFound(
            cert_path,
            f"Cannot revoke '{name}': no certificate at {cert_path}. "
            "Check the name, or use revoke-expired or revoke-renewed for older certificates."
            + (" Options go before the command, as in 'easyrsa --batch revoke NAME'." if name.startswith("-") else ""),
        )
    _check_conflicts(layout, command, name, batch)
    certificate = read_certificate(cert_path)
    if _is_self_signed_by_easyrsa(certificate, cert_path):
        raise RevocationConflict(f"Cannot {command} {cert_path}: it is a self-signed certificate.")
    if moves_key_and_request:
        _check_request(layout.request(name))

    serial = serial_hex(certificate.serial_number)
    if database is None:
        database = IndexDatabase.load(layout.index)
    row = database.find(certificate.serial_number)
    plan = RevocationPlan(
        command, name, reason, cert_path, certificate, serial, database,
        attributes=_read_attributes(layout),
        already_revoked=row is not None and row.status == "R",
    )
    if moves_key_and_request:
        key_source, request_source = layout.private_key(name), layout.request(name)
    else:
        # easy-rsa 3.1.0's renew moved the key and request to renewed/private
        # and renewed/reqs; 3.2.7 leaves them behind, 3.1.0 moved them too.
        key_source = layout.root / "renewed" / "private" / f"{name}.key"
        request_source = layout.root / "renewed" / "reqs" / f"{name}.req"
    # The certificate moves last: while it is still in place, running the
    # command again finishes an interrupted revocation.
    candidates = [
        ("request", request_source, layout.revoked_request(serial)),
        ("private key", key_source, layout.revoked_key(serial)),
        ("certificate", cert_path, layout.revoked_cert(serial)),
    ]
    for label, source, target in candidates:
        if _plan_move(plan, label, source, target):
            plan.moves.append((source, target))
    plan.deletions = _files_to_delete(layout, kind, name)
    _check_writable(layout, plan)
    return plan


def _plan_move(plan: RevocationPlan, label: str, source: Path, target: Path) -> bool:
    """Return whether `source` must move to `target`, or raise on a conflict."""
    source_present = source.is_file()
    if not (target.exists() or target.is_symlink()):
        return source_present
    if plan.already_revoked and not source_present:
        return False  # moved by the interrupted revocation this run finishes
    raise RevocationConflict(
        f"Cannot revoke '{plan.name}': the {label} {target} already exists and would be "
        "overwritten. Serial numbers must be unique; move that file away first."
    )


def _read_attributes(layout: PKILayout) -> dict[str, str]:
    attributes = {"unique_subject": "no"}
    path = layout.index_attr
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise FileFormatError(path, None, "not a regular file; expected 'unique_subject = no'.")
        attributes.update(parse_attr(path.read_bytes(), path))
    return _normalized_attributes(attributes)


def _writable_folder(path: Path) -> Path | None:
    """Return the folder that must be writable to create or change `path`, or None if it is."""
    folder = path
    while not folder.exists():
        folder = folder.parent
    if os.access(folder, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
        return None
    return folder


def _check_writable(layout: PKILayout, plan: RevocationPlan) -> None:
    """Raise before any change if a folder the revocation writes to is read-only."""
    folders = {layout.root, layout.revoked_dir / "certs_by_serial"}
    folders.update(layout.revoked_dir / sub for sub in ("private_by_serial", "reqs_by_serial"))
    for source, target in plan.moves:
        folders.update((source.parent, target.parent))
    folders.update(path.parent for path in plan.deletions)
    for folder in sorted(folders):
        blocked = _writable_folder(folder)
        if blocked is not None:
            raise EasyRSAError(
                f"Cannot revoke '{plan.name}': the folder {blocked} is not writable, so the "
                "revocation could not be completed. Fix its permissions and run the command "
                "again; nothing was changed."
            )


def _files_to_delete(layout: PKILayout, kind: str, name: str) -> list[Path]:
    # easy-rsa 3.2.7 deletes the PKCS and inline files of NAME whatever kind
    # it revokes, which destroys the exports of a newer certificate of the
    # same name when revoking an expired or renewed one. Keep them then.
    if kind != "issued" and layout.issued_cert(name).is_file():
        return []
    candidates = layout.pkcs_files(name) + list(layout.inline_files(name))
    return [path for path in candidates if path.is_file()]


def confirm_revocation(console: Console, plan: RevocationPlan) -> None:
    moved = "\n".join(f"* {source}" for source, _ in plan.moves)
    deleted = "\n".join(f"* {path}" for path in plan.deletions) or "(none)"
    console.warn(
        f"Revoking '{plan.name}' cannot be undone.\n\n"
        f"Files to move to the 'revoked' folder:\n{moved}\n\n"
        f"Files to delete (PKCS exports and inline files):\n{deleted}"
    )
    console.confirm(
        # easy-rsa passes the prompt with two leading spaces and its confirm
        # step indents by two more, so scripts see four.
        "  Continue with revocation: ",
        "yes",
        "\nThis revokes the certificate with this subject:\n\n"
        f"{multiline_dn(plan.certificate.subject_der)}\n"
        f"    serial-number             = {plan.serial}\n\n"
        f"    Reason: {plan.reason or 'None given'}",
    )


def _updated_row(database: IndexDatabase, plan: RevocationPlan, now: datetime) -> IndexRow | None:
    """Return the revoked row to store, or None when the row is already revoked."""
    certificate = plan.certificate
    subject = oneline_from_der(certificate.subject_der) or plan.serial
    row = database.find(certificate.serial_number)
    if row is None:
        # As `openssl ca -revoke` does for a certificate missing from the database.
        row = IndexRow("V", certificate.not_after_text, "", plan.serial, "unknown", subject)
        logger.warning("serial %s was not in index.txt; adding it as revoked", plan.serial)
    elif row.subject != subject:
        raise RevocationConflict(
            f"Cannot revoke '{plan.name}': index.txt lists serial {plan.serial} with subject "
            f"{row.subject}, but {plan.certificate_path} has subject {subject}. "
            "The database and the certificate do not belong together."
        )
    if row.status == "R":
        return None
    return row.revoke(now, plan.reason)


def _normalized_attributes(attributes: dict[str, str]) -> dict[str, str]:
    # OpenSSL rewrites unique_subject as a plain yes or no.
    value = attributes.get("unique_subject", "no").strip().lower()
    attributes["unique_subject"] = "yes" if value in ("y", "yes", "t", "true", "1") else "no"
    return attributes


def apply_revocation(layout: PKILayout, plan: RevocationPlan, now: datetime | None = None) -> bool:
    """Record one revocation in index.txt and move its files.

    Returns False when the database already had the row revoked, so only the
    file moves of an interrupted revocation were finished.
    """
    return apply_revocations(layout, [plan], now)[0]


def apply_revocations(
    layout: PKILayout, plans: list[RevocationPlan], now: datetime | None = None
) -> list[bool]:
    """Record the revocations in index.txt with one write, then move each one's files.

    Returns, for each plan, whether its row was revoked now (False: it was
    already revoked and only the moves were left).
    """
    now = now or datetime.now(UTC)
    changed = []
    for plan in plans:
        database = plan.database
        is_new = database.find(plan.certificate.serial_number) is None
        row = _updated_row(database, plan, now)
        if row is not None:
            if is_new:
                database.append(row)
            else:
                database.replace(row.serial_number, row)
        changed.append(row is not None)
    for folder in ("certs_by_serial", "private_by_serial", "reqs_by_serial"):
        files.make_dirs(layout.revoked_dir / folder)
    prepared: list[tuple[str, Path]] = []
    if any(changed):
        # index.txt.attr first, so index.txt, the file that revokes, is renamed last.
        writes = [(layout.index_attr, format_attr(plans[0].attributes)), (layout.index, plans[0].database.to_bytes())]
        prepared = files.prepare_writes(files.with_backups(writes))
        if not journal.covers([target for _, target in prepared]):
            # index.txt links outside the PKI, where a redo file does not reach,
            # so it is written now, before the moves go forward.
            files.rename_prepared(prepared)
            prepared = []
    # From here the revocation is final: undoing it once index.txt is in
    # place could let a revoked certificate back in, after a CRL listed it.
    # So a failure or a kill leaves the renames and moves for the next run.
    steps = [RedoStep(Path(temp_name), target, replace=True) for temp_name, target in prepared]
    steps.extend(step for plan in plans for step in _redo_steps(plan))
    try:
        journal.go_forward(steps)
    except BaseException:
        files.discard_prepared(prepared)
        raise
    files.rename_prepared(prepared)
    for plan in plans:
        _move_files(plan)
    return changed


def _redo_steps(plan: RevocationPlan) -> list[RedoStep]:
    """List the moves and deletions of _move_files, in its order, for the undo journal."""
    *first_moves, certificate_move = plan.moves
    steps = [RedoStep(source, target) for source, target in first_moves]
    steps.extend(RedoStep(path) for path in plan.deletions)
    steps.append(RedoStep(*certificate_move))
    return steps


def _move_files(plan: RevocationPlan) -> None:
    *first_moves, certificate_move = plan.moves
    for source, target in first_moves:
        files.move_no_clobber(source, target)
    for path in plan.deletions:
        files.remove_if_present(path)
    files.move_no_clobber(*certificate_move)


def plan_revocations(
    layout: PKILayout, command: str, kind: str, names: list[str], reason: str | None, batch: bool
) -> list[RevocationPlan]:
    """Plan the revocation of every name, sharing one database, changing nothing."""
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise UsageError(f"Each certificate name may be given once; repeated: {', '.join(duplicates)}.")
    database = IndexDatabase.load(layout.index)
    plans = [plan_revocation(layout, command, kind, name, reason, batch, database) for name in names]
    by_serial: dict[str, str] = {}
    for plan in plans:
        other = by_serial.setdefault(plan.serial, plan.name)
        if other != plan.name:
            raise RevocationConflict(
                f"'{other}' and '{plan.name}' are the same certificate (serial {plan.serial}); "
                "revoke it once."
            )
    return plans


def confirm_revocations(console: Console, plans: list[RevocationPlan]) -> None:
    """Confirm once: one certificate with easy-rsa's exact prompt, several with one prompt listing them all."""
    if len(plans) == 1:
        confirm_revocation(console, plans[0])
        return
    listing = "\n".join(f"    {plan.name:<25} serial-number = {plan.serial}" for plan in plans)
    console.warn(
        f"Revoking {len(plans)} certificates cannot be undone. Each one's certificate, and "
        "for issued certificates its key and request, move to the 'revoked' folder; "
        "their PKCS exports and inline files are deleted."
    )
    reason = plans[0].reason or "None given"
    console.confirm(
        "  Continue with revocation: ",
        "yes",
        f"\nThis revokes these {len(plans)} certificates:\n\n"
        f"{listing}\n\n    Reason: {reason}",
    )


def revoke(
    layout: PKILayout,
    console: Console,
    *,
    command: str,
    kind: str,
    name: str,
    reason: str | None,
    passin: str | None,
) -> None:
    """Run one revoke command for one certificate, from its checks to its closing notice."""
    revoke_all(layout, console, command=command, kind=kind, names=[name], reason=reason, passin=passin)


def revoke_all(
    layout: PKILayout,
    console: Console,
    *,
    command: str,
    kind: str,
    names: list[str],
    reason: str | None,
    passin: str | None,
    crl_follows: bool = False,
) -> list[RevocationPlan]:
    """Revoke every named certificate in one locked run with one index.txt write.

    `crl_follows` says that the caller writes the CRL next, so the closing
    notice does not tell the user to run gen-crl.

    Every revocation is checked before anything changes, so one bad name
    leaves the PKI as it was.
    """
    plans = plan_revocations(layout, command, kind, names, reason, console.batch)
    confirm_revocations(console, plans)
    # `openssl ca -revoke` loads the CA key, so easy-rsa prompts for the CA
    # passphrase here. Prompting at the same point keeps expect scripts working.
    ca_cert = load_ca_certificate(layout)
    load_ca_key(layout, passin, ca_cert)
    try:
        changed = apply_revocations(layout, plans)
    except OSError as error:
        if journal.went_forward():
            raise EasyRSAError(
                f"The revocation is under way but could not be completed: {files.describe_os_error(error)} "
                "Once that is fixed, the next easyrsa-py command finishes it."
            ) from error
        raise EasyRSAError(
            f"Revocation failed, and nothing was changed: {files.describe_os_error(error)}"
        ) from error
    # The revocation is complete; a later step (the CRL) that fails is undone on its own.
    journal.commit()
    for plan, was_changed in zip(plans, changed):
        if not was_changed:
            console.notice(
                f"Serial {plan.serial} was already revoked in index.txt, but its files had not "
                f"been moved (an earlier revocation was interrupted). The moves are now done."
            )
    revoked = ", ".join(f"'{plan.name}' (serial {plan.serial})" for plan in plans)
    if crl_follows:
        console.notice(f"Revoked {revoked}. Writing the new CRL next.")
    else:
        console.notice(
            f"Revoked {revoked}.\n"
            "Servers keep accepting a revoked certificate until you run 'gen-crl' and install\n"
            "the new CRL wherever it is checked (OpenVPN servers, AWS Client VPN endpoints)."
        )
    return plans
