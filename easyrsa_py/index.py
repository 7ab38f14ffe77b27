"""The CA database files: index.txt, index.txt.attr, serial and crlnumber.

easy-rsa leaves these files to `openssl ca`, so easyrsa_py reads and writes
them byte for byte as OpenSSL 3.0 does (apps/ca.c, apps/lib/apps.c and
crypto/txt_db/txt_db.c). index.txt has one certificate per line with six
tab-separated fields:

    status  expiry date  revocation  serial  file name  subject

Parsing keeps every field's text as written, so writing the rows back yields
the same bytes. It is stricter than OpenSSL in a few places, each rejected
with the line number and the value:

- A last line without a newline is rejected. OpenSSL silently drops it.
- "#" comment lines are rejected. OpenSSL skips them and drops them on the
  next write.
- Serials that differ only in case or leading zeros ("0a", "0A", "000A") are
  duplicates here. OpenSSL compares the text case-sensitively.
- A revocation field with a third part is accepted only after
  holdInstruction, keyTime and CAkeyTime. OpenSSL ignores the part
  elsewhere.
- Dates must have the exact forms `openssl ca` writes: YYMMDDHHMMSSZ or
  YYYYMMDDHHMMSSZ. OpenSSL also reads dates without seconds, with
  fractions or with offsets.
"""

from __future__ import annotations

import gc
import logging
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from itertools import compress
from pathlib import Path

from easyrsa_py.errors import FileFormatError, PKINotFound, RevocationConflict

logger = logging.getLogger(__name__)

STATUS_VALID = "V"
STATUS_REVOKED = "R"
STATUS_EXPIRED = "E"
_STATUSES = frozenset((STATUS_VALID, STATUS_REVOKED, STATUS_EXPIRED))

# `openssl ca -revoke -crl_reason` accepts these words (case-insensitively)
# and writes them in this spelling.
CRL_REASONS = (
    "unspecified",
    "keyCompromise",
    "CACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "removeFromCRL",
)
# -crl_hold, -crl_compromise and -crl_CA_compromise write these pseudo
# reasons, each followed by a third part: an OID or a GeneralizedTime.
REASON_HOLD_INSTRUCTION = "holdInstruction"
REASON_KEY_TIME = "keyTime"
REASON_CA_KEY_TIME = "CAkeyTime"
_ALL_REASONS = (
    *CRL_REASONS,
    REASON_HOLD_INSTRUCTION,
    REASON_KEY_TIME,
    REASON_CA_KEY_TIME,
)
_ALL_REASONS_TEXT = ", ".join(_ALL_REASONS)
_REASON_SPELLINGS = {reason.lower(): reason for reason in _ALL_REASONS}

UNKNOWN_FILENAME = "unknown"

_FIELD_NAMES = ("status", "expiry date", "revocation", "serial", "file name", "subject")
_ROW_FIELDS = operator.attrgetter(
    "status", "expires", "revocation", "serial", "filename", "subject"
)

# The accepted field texts, as regular expressions. The line-by-line parser
# matches one field at a time and the fast parser a whole column at once, so
# both accept exactly the same files. re.ASCII keeps [0-9] and case folding
# to ASCII, as OpenSSL's isdigit() and strcasecmp() are.
_MONTH_DAY_EXCEPT_FEBRUARY_29 = (
    "(?:(?:0[13578]|1[02])(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)(?:0[1-9]|[12][0-9]|30)"
    "|02(?:0[1-9]|1[0-9]|2[0-8]))"
)
# Two-digit years are 1950 to 2049, where every fourth year is a leap year.
_LEAP_YEAR_2 = "(?:[02468][048]|[13579][26])"
_LEAP_YEAR_4 = f"(?:[0-9]{{2}}(?:0[48]|[2468][048]|[13579][26])|{_LEAP_YEAR_2}00)"
_CLOCK = "(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]Z"
_UTC_TIME = f"(?:[0-9]{{2}}{_MONTH_DAY_EXCEPT_FEBRUARY_29}|{_LEAP_YEAR_2}0229){_CLOCK}"
_GENERALIZED_TIME = (
    f"(?!0000)(?:[0-9]{{4}}{_MONTH_DAY_EXCEPT_FEBRUARY_29}|{_LEAP_YEAR_4}0229){_CLOCK}"
)
_TIME = f"(?:{_UTC_TIME}|{_GENERALIZED_TIME})"
# The forms OBJ_txt2obj() reads: an object name, or a dotted OID whose
# first arc is 0, 1 or 2 and whose second arc is below 40 under 0 and 1.
_OBJECT = (
    "(?:[A-Za-z][A-Za-z0-9-]*|(?:0*[01]\\.0*[1-3]?[0-9]|0*2\\.[0-9]+)(?:\\.[0-9]+)*)"
)
_PLAIN_REASON = "(?i:" + "|".join(CRL_REASONS) + ")"
_REVOCATION = (
    f"{_TIME}(?:,{_PLAIN_REASON}"
    f"|,(?i:{REASON_HOLD_INSTRUCTION}),{_OBJECT}"
    f"|,(?i:{REASON_KEY_TIME}|{REASON_CA_KEY_TIME}),{_GENERALIZED_TIME})?"
)
# Serials also need an even number of digits. That is checked separately,
# because "(?:[0-9A-Fa-f]{2})+" makes the column match several times slower.
_HEX = "[0-9A-Fa-f]+"



