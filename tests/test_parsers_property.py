"""Property tests for the serial file parser and the vars parser.

Any input must either parse (and a serial must survive a round trip) or
raise the project's own error, FileFormatError or VarsError. Any other
exception is a parser bug. index.txt has the same kind of test in
test_index.py.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from easyrsa_py.errors import FileFormatError, VarsError
from easyrsa_py.index import format_serial_file, parse_serial_file
from easyrsa_py.vars import parse_vars

SERIAL_PATH = Path("pki/serial")
VARS_PATH = Path("pki/vars")

# --- serial ---------------------------------------------------------------------

hex_lines = st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=40)
# Pieces of a serial file: hex digits, continuation, line endings and junk.
serial_pieces = st.lists(
    st.one_of(hex_lines, st.sampled_from(["\\\n", "\n", "\r\n", "\\", "\r", " ", "\t", "g", "-", "0x", "\x00", "é"])),
    max_size=8,
)


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_serial_arbitrary_bytes_parse_or_raise(data: bytes) -> None:
    try:
        number = parse_serial_file(data, SERIAL_PATH)
    except FileFormatError as error:
        assert error.path == SERIAL_PATH
        assert error.line is None or error.line >= 1
    else:
        assert number >= 0
        assert parse_serial_file(format_serial_file(number), SERIAL_PATH) == number


@settings(max_examples=300)
@given(serial_pieces)
def test_serial_near_valid_text_parse_or_raise(pieces: list[str]) -> None:
    data = "".join(pieces).encode("utf-8")
    try:
        number = parse_serial_file(data, SERIAL_PATH)
    except FileFormatError as error:
        assert error.line is None or error.line >= 1
    else:
        assert parse_serial_file(format_serial_file(number), SERIAL_PATH) == number


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=2**256))
def test_serial_format_round_trip(number: int) -> None:
    assert parse_serial_file(format_serial_file(number), SERIAL_PATH) == number


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=2**256), st.booleans(), st.booleans())
def test_serial_lowercase_and_crlf_accepted(number: int, lowercase: bool, crlf: bool) -> None:
    text = format_serial_file(number).decode("ascii")
    if lowercase:
        text = text.lower()
    if crlf:
        text = text.replace("\n", "\r\n")
    assert parse_serial_file(text.encode("ascii"), SERIAL_PATH) == number


# --- vars -----------------------------------------------------------------------

# Few names, so that lines often set the same name and the rules of
# set_var and force_set_var decide the result.
names = st.sampled_from(["EASYRSA_DN", "EASYRSA_REQ_CN", "EASYRSA_KEY_SIZE", "EASYRSA_X", "OTHER_NAME"])
# Values with no character that the shell or easy-rsa's second expansion
# treats specially, so their expected result is the text itself. The
# alphabet cannot spell the text screens' words, such as "EASYRSA_" or "unset".
plain_values = st.text(alphabet="abcXYZ019 .,:/@+%=-_", max_size=20)
commands = st.sampled_from(["set_var", "force_set_var"])
assignments = st.lists(st.tuples(commands, names, plain_values), max_size=8)
environments = st.dictionaries(names, plain_values, max_size=3)

# Fragments of shell syntax, valid and not, for the "parse or raise" test.
shell_fragments = st.sampled_from([
    "set_var ", "force_set_var ", "EASYRSA_X ", "NAME ", "'", '"', "\\", "\\\n", "$", "${", "}",
    "$(", ")", "`", "#", ";", "|", "&", "<", ">", "(", "if ", "then ", "fi", "\n", "\r\n", " ",
    "\t", "export ", "unset ", "=", "~", "*", "?", "[", "$HOME", "${EASYRSA:-x}", "${#X}",
    "echo x >&2", 'if [ -z "$EASYRSA_CALLER" ]; then', "return 1", "\x00", "é", "{", "\u2028",
])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(shell_fragments, max_size=20), st.booleans(), environments)
def test_vars_shell_fragments_parse_or_raise(pieces: list[str], force: bool, environ: dict[str, str]) -> None:
    text = "".join(pieces)
    try:
        result = parse_vars(text, VARS_PATH, environ=environ, force=force)
    except VarsError as error:
        assert error.path == VARS_PATH
        assert str(error)
    else:
        assert all(isinstance(value, str) for value in result.values.values())


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300), st.booleans())
def test_vars_arbitrary_text_parse_or_raise(text: str, force: bool) -> None:
    try:
        parse_vars(text, VARS_PATH, environ={}, force=force)
    except VarsError as error:
        assert error.path == VARS_PATH


def _expected_values(lines: list[tuple[str, str, str]], environ: dict[str, str]) -> dict[str, str]:
    """Apply set_var and force_set_var as easy-rsa 3.2.7 defines them (easyrsa, set_var()).

    set_var sets NAME only while it is unset, as `${NAME-value}` does.
    force_set_var unsets NAME, then sets it unless the value is empty.
    """
    values: dict[str, str] = {}
    unset: set[str] = set()
    for command, name, value in lines:
        current = values.get(name)
        if current is None and name not in unset:
            current = environ.get(name)
        if command == "set_var":
            if current is None:
                values[name] = value
                unset.discard(name)
            continue
        values.pop(name, None)
        if value:
            values[name] = value
            unset.discard(name)
        elif name in environ:
            unset.add(name)
    return values


def _quote(value: str, style: int) -> str:
    if style == 0 and value and " " not in value:
        return value
    if style == 1:
        return f"'{value}'"
    return f'"{value}"'


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(assignments, environments, st.lists(st.integers(0, 2), min_size=8, max_size=8))
def test_vars_assignments_yield_values(
    lines: list[tuple[str, str, str]], environ: dict[str, str], styles: list[int]
) -> None:
    text = "".join(
        f"{command} {name} {_quote(value, style)}\n"
        for (command, name, value), style in zip(lines, styles)
    )
    result = parse_vars(text, VARS_PATH, environ=environ)
    assert result.values == _expected_values(lines, environ)
    assert result.ignored == []
