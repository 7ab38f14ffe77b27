"""easy-rsa's global options, parsed the way easy-rsa 3.2.7 parses them.

Options come before the command and take their value after `=`
(`--days=30`, never `--days 30`). Each option sets the EASYRSA_* variable
easy-rsa exports for it, so the settings layer sees options, environment
and vars in one vocabulary. Parsing stops at the first word that is not an
option: that word is the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from easyrsa_py.errors import UsageError


class Kind(Enum):
    VALUE = "value"  # needs a non-empty value
    OPTIONAL_VALUE = "optional"  # the value may be empty or missing
    FLAG = "flag"  # takes no value; sets its variables to "1"
    NUMBER = "number"  # a positive decimal number without leading zeros
    NUMBER_OR_ZERO = "number0"


@dataclass(frozen=True)
class Option:
    spellings: tuple[str, ...]
    variables: tuple[str, ...]
    kind: Kind
    help: str


OPTIONS: tuple[Option, ...] = (
    Option(("-b", "--batch"), ("EASYRSA_BATCH",), Kind.FLAG, "never ask for confirmation"),
    Option(("-s", "--silent"), ("EASYRSA_SILENT",), Kind.FLAG, "print no notices or warnings"),
    Option(
        ("--sb", "--sbatch", "--silent-batch"),
        ("EASYRSA_SILENT", "EASYRSA_BATCH"),
        Kind.FLAG,
        "--silent and --batch together",
    ),
    Option(("-v", "--verbose"), ("EASYRSA_VERBOSE",), Kind.FLAG, "log each step to stderr"),
    Option(("-S", "--silent-ssl"), ("EASYRSA_SILENT_SSL",), Kind.FLAG, "accepted; easyrsa_py runs no openssl"),
    Option(("--pki", "--pki-dir"), ("EASYRSA_PKI",), Kind.VALUE, "the PKI folder (default: ./pki)"),
    Option(("--vars",), ("EASYRSA_VARS_FILE",), Kind.VALUE, "the vars file to read, and no other"),
    Option(("--force-vars",), ("EASYRSA_FORCE_VARS",), Kind.FLAG, "skip shell code in the vars file instead of failing"),
    Option(("--passin",), ("EASYRSA_PASSIN",), Kind.VALUE,
           "passphrase of existing keys (the CA's, or NAME's): env:, file:, fd:, stdin, pass:"),
    Option(("--passout",), ("EASYRSA_PASSOUT",), Kind.VALUE, "passphrase source for new keys"),
    Option(("--days",), ("EASYRSA_ALIAS_DAYS",), Kind.NUMBER_OR_ZERO, "lifetime in days of what the command creates"),
    Option(("--startdate",), ("EASYRSA_START_DATE",), Kind.VALUE, "certificate start date, YYYYMMDDhhmmssZ (UTC)"),
    Option(("--enddate",), ("EASYRSA_END_DATE",), Kind.VALUE, "certificate end date, YYYYMMDDhhmmssZ (UTC)"),
    Option(("--digest",), ("EASYRSA_DIGEST",), Kind.VALUE, "signature digest, e.g. sha256"),
    Option(("--nolockfile", "--no-lockfile"), ("EASYRSA_NO_LOCKFILE",), Kind.FLAG, "do not take pki/lock.file"),
    # easyrsa_py's own: easy-rsa always fails at once with exit code 17.
    Option(
        ("--wait-lock",),
        ("EASYRSA_PY_WAIT_LOCK",),
        Kind.NUMBER_OR_ZERO,
        "seconds to wait for a held pki/lock.file before exiting with code 17 (default 0)",
    ),
    Option(("--umask",), ("EASYRSA_UMASK",), Kind.VALUE, "umask for new files, in octal (default 077)"),
    Option(("--noumask", "--no-umask"), ("EASYRSA_NO_UMASK",), Kind.FLAG, "keep the umask of the calling shell"),
    Option(("--noinline", "--no-inline"), ("EASYRSA_NO_INLINE",), Kind.FLAG, "do not write inline files"),
    Option(("--tmp-dir",), ("EASYRSA_TEMP_DIR",), Kind.VALUE, "accepted and ignored: temporary files go beside the files they replace"),
    Option(("--ssl-cnf", "--ssl-conf"), ("EASYRSA_SSL_CONF",), Kind.VALUE, "accepted; easyrsa_py uses no OpenSSL config"),
    Option(("--keep-tmp",), ("EASYRSA_KEEP_TEMP",), Kind.VALUE, "accepted; easyrsa_py keeps no temporary session"),
    Option(("--algo", "--use-algo"), ("EASYRSA_ALGO",), Kind.VALUE, "key algorithm: rsa, ec or ed"),
    Option(("--keysize",), ("EASYRSA_KEY_SIZE",), Kind.NUMBER, "RSA key size in bits"),
    Option(("--curve",), ("EASYRSA_CURVE",), Kind.VALUE, "EC or Ed curve name"),
    Option(("--dn-mode",), ("EASYRSA_DN",), Kind.VALUE, "cn_only or org"),
    Option(("--req-cn",), ("EASYRSA_REQ_CN",), Kind.VALUE, "common name of the CA"),
    Option(("--req-c",), ("EASYRSA_REQ_COUNTRY",), Kind.OPTIONAL_VALUE, "country, with --dn-mode=org"),
    Option(("--req-st",), ("EASYRSA_REQ_PROVINCE",), Kind.OPTIONAL_VALUE, "state or province"),
    Option(("--req-city",), ("EASYRSA_REQ_CITY",), Kind.OPTIONAL_VALUE, "city"),
    Option(("--req-org",), ("EASYRSA_REQ_ORG",), Kind.OPTIONAL_VALUE, "organization"),
    Option(("--req-email",), ("EASYRSA_REQ_EMAIL",), Kind.OPTIONAL_VALUE, "email address"),
    Option(("--req-ou",), ("EASYRSA_REQ_OU",), Kind.OPTIONAL_VALUE, "organizational unit"),
    Option(("--req-serial",), ("EASYRSA_REQ_SERIAL",), Kind.OPTIONAL_VALUE, "serialNumber attribute"),
    Option(("--ns-cert",), ("EASYRSA_NS_SUPPORT",), Kind.OPTIONAL_VALUE, "add Netscape extensions (yes)"),
    Option(("--ns-comment",), ("EASYRSA_NS_COMMENT",), Kind.OPTIONAL_VALUE, "Netscape comment text"),
    Option(("--force-safe-ssl",), ("EASYRSA_FORCE_SAFE_SSL",), Kind.FLAG, "accepted; easyrsa_py uses no OpenSSL config"),
    Option(("--nopass", "--no-pass"), ("EASYRSA_NO_PASS",), Kind.FLAG, "do not encrypt new keys"),
    Option(("--rawca", "--raw-ca"), ("EASYRSA_RAW_CA",), Kind.FLAG, "read the CA passphrase directly"),
    Option(("--text",), ("EASYRSA_TEXT_ON",), Kind.FLAG, "include text in certificates"),
    Option(("--notext", "--no-text"), ("EASYRSA_TEXT_OFF",), Kind.FLAG, "no text in certificates"),
    Option(("--subca-len",), ("EASYRSA_SUBCA_LEN",), Kind.NUMBER_OR_ZERO, "sub-CA path length"),
    Option(("--copy-ext",), ("EASYRSA_CP_EXT",), Kind.FLAG, "copy request extensions"),
    Option(("--san", "--subject-alt-name"), ("EASYRSA_SAN",), Kind.VALUE, "subjectAltName (repeatable)"),
    Option(("--auto-san",), ("EASYRSA_AUTO_SAN",), Kind.FLAG, "derive subjectAltName from the CN"),
    Option(("--san-crit", "--san-critical"), ("EASYRSA_SAN_CRIT",), Kind.FLAG, "mark subjectAltName critical"),
    Option(("--bc-crit", "--bc-critical"), ("EASYRSA_BC_CRIT",), Kind.FLAG, "mark basicConstraints critical"),
    Option(("--ku-crit", "--ku-critical"), ("EASYRSA_KU_CRIT",), Kind.FLAG, "mark keyUsage critical"),
    Option(("--eku-crit", "--eku-critical"), ("EASYRSA_EKU_CRIT",), Kind.FLAG, "mark extendedKeyUsage critical"),
    Option(("--new-subj", "--new-subject"), ("EASYRSA_NEW_SUBJECT",), Kind.VALUE, "new subject for sign-req"),
    Option(("--usefn",), ("EASYRSA_P12_FR_NAME",), Kind.VALUE, "friendly name for export-p12"),
    # Options that only older easy-rsa releases have; scripts written for
    # them keep working.
    Option(("--fix-offset",), ("EASYRSA_FIX_OFFSET",), Kind.VALUE, "easy-rsa 3.1: fixed start-date offset"),
    # easy-rsa 3.1.0 takes any --renew-days value, 3.2.2 checks --days-margin
    # as a number greater than 0.
    Option(("--renew-days",), ("EASYRSA_CERT_RENEW",), Kind.VALUE, "easy-rsa 3.1: renewal grace period in days"),
    Option(("--days-margin",), ("EASYRSA_iso_8601_MARGIN",), Kind.NUMBER, "easy-rsa 3.2.2: date margin of show-expire"),
    Option(("--tools",), ("EASYRSA_TOOLS_LIB",), Kind.VALUE, "easy-rsa 3.2.2: tools library path"),
)

_BY_SPELLING = {spelling: option for option in OPTIONS for spelling in option.spellings}


@dataclass
class ParsedCommandLine:
    options: dict[str, str]
    command: str
    arguments: list[str]


def _check_number(spelling: str, value: str, zero_allowed: bool) -> None:
    if value == "0" and zero_allowed:
        return
    if not value.isdigit() or not value.isascii() or value.startswith("0"):
        expected = "a whole number" if zero_allowed else "a whole number of 1 or more"
        raise UsageError(
            f"Invalid value for {spelling}: expected {expected} without leading zeros, got '{value}'."
        )


def _apply(option: Option, spelling: str, value: str | None, options: dict[str, str]) -> None:
    empty = not value
    if option.kind is Kind.FLAG:
        for variable in option.variables:
            options[variable] = "1"
        return
    if empty and option.kind is not Kind.OPTIONAL_VALUE:
        raise UsageError(f"Missing value for option {spelling}: write it as {spelling}=VALUE.")
    value = value or ""
    if option.kind in (Kind.NUMBER, Kind.NUMBER_OR_ZERO):
        _check_number(spelling, value, option.kind is Kind.NUMBER_OR_ZERO)
    variable = option.variables[0]
    if variable == "EASYRSA_SAN" and options.get(variable):
        options[variable] = f"{options[variable]}, {value}"
    elif variable == "EASYRSA_NS_SUPPORT":
        options[variable] = value or "yes"
    else:
        options[variable] = value
    if variable == "EASYRSA_CURVE":
        # easy-rsa picks the algorithm from the curve name, unless --use-algo
        # already chose one: `--use-algo=ed --curve=secp384r1` is an error there.
        options.setdefault("EASYRSA_ALGO", "ed" if value.startswith("ed") else "ec")


def parse_command_line(argv: list[str]) -> ParsedCommandLine:
    """Split argv into EASYRSA_* option values, the command and its arguments."""
    options: dict[str, str] = {}
    position = 0
    while position < len(argv):
        word = argv[position]
        spelling, equals, value = word.partition("=")
        if spelling == "--version":
            return ParsedCommandLine(options, "version", [])
        if spelling in ("-h", "--help", "--usage"):
            return ParsedCommandLine(options, "help", [])
        if not word.startswith("-"):
            break
        option = _BY_SPELLING.get(spelling)
        if option is None:
            raise UsageError(f"Unknown option '{spelling}'. Run 'easyrsa help options' for the list.")
        _apply(option, spelling, value if equals else None, options)
        position += 1
    command = argv[position] if position < len(argv) else ""
    return ParsedCommandLine(options, command, argv[position + 1 :])