class _LazyPattern:
    """A regular expression compiled on its first use.

    Compiling these patterns takes several milliseconds, a noticeable share
    of a short command's run, and most runs need only some of them.
    """

    def __init__(self, pattern: str) -> None:
        self._source = pattern
        self._compiled: re.Pattern[str] | None = None

    def fullmatch(self, text: str) -> re.Match[str] | None:
        if self._compiled is None:
            self._compiled = re.compile(self._source, re.ASCII)
        return self._compiled.fullmatch(text)


_TIME_RE = _LazyPattern(_TIME)
_GENERALIZED_TIME_RE = _LazyPattern(_GENERALIZED_TIME)
_OBJECT_RE = _LazyPattern(_OBJECT)
_REVOCATION_RE = _LazyPattern(_REVOCATION)
_HEX_RE = _LazyPattern(_HEX)


def _column_pattern(token: str) -> _LazyPattern:
    """Compile a pattern for tab-separated tokens of one form.

    Atomic groups stop the engine from retrying each matched token, which
    makes the match several times faster. That cannot change the result:
    for every valid token, the first match the engine finds inside the
    group already spans the whole token.
    """
    return _LazyPattern(f"(?>{token})(?:\t(?>{token}))*+")


_TIME_COLUMN_RE = _column_pattern(_TIME)
_REVOCATION_COLUMN_RE = _column_pattern(_REVOCATION)
_STATUS_COLUMN_RE = _LazyPattern("(?:\n[VRE])*")
# Below this many rows the line-by-line parser is faster than the column
# parser. Compiling the column patterns takes about 10 ms, as long as the
# line parser takes for about 1,400 rows (measured with Python 3.11 on a
# 2-core x86-64 machine). Rows are counted in the first characters only.
_SMALL_INDEX_ROWS = 1000
_SMALL_INDEX_CHARACTERS = 1000 * 200
_HEX_COLUMN_RE = _column_pattern(_HEX)

_TIME_FORMS = "YYMMDDHHMMSSZ (13 characters) or YYYYMMDDHHMMSSZ (15 characters)"
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# i2a_ASN1_INTEGER() breaks a serial file line after 35 bytes.
_SERIAL_BYTES_PER_LINE = 35


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One line of index.txt, every field as the file spells it."""

    status: str
    expires: str
    revocation: str
    serial: str
    filename: str
    subject: str

    @classmethod
    def issued(cls, expires: str, serial: int, subject: str) -> IndexRow:
        """Build the row `openssl ca` adds for a newly issued certificate.

        `expires` is the notAfter text, `subject` the one-line subject. As
        in `openssl ca`, an empty subject is stored as the serial, so that
        certificates without a subject never match each other under
        unique_subject.
        """
        serial_text = serial_hex(serial)
        return cls(
            status=STATUS_VALID,
            expires=expires,
            revocation="",
            serial=serial_text,
            filename=UNKNOWN_FILENAME,
            subject=subject or serial_text,
        )

    @property
    def serial_number(self) -> int:
        """The serial as an integer."""
        return int(self.serial, 16)

    @property
    def expires_at(self) -> datetime:
        """The expiry date as an aware UTC datetime."""
        return parse_openssl_time(self.expires)

    @property
    def revocation_date_text(self) -> str | None:
        """The revocation date as written, or None when not revoked."""
        if not self.revocation:
            return None
        return self.revocation.partition(",")[0]

    @property
    def revoked_at(self) -> datetime | None:
        """The revocation date as an aware UTC datetime, or None."""
        text = self.revocation_date_text
        return None if text is None else parse_openssl_time(text)

    @property
    def reason(self) -> str | None:
        """The revocation reason as written, or None when there is none."""
        parts = self.revocation.split(",", 2)
        return parts[1] if len(parts) > 1 else None

    @property
    def revocation_extra(self) -> str | None:
        """The hold instruction OID or compromise time, or None."""
        parts = self.revocation.split(",", 2)
        return parts[2] if len(parts) > 2 else None

    def revoke(
        self, when: datetime, reason: str | None, extra: str | None = None
    ) -> IndexRow:
        """Return the row revoked at `when`, as `openssl ca -revoke` writes it.

        `reason` is matched case-insensitively and written in OpenSSL's
        spelling. holdInstruction takes an OID as `extra`, keyTime and
        CAkeyTime take a GeneralizedTime (YYYYMMDDHHMMSSZ), as -crl_hold,
        -crl_compromise and -crl_CA_compromise do. Raises RevocationConflict
        if the row is already revoked, and ValueError for an unknown reason
        or a missing or invalid `extra`.
        """
        if self.status == STATUS_REVOKED:
            raise RevocationConflict(
                f"Certificate with serial {self.serial} is already revoked "
                f"({self.revocation}). Nothing to do."
            )
        field_text = format_openssl_time(when)
        if reason is not None:
            field_text += "," + _reason_with_extra(reason, extra)
        elif extra is not None:
            raise ValueError("an extra revocation value needs a reason")
        return replace(self, status=STATUS_REVOKED, revocation=field_text)

    def mark_expired(self) -> IndexRow:
        """Return the row with status E, as `openssl ca -updatedb` sets it.

        Raises ValueError for a revoked row, which -updatedb never changes.
        """
        if self.status == STATUS_REVOKED:
            raise ValueError(
                f"serial {self.serial} is revoked; only a V row can expire"
            )
        return replace(self, status=STATUS_EXPIRED)

    def to_line(self) -> str:
        """Return the row as one index.txt line, newline included."""
        return "\t".join(_ROW_FIELDS(self)) + "\n"


class _IndexRowBuilder:
    """A mutable twin of IndexRow that turns itself into one when built.

    A frozen dataclass sets each field through object.__setattr__(), which
    makes its __init__ about four times slower than plain slot stores. The
    twin stores the fields directly and then reassigns __class__, which
    CPython allows because both classes have the same slots. Parsing a
    100,000-row index.txt depends on this to stay fast.
    """

    __slots__ = tuple(row_field.name for row_field in dataclass_fields(IndexRow))

    def __init__(
        self,
        status: str,
        expires: str,
        revocation: str,
        serial: str,
        filename: str,
        subject: str,
    ) -> None:
        self.status = status
        self.expires = expires
        self.revocation = revocation
        self.serial = serial
        self.filename = filename
        self.subject = subject
        self.__class__ = IndexRow  # type: ignore[assignment]


def _build_rows(*columns: list[str]) -> list[IndexRow]:
    """Return IndexRow objects for parallel columns of field texts."""
    return list(map(_IndexRowBuilder, *columns))  # type: ignore[arg-type]


def _reason_with_extra(reason: str, extra: str | None) -> str:
    """Return "reason" or "reason,extra" in OpenSSL's spelling."""
    spelling = _reason_spelling(reason)
    if spelling is None:
        raise ValueError(
            f"unknown revocation reason {reason!r}; expected one of {_ALL_REASONS_TEXT}"
        )
    if spelling in CRL_REASONS:
        if extra is not None:
            raise ValueError(f"reason {spelling} takes no extra value")
        return spelling
    problem = _revocation_extra_problem(spelling, extra or "")
    if problem is not None:
        raise ValueError(f"reason {spelling}: {problem}")
    return f"{spelling},{extra}"


def _reason_spelling(reason: str) -> str | None:
    """Return OpenSSL's spelling of `reason`, matched case-insensitively."""
    # strcasecmp() folds ASCII only; str.lower() would also map the Kelvin
    # sign to "k", which OpenSSL rejects.
    if not reason.isascii():
        return None
    return _REASON_SPELLINGS.get(reason.lower())


# -- index.txt -----------------------------------------------------------------


def parse_index(data: bytes, path: Path) -> list[IndexRow]:
    """Parse index.txt. Raises FileFormatError naming the line and value."""
    return _parse_rows(data, path)


def format_index(rows: Iterable[IndexRow]) -> bytes:
    """Return index.txt content for `rows`, one LF-terminated line each.

    Raises ValueError if a field contains a tab or a newline, which would
    corrupt the file.
    """
    lines = list(map("\t".join, map(_ROW_FIELDS, rows)))
    if not lines:
        return b""
    lines.append("")
    text = "\n".join(lines)
    if text.count("\n") != len(lines) - 1 or text.count("\t") != 5 * (len(lines) - 1):
        _raise_separator_in_field(lines)
    return text.encode("utf-8", "surrogateescape")


def _raise_separator_in_field(lines: list[str]) -> None:
    for line in lines:
        if line.count("\t") != 5 or "\n" in line:
            raise ValueError(f"an index.txt field contains a tab or newline: {line!r}")


def _parse_rows(data: bytes, path: Path) -> list[IndexRow]:
    # OpenSSL writes ASCII only. surrogateescape keeps any other byte, so
    # hand-edited files still round-trip exactly.
    text = data.decode("utf-8", "surrogateescape")
    # Every row is a new object that the cyclic garbage collector would
    # scan again and again while the list grows; none can form a cycle.
    collecting = gc.isenabled()
    gc.disable()
    if not text:
        return []
    try:
        rows = None
        if text.count("\n", 0, _SMALL_INDEX_CHARACTERS) >= _SMALL_INDEX_ROWS:
            rows = _parse_rows_fast(text)
        if rows is None:
            rows = _parse_rows_by_line(text, path)
    finally:
        if collecting:
            gc.enable()
    return rows


def _parse_rows_fast(text: str) -> list[IndexRow] | None:
    """Parse valid index.txt text into rows by whole columns, or return None."""
    columns = _parse_columns_fast(text)
    if columns is None:
        return None
    return _build_rows(
        list(columns.statuses),
        columns.expiries,
        columns.revocations,
        columns.serials,
        columns.filenames,
        columns.subjects,
    )


@dataclass(frozen=True)
class _Columns:
    """The fields of every row, one list per field, and the revoked rows' mask."""

    statuses: str  # one status letter per row
    expiries: list[str]
    revocations: list[str]
    serials: list[str]
    filenames: list[str]
    subjects: list[str]
    revoked: list[bool]


def _parse_columns_fast(text: str) -> _Columns | None:
    """Check valid index.txt text by whole columns and return the columns.

    None means the text may be invalid. The line-by-line parser then finds
    the first problem and reports it. Checking each column with one regular
    expression is several times faster than checking every field.
    """
    if not text:
        return _Columns("", [], [], [], [], [], [])
    if "\r" in text or not text.endswith("\n"):
        return None
    count = text.count("\n")
    # After this split each newline starts a field of its own. Only if
    # every line has exactly six fields do the statuses of lines 2 to
    # `count` all land at multiples of six, each with its newline.
    fields = text.replace("\n", "\t\n").split("\t")
    if len(fields) != 6 * count + 1 or fields[-1] != "\n":
        return None
    # Each later status field is a newline and one letter, so the joined
    # fields match this pattern only if every one of them is valid.
    later_statuses = "".join(fields[6:-1:6])
    if fields[0] not in _STATUSES or not _STATUS_COLUMN_RE.fullmatch(later_statuses):
        return None
    statuses = fields[0] + later_statuses[1::2]

    expiries = fields[1::6]
    revocations = fields[2::6]
    serials = fields[3::6]
    if not _TIME_COLUMN_RE.fullmatch("\t".join(expiries)):
        return None
    # Revoked rows, and only they, have a revocation field: every R row
    # has one, and there are as many non-empty fields as R rows.
    revoked = list(map(STATUS_REVOKED.__eq__, statuses))
    revoked_fields = list(compress(revocations, revoked))
    if "" in revoked_fields or len(revocations) - revocations.count("") != len(revoked_fields):
        return None
    if revoked_fields and not _REVOCATION_COLUMN_RE.fullmatch("\t".join(revoked_fields)):
        return None
    serial_text = "\t".join(serials)
    if not _HEX_COLUMN_RE.fullmatch(serial_text) or any(
        map(_is_odd, map(len, serials))
    ):
        return None
    if len(set(_serial_keys(serials, serial_text))) != count:
        return None
    return _Columns(statuses, expiries, revocations, serials, fields[4::6], fields[5::6], revoked)


_is_odd = (1).__and__


def _serial_keys(serials: list[str], serial_text: str) -> list[str]:
    """Return each serial as serial_hex() spells it, the key for lookups.

    `serial_text` is the serials joined by tabs, used to skip the per-row
    conversion when every serial is already spelled that way.
    """
    if not any(letter in serial_text for letter in "abcdef"):
        column = f"\t{serial_text}\t"
        # Only the serial 0 may start with a zero byte.
        if column.count("\t00") == column.count("\t00\t"):
            return serials
    return [_serial_key(serial) for serial in serials]


def _parse_rows_by_line(text: str, path: Path) -> list[IndexRow]:
    """Parse index.txt one line at a time, raising on the first problem."""
    _check_line_endings(text, path)
    lines = text.split("\n")
    lines.pop()  # The empty text after the final newline.

    rows: list[IndexRow] = []
    positions: dict[str, int] = {}
    for position, line in enumerate(lines):
        row = _parse_line(line, path, position + 1)
        first = positions.setdefault(_serial_key(row.serial), position)
        if first != position:
            _raise_duplicate(path, rows[first], first + 1, row, position + 1)
        rows.append(row)
    return rows


def _serial_key(serial: str) -> str:
    return serial_hex(int(serial, 16))


def _check_line_endings(text: str, path: Path) -> None:
    crlf_at = text.find("\r\n")
    if crlf_at >= 0:
        raise FileFormatError(
            path,
            text.count("\n", 0, crlf_at) + 1,
            "the line ends with CRLF; index.txt must use LF line endings "
            "(convert it with dos2unix)",
        )
    if not text.endswith("\n"):
        raise FileFormatError(
            path,
            text.count("\n") + 1,
            "the last line does not end with a newline, and OpenSSL would "
            "ignore it; add the newline",
        )


def _parse_line(line: str, path: Path, number: int) -> IndexRow:
    fields = line.split("\t")
    if len(fields) != 6:
        raise FileFormatError(path, number, _field_count_problem(line, fields))
    status, expires, revocation, serial, filename, subject = fields

    if status not in _STATUSES:
        raise FileFormatError(
            path, number, f"unknown status {status!r}; expected V, R or E"
        )
    if not _is_valid_time(expires):
        raise FileFormatError(path, number, _time_problem("expiry date", expires))
    if status == STATUS_REVOKED:
        if not revocation:
            raise FileFormatError(
                path,
                number,
                f"status R needs a revocation date in field 3, which is "
                f"empty; expected DATE or DATE,reason (serial {serial!r})",
            )
        if not _is_valid_revocation(revocation):
            raise FileFormatError(path, number, _revocation_problem(revocation))
    elif revocation:
        raise FileFormatError(
            path,
            number,
            f"status {status} must have an empty revocation field, but it "
            f"is {revocation!r}; use status R for a revoked certificate",
        )
    if not _HEX_RE.fullmatch(serial) or len(serial) % 2:
        raise FileFormatError(path, number, _serial_problem(serial))
    return IndexRow(status, expires, revocation, serial, filename, subject)


def _field_count_problem(line: str, fields: list[str]) -> str:
    if not line:
        return "blank line; every line must be a certificate row"
    if line.startswith("#"):
        return (
            f"comment line {line!r}; index.txt rows cannot be comments, remove the line"
        )
    return (
        f"expected 6 tab-separated fields "
        f"({', '.join(_FIELD_NAMES)}) but found {len(fields)} in {line!r}"
    )


def _serial_problem(serial: str) -> str:
    if not serial:
        return "the serial (field 4) is empty; expected hex digits"
    if not serial.isascii() or serial.strip("0123456789ABCDEFabcdef"):
        return f"invalid serial {serial!r} in field 4; expected hex digits only"
    return (
        f"serial {serial!r} in field 4 has an odd number of digits; OpenSSL "
        f"expects whole bytes, such as {'0' + serial!r}"
    )


def _raise_duplicate(
    path: Path, first: IndexRow, first_line: int, row: IndexRow, line: int
) -> None:
    raise FileFormatError(
        path,
        line,
        f"duplicate serial {row.serial!r}: line {first_line} already has "
        f"serial {first.serial!r} with the same value; each certificate "
        "needs its own serial",
    )


# -- revocation field ----------------------------------------------------------


def _is_valid_revocation(revocation: str) -> bool:
    """Check a revocation field in plain code; it accepts what _REVOCATION matches."""
    date, has_reason, rest = revocation.partition(",")
    if not _is_valid_time(date):
        return False
    if not has_reason:
        return True
    reason, has_extra, extra = rest.partition(",")
    spelling = _reason_spelling(reason)
    if spelling is None:
        return False
    if spelling in CRL_REASONS:
        return not has_extra
    return bool(has_extra) and _revocation_extra_problem(spelling, extra) is None


def _revocation_problem(revocation: str) -> str:
    """Describe why a revocation field is invalid; only called on failure."""
    date, has_reason, rest = revocation.partition(",")
    if not _is_valid_time(date):
        return _time_problem("revocation date", date)
    reason, has_extra, extra = rest.partition(",")
    spelling = _reason_spelling(reason) if has_reason else None
    if spelling is None:
        return (
            f"unknown revocation reason {reason!r} in {revocation!r}; "
            f"expected one of {_ALL_REASONS_TEXT}"
        )
    if spelling in CRL_REASONS:
        return (
            f"reason {reason!r} takes no third part, but {revocation!r} "
            f"has {extra!r}; expected DATE,{reason}"
        )
    problem = _revocation_extra_problem(spelling, extra if has_extra else "")
    return f"{problem} in revocation field {revocation!r}"


def _revocation_extra_problem(spelling: str, extra: str) -> str | None:
    """Describe why `extra` cannot follow the reason, or return None."""
    if spelling == REASON_HOLD_INSTRUCTION:
        if _OBJECT_RE.fullmatch(extra):
            return None
        return (
            f"invalid hold instruction {extra!r}; expected an OID such as "
            "holdInstructionReject or 1.2.840.10040.2.3"
        )
    if len(extra) == 15 and _is_valid_time(extra):
        return None
    return (
        f"invalid compromise time {extra!r}; expected a GeneralizedTime YYYYMMDDHHMMSSZ"
    )


# -- ASN.1 time text -----------------------------------------------------------


def _is_valid_time(text: str) -> bool:
    """Check for a UTCTime or GeneralizedTime as `openssl ca` writes them.

    Plain code rather than _TIME_RE, which takes longer to compile than a
    small index.txt takes to check; both accept exactly the same texts.
    """
    length = len(text)
    if (length != 13 and length != 15) or text[-1] != "Z":
        return False
    digits = text[:-1]
    if not (digits.isascii() and digits.isdigit()):
        return False
    year_end = length - 11
    year = _full_year(text[:year_end])
    if length == 15 and year == 0:
        return False
    month = int(text[year_end : year_end + 2])
    day = int(text[year_end + 2 : year_end + 4])
    if not 1 <= month <= 12 or day < 1:
        return False
    if day > _DAYS_IN_MONTH[month - 1] or (month == 2 and day == 29 and not _is_leap_year(year)):
        return False
    hour = int(text[year_end + 4 : year_end + 6])
    minute = int(text[year_end + 6 : year_end + 8])
    second = int(text[year_end + 8 : year_end + 10])
    return hour < 24 and minute < 60 and second < 60


def _full_year(year: str) -> int:
    value = int(year)
    if len(year) == 2:
        # RFC 5280 section 4.1.2.5.1: YY >= 50 means 19YY, else 20YY.
        return value + (1900 if value >= 50 else 2000)
    return value


def _is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _time_problem(field_name: str, text: str) -> str:
    """Describe why `text` is not a valid time; only called on failure."""
    if len(text) not in (13, 15) or not text.endswith("Z"):
        return f"invalid {field_name} {text!r}; expected {_TIME_FORMS}"
    digits = text[:-1]
    if not (digits.isascii() and digits.isdigit()):
        return f"invalid {field_name} {text!r}: it contains non-digits; expected {_TIME_FORMS}"
    year_end = len(digits) - 10
    year = _full_year(digits[:year_end])
    month, day, hour, minute, second = (
        int(digits[start : start + 2]) for start in range(year_end, len(digits), 2)
    )
    if year == 0:
        problem = "year 0000 does not exist"
    elif not 1 <= month <= 12:
        problem = f"month {month:02d} does not exist"
    elif not 1 <= day <= _days_in_month(year, month):
        problem = f"day {day:02d} does not exist in {year:04d}-{month:02d}"
    elif hour > 23:
        problem = f"hour {hour:02d} does not exist"
    else:
        problem = f"minute {minute:02d} or second {second:02d} does not exist"
    return f"invalid {field_name} {text!r}: {problem}"


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and not _is_leap_year(year):
        return 28
    return _DAYS_IN_MONTH[month - 1]


def format_openssl_time(when: datetime) -> str:
    """Format `when` as OpenSSL's ASN1_TIME does, to the second.

    Years 1950 to 2049 give a 13-character UTCTime, other years a
    15-character GeneralizedTime. `when` must be timezone-aware.
    """
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}; pass an aware datetime")
    utc = when.astimezone(UTC)
    digits = (
        f"{utc.month:02d}{utc.day:02d}{utc.hour:02d}{utc.minute:02d}{utc.second:02d}Z"
    )
    if 1950 <= utc.year <= 2049:
        return f"{utc.year % 100:02d}{digits}"
    return f"{utc.year:04d}{digits}"


def parse_openssl_time(text: str) -> datetime:
    """Parse a 13-character UTCTime or 15-character GeneralizedTime.

    Returns an aware UTC datetime. Raises ValueError for any other text.
    """
    if not _is_valid_time(text):
        raise ValueError(_time_problem("time", text))
    year_end = len(text) - 11
    return datetime(
        _full_year(text[:year_end]),
        int(text[year_end : year_end + 2]),
        int(text[year_end + 2 : year_end + 4]),
        int(text[year_end + 4 : year_end + 6]),
        int(text[year_end + 6 : year_end + 8]),
        int(text[year_end + 8 : year_end + 10]),
        tzinfo=UTC,
    )


# -- serial and crlnumber files ----------------------------------------------


def serial_hex(number: int) -> str:
    """Return the serial as OpenSSL writes it: uppercase, whole bytes."""
    if number < 0:
        raise ValueError(f"negative serial {number}; serials are positive")
    text = f"{number:X}"
    return "0" + text if len(text) % 2 else text


def parse_serial_file(data: bytes, path: Path) -> int:
    """Parse a `serial` or `crlnumber` file as a2i_ASN1_INTEGER() reads it.

    The file contains hex digits on one line, lowercase too, because
    easy-rsa writes `openssl rand -hex` output there. A line ending in a backslash continues on
    the next line. LF and CRLF endings are accepted, as OpenSSL does.
    """
    lines = data.decode("ascii", "replace").split("\n")
    digits: list[str] = []
    for number, raw_line in enumerate(lines, start=1):
        line = raw_line.removesuffix("\r")
        continued = line.endswith("\\")
        hex_text = line.removesuffix("\\")
        _check_serial_line(hex_text, path, number)
        digits.append(hex_text)
        if not continued:
            _check_serial_trailer(lines[number:], path, number + 1)
            return int("".join(digits), 16)
    raise FileFormatError(
        path, len(lines), "the last line ends in a backslash; expected more digits"
    )


def _check_serial_line(hex_text: str, path: Path, number: int) -> None:
    if not hex_text:
        raise FileFormatError(
            path, number, "no serial number; expected hex digits such as 01"
        )
    if not _HEX_RE.fullmatch(hex_text):
        raise FileFormatError(
            path, number, f"invalid serial {hex_text!r}; expected hex digits only"
        )
    if len(hex_text) % 2:
        raise FileFormatError(
            path,
            number,
            f"serial {hex_text!r} has an odd number of digits; OpenSSL "
            f"expects whole bytes, such as {'0' + hex_text!r}",
        )


def _check_serial_trailer(rest: list[str], path: Path, number: int) -> None:
    # After the final digits only the newline may follow, which leaves
    # `rest` as [""], or nothing at all, which OpenSSL also accepts.
    trailer = "\n".join(rest)
    if trailer:
        raise FileFormatError(
            path,
            number,
            f"unexpected text {trailer!r} after the serial number; the file "
            "must contain only the hex serial and a newline",
        )


def format_serial_file(number: int) -> bytes:
    """Return a serial file as save_serial() writes it, newline included."""
    text = serial_hex(number)
    width = 2 * _SERIAL_BYTES_PER_LINE
    chunks = [text[start : start + width] for start in range(0, len(text), width)]
    return ("\\\n".join(chunks) + "\n").encode("ascii")


# -- index.txt.attr ----------------------------------------------------------


def parse_attr(data: bytes, path: Path) -> dict[str, str]:
    """Parse index.txt.attr, a list of `name = value` lines.

    Blank lines and "#" comments are skipped as OpenSSL's config parser
    skips them. Section headers and quoting are not supported: OpenSSL
    writes and easy-rsa writes neither.
    """
    values: dict[str, str] = {}
    text = data.decode("utf-8", "replace")
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.partition("#")[0].strip()
        if not line:
            continue
        name, equals, value = line.partition("=")
        name = name.strip()
        if not equals or not name or not name.replace("_", "").isalnum():
            raise FileFormatError(
                path,
                number,
                f"invalid line {raw_line!r}; expected name = value, "
                "for example unique_subject = no",
            )
        values[name] = value.strip()
    return values


def format_attr(values: Mapping[str, str]) -> bytes:
    """Return index.txt.attr content as `openssl ca` writes it."""
    return "".join(f"{name} = {value}\n" for name, value in values.items()).encode(
        "utf-8"
    )


# -- the database ------------------------------------------------------------


def read_revocations(path: Path) -> tuple[list[str], list[str]]:
    """Return the serial and revocation fields of every `R` row of index.txt.

    The whole file is checked exactly as parse_index() checks it, but no
    row objects are built, which keeps gen-crl on a large database fast.
    """
    data = _read_index(path)
    text = data.decode("utf-8", "surrogateescape")
    if not text:
        return [], []
    columns = None
    if text.count("\n", 0, _SMALL_INDEX_CHARACTERS) >= _SMALL_INDEX_ROWS:
        columns = _parse_columns_fast(text)
    if columns is None:
        rows = _parse_rows_by_line(text, path)
        revoked_rows = [row for row in rows if row.status == STATUS_REVOKED]
        return [row.serial for row in revoked_rows], [row.revocation for row in revoked_rows]
    revoked = columns.revoked
    return list(compress(columns.serials, revoked)), list(compress(columns.revocations, revoked))


def _read_index(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PKINotFound(
            path,
            f"Missing CA database {path}. Run build-ca to create the CA, "
            "or point --pki-dir at the PKI that contains it.",
        ) from None


@dataclass
class IndexDatabase:
    """The rows of index.txt, with serial lookups through a lazily built map."""

    path: Path
    rows: list[IndexRow]
    # Maps serials as serial_hex() spells them to row positions. It is
    # built on the first lookup, so that only loading and saving stay fast.
    _positions: dict[str, int] | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: Path) -> IndexDatabase:
        """Read and parse index.txt. An empty file is a valid, empty database."""
        rows = parse_index(_read_index(path), path)
        logger.debug("Loaded %d rows from %s", len(rows), path)
        return cls(path, rows)

    def find(self, serial: int) -> IndexRow | None:
        """Return the row whose serial has this value, or None."""
        position = self._serial_positions().get(serial_hex(serial))
        return None if position is None else self.rows[position]

    def replace(self, serial: int, row: IndexRow) -> None:
        """Replace the row for `serial` with `row`, keeping its position.

        Raises KeyError if no row has `serial`, and ValueError if `row`
        carries a serial that another row already has.
        """
        positions = self._serial_positions()
        key = serial_hex(serial)
        position = positions[key]
        new_key = _serial_key(row.serial)
        if new_key != key:
            if new_key in positions:
                raise ValueError(f"serial {row.serial} is already in {self.path}")
            del positions[key]
            positions[new_key] = position
        self.rows[position] = row

    def append(self, row: IndexRow) -> None:
        """Add a row at the end. Raises ValueError if its serial exists."""
        positions = self._serial_positions()
        key = _serial_key(row.serial)
        if key in positions:
            raise ValueError(f"serial {row.serial} is already in {self.path}")
        positions[key] = len(self.rows)
        self.rows.append(row)

    def to_bytes(self) -> bytes:
        """Return the database as index.txt content."""
        return format_index(self.rows)

    def _serial_positions(self) -> dict[str, int]:
        if self._positions is None:
            serials = [row.serial for row in self.rows]
            keys = _serial_keys(serials, "\t".join(serials))
            positions: dict[str, int] = {}
            for position, key in enumerate(keys):
                positions.setdefault(key, position)
            self._positions = positions
        return self._positions
