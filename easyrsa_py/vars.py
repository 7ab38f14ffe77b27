"""Read easy-rsa ``vars`` files as data, never as shell code.

easy-rsa sources its vars file with the shell. easyrsa_py instead reads the
small subset of shell that vars files are meant to contain:

- ``set_var NAME value`` and ``force_set_var NAME value``, where the value
  is unquoted, "double-quoted" or 'single-quoted' (or several of these
  joined), and may refer to ``$NAME`` or ``${NAME}``;
- comments, including ``#`` after whitespace at the end of a line, blank
  lines, tabs, and lines continued with a backslash;
- the guard block that every vars.example from 3.0.0 to 3.2.7 contains,
  ``if [ -z "$EASYRSA_CALLER" ]; then echo ... >&2; return 1; fi``.

easy-rsa 3.2.7's set_var evaluates each value a second time, so
``'$HOME'`` expands even in single quotes. The parser does the same (see
``_expand_again``), and the tests compare its results with the real script.

Everything else is reported with its line number: command and backtick
substitution, ``export``, ``unset``, ``NAME=value``, ``if``/``case``/loops
and functions, ``;``, pipes, redirections, and any other command. The
``force`` flag (``--force-vars``) turns these reports into skipped lines.
It never skips ``EASYRSA_PASSIN``/``EASYRSA_PASSOUT`` or a malformed
``set_var``, which easy-rsa 3.2.7 also rejects under ``--force-vars``.
A set_var line that only easy-rsa's whole-line text screen objects to
(such as ``set_var EASYRSA_REQ_ORG "Sunset Co"``, which contains
"unset ") is applied under ``force``, as easy-rsa applies it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from easyrsa_py.errors import VarsError

logger = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_BLANKS = " \t"
_OPERATOR_CHARS = ";&|<>()"
_WORD_END = _BLANKS + "\n" + _OPERATOR_CHARS
_GLOB_CHARS = "*?["
_SET_COMMANDS = ("set_var", "force_set_var")
_EVAL_ESCAPES = '$\\"`}'
_PASSPHRASE_NAMES = ("EASYRSA_PASSIN", "EASYRSA_PASSOUT")

# easy-rsa 3.2.7 (source_vars) greps every line that does not start with
# '#' for these, even inside values and trailing comments. easyrsa_py
# applies the same screen so that a file is accepted or rejected alike.
_TEXT_SCREENS = (
    (re.compile(r"`"), "a backtick (command substitution)", "remove the backtick"),
    (
        re.compile(r"EASYRSA_[_A-Z]*="),
        "an assignment with '='",
        "write 'set_var NAME value' instead",
    ),
    (re.compile(r"export[ \t]"), "'export'", "remove 'export' or use set_var"),
    (
        re.compile(r"unset[ \t]"),
        "'unset'",
        "remove 'unset', or clear the variable with 'force_set_var NAME \"\"'",
    ),
)

_BACKTICK_REASON = (
    "a backtick (command substitution) is not permitted; remove the backtick"
)

# Reserved words and brace groups that open and close a compound command,
# counted so that a skipped 'if ... fi' is skipped as a whole.
_BLOCK_OPENERS = frozenset({"if", "case", "for", "while", "until", "{"})
_BLOCK_CLOSERS = frozenset({"fi", "esac", "done", "}"})
_COMMAND_STARTERS = frozenset({"then", "do", "else", "elif", "{"})

_GUARD_IF = re.compile(r'[ \t]*if \[ -z "\$EASYRSA_CALLER" \]; then[ \t]*')
_GUARD_ECHO = re.compile(r"""[ \t]*echo ("[^"`$\\]*"|'[^']*') >&2[ \t]*""")
_GUARD_RETURN = re.compile(r"[ \t]*return 1[ \t]*")
_GUARD_FI = re.compile(r"[ \t]*fi[ \t]*")


@dataclass(frozen=True)
class VarsFile:
    """The result of reading one vars file.

    ``values`` contains the assignments that took effect, in the order they
    were last made. ``unset`` names the environment variables that
    ``force_set_var NAME ""`` cleared and no later line set again: they no
    longer count as set. ``ignored`` describes each line that ``force``
    skipped, with its line number.
    """

    path: Path
    values: dict[str, str]
    ignored: list[str]
    unset: frozenset[str] = field(default_factory=frozenset)


@dataclass
class _Word:
    value: str
    literal: bool  # unquoted, unescaped and without expansions
    expanded: bool  # contains at least one $NAME expansion
    unsafe: str | None  # why the shell would split or glob this word


@dataclass
class _Statement:
    """One logical line: its words and operators, or what made it invalid."""

    first_line: int
    last_line: int
    tokens: list[_Word | str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Findings of easy-rsa's whole-line screen. --force-vars lets a line
    # with only these through, as easy-rsa does.
    screened: list[str] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)


_EMPTY_WORD = _Word("", literal=True, expanded=False, unsafe=None)


class _Problem(Exception):
    """A construct the scanner rejects; scanning resumes after it."""

    def __init__(self, message: str, resume: int) -> None:
        super().__init__(message)
        self.resume = resume


class _Scanner:
    """Split vars text into statements, expanding $NAME as it goes."""

    def __init__(self, text: str, lookup: _Lookup) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lookup = lookup

    def next_statement(self) -> _Statement | None:
        """Read the next logical line, or return None at the end of the text."""
        if self.pos >= len(self.text):
            return None
        statement = _Statement(self.line, self.line)
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\n":
                statement.last_line = self.line
                self.advance(1)
                return statement
            if char in _BLANKS:
                self.pos += 1
            elif self.text.startswith("\\\n", self.pos):
                self.advance(2)
            elif char == "#":
                self.skip_comment()
            elif char in _OPERATOR_CHARS:
                statement.tokens.append(self.read_operator())
            else:
                self.read_word_into(statement)
        statement.last_line = self.line
        return statement

    def advance(self, count: int) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + count)
        self.pos += count

    def skip_comment(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end

    def read_operator(self) -> str:
        two = self.text[self.pos : self.pos + 2]
        if two in ("&&", "||", ";;", ">>", "<<", "<&", ">&"):
            self.pos += 2
            return two
        self.pos += 1
        return two[0]

    def read_word_into(self, statement: _Statement) -> None:
        try:
            statement.tokens.append(self.read_word())
        except _Problem as problem:
            statement.problems.append(str(problem))
            self.advance(problem.resume - self.pos)

    def read_word(self) -> _Word:
        parts: list[str] = []
        word = _Word("", literal=True, expanded=False, unsafe=None)
        if self.text.startswith("~", self.pos):
            parts.append(self.read_tilde(word))
        while self.pos < len(self.text) and self.text[self.pos] not in _WORD_END:
            parts.append(self.read_word_part(word))
        word.value = "".join(parts)
        return word

    def read_word_part(self, word: _Word) -> str:
        char = self.text[self.pos]
        if char == "'":
            word.literal = False
            return self.read_single_quoted()
        if char == '"':
            word.literal = False
            return self.read_double_quoted(word)
        if char == "\\":
            word.literal = False
            return self.read_escape(quoted=False)
        if char == "$":
            return self.read_unquoted_expansion(word)
        if char == "`":
            raise _Problem(_BACKTICK_REASON, self.skip_backticks(self.pos))
        if char in _GLOB_CHARS:
            word.unsafe = f"the unquoted '{char}' is a shell wildcard"
        self.pos += 1
        return char

    def read_tilde(self, word: _Word) -> str:
        match = re.compile(r"~([A-Za-z0-9_.-]*)").match(self.text, self.pos)
        assert match is not None
        end = match.end()
        if match.group(1) or (
            end < len(self.text) and self.text[end] not in "/" + _WORD_END
        ):
            raise _Problem(
                f"'~{match.group(1)}' names another user's home folder; "
                "write the full path",
                end,
            )
        word.literal = False
        self.pos = end
        return self.lookup("HOME")

    def read_single_quoted(self) -> str:
        end = self.text.find("'", self.pos + 1)
        if end < 0:
            raise _Problem("a single quote (') is never closed", len(self.text))
        value = self.text[self.pos + 1 : end]
        self.advance(end + 1 - self.pos)
        return value

    def read_double_quoted(self, word: _Word) -> str:
        try:
            return self.read_double_quoted_text(word)
        except _Problem as problem:
            # Resume after the closing quote, so the rest of the string is
            # not read as the start of another quoted string.
            raise _Problem(str(problem), self.find_quote_end(problem.resume)) from None

    def read_double_quoted_text(self, word: _Word) -> str:
        self.pos += 1
        parts: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(parts)
            if char == "\\":
                parts.append(self.read_escape(quoted=True))
            elif char == "$":
                parts.append(self.read_expansion(word))
            elif char == "`":
                raise _Problem(_BACKTICK_REASON, self.skip_backticks(self.pos))
            else:
                self.advance(1)
                parts.append(char)
        raise _Problem('a double quote (") is never closed', len(self.text))

    def read_escape(self, *, quoted: bool) -> str:
        following = self.text[self.pos + 1 : self.pos + 2]
        if following == "\n":
            self.advance(2)
            return ""
        if not following:
            self.pos += 1
            return "\\"
        self.pos += 2
        # Inside double quotes a backslash only escapes $ ` " and itself.
        if quoted and following not in '$`"\\':
            return "\\" + following
        return following

    def read_unquoted_expansion(self, word: _Word) -> str:
        word.literal = False
        value = self.read_expansion(word)
        if any(blank in value for blank in " \t\n"):
            word.unsafe = "an unquoted $ expansion contains blanks"
        elif any(char in value for char in _GLOB_CHARS):
            word.unsafe = "an unquoted $ expansion contains a shell wildcard"
        return value

    def read_expansion(self, word: _Word) -> str:
        rest = self.text[self.pos + 1 :]
        name_match = _NAME.match(rest)
        if name_match:
            word.expanded = True
            self.pos += 1 + name_match.end()
            return self.lookup(name_match.group())
        if rest.startswith("("):
            raise _Problem(
                "'$(' (command substitution or arithmetic) is shell code",
                self.skip_parentheses(self.pos + 1),
            )
        if rest.startswith("{"):
            return self.read_braced_expansion(word, rest)
        if rest[:1] and rest[0] in "0123456789@*#?$!-":
            raise _Problem(
                f"'${rest[0]}' is a special shell parameter with no value in a "
                "vars file",
                self.pos + 2,
            )
        self.pos += 1
        return "$"

    def read_braced_expansion(self, word: _Word, rest: str) -> str:
        close = rest.find("}")
        if close < 0:
            raise _Problem("'${' is never closed with '}'", len(self.text))
        inner = rest[1:close]
        resume = self.pos + 1 + close + 1
        if _NAME.fullmatch(inner):
            word.expanded = True
            self.pos = resume
            return self.lookup(inner)
        if inner == "0%/*":
            raise _Problem(
                "'${0%/*}' is the folder of the easyrsa shell script, which "
                "easyrsa_py does not have; write that folder's path instead",
                resume,
            )
        raise _Problem(
            f"'${{{inner}}}' is a shell parameter expansion; only $NAME and "
            "${NAME} are supported",
            resume,
        )

    def find_quote_end(self, start: int) -> int:
        index = start
        while index < len(self.text):
            if self.text[index] == "\\":
                index += 2
            elif self.text[index] == '"':
                return index + 1
            else:
                index += 1
        return len(self.text)

    def skip_parentheses(self, start: int) -> int:
        depth = 0
        for index in range(start, len(self.text)):
            if self.text[index] == "(":
                depth += 1
            elif self.text[index] == ")":
                depth -= 1
                if depth == 0:
                    return index + 1
        return len(self.text)

    def skip_backticks(self, start: int) -> int:
        end = self.text.find("`", start + 1)
        return len(self.text) if end < 0 else end + 1


class _Lookup:
    """Variables visible to the vars file: earlier values, then the environment."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.values: dict[str, str] = {}
        self.unset: set[str] = set()

    def __call__(self, name: str) -> str:
        return self.current(name) or ""

    def current(self, name: str) -> str | None:
        if name in self.values:
            return self.values[name]
        if name in self.unset:
            return None
        return self.environ.get(name)

    def set_var(self, name: str, value: str) -> None:
        if self.current(name) is None:
            self.values[name] = value
            self.unset.discard(name)

    def force_set_var(self, name: str, value: str) -> None:
        self.values.pop(name, None)
        if value:
            self.values[name] = value
            self.unset.discard(name)
        elif name in self.environ:
            self.unset.add(name)


def parse_vars(
    text: str, path: Path, *, environ: Mapping[str, str], force: bool = False
) -> VarsFile:
    """Read a vars file's assignments without running it.

    ``environ`` is the environment that easy-rsa would source the file in:
    the process environment with the command-line options applied, since
    easy-rsa exports options before it reads vars. A ``$NAME`` reference
    expands to the value an earlier line of the file gave NAME, else to
    ``environ[NAME]``, else to an empty string. Other variables of the
    easyrsa script itself (such as ``$0``) are not available.

    ``set_var NAME value`` takes effect only if NAME is neither in
    ``environ`` nor set by an earlier line. An empty value still counts as
    set, as with the shell's ``${NAME-value}``. ``force_set_var NAME value``
    always takes effect. With an empty value, it clears NAME, and the name
    goes into ``VarsFile.unset`` if ``environ`` has it. So the settings in
    effect are ``environ`` minus ``unset``, updated with ``values``.

    Raises VarsError listing every rejected line, with its number, text and
    the fix. With ``force``, rejected lines are skipped and described in
    ``ignored`` instead, except the errors that easy-rsa never forgives.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    lookup = _Lookup(environ)
    scanner = _Scanner(_blank_guard_block(lines), lookup)

    ignored: list[str] = []
    # Line number and note of each error, so they can be listed in order.
    errors: list[tuple[int, str]] = []
    while (statement := scanner.next_statement()) is not None:
        _screen_lines(statement, lines)
        _evaluate(statement, lookup, apply=force or not statement.screened)
        errors.extend(_fatal_notes(statement, lines))
        if statement.problems:
            last_line = _skip_block(scanner, statement, lines, errors)
            note = _describe_lines(statement, last_line, lines)
            if force:
                ignored.append(note)
            else:
                errors.append((statement.first_line, note))
        elif statement.screened:
            note = _describe_lines(statement, statement.last_line, lines)
            if force:
                logger.info("Applied in %s (--force-vars): %s", path, note)
            else:
                errors.append((statement.first_line, note))

    if errors:
        notes = [note for _, note in sorted(errors, key=lambda error: error[0])]
        raise VarsError(path, _error_message(path, notes, force))
    for note in ignored:
        logger.info("Ignored in %s (--force-vars): %s", path, note)
    return VarsFile(path, dict(lookup.values), ignored, frozenset(lookup.unset))


def _blank_guard_block(lines: list[str]) -> str:
    """Blank out the vars.example guard against sourcing the file directly."""
    remaining = list(lines)
    index = 0
    while index < len(remaining):
        end = _guard_end(remaining, index)
        if end is None:
            index += 1
            continue
        for line_index in range(index, end + 1):
            remaining[line_index] = ""
        index = end + 1
    return "\n".join(remaining)


def _guard_end(lines: list[str], start: int) -> int | None:
    if not _GUARD_IF.fullmatch(lines[start]):
        return None
    returned = False
    for index in range(start + 1, len(lines)):
        line = lines[index]
        if _GUARD_FI.fullmatch(line):
            return index if returned else None
        if _GUARD_RETURN.fullmatch(line):
            returned = True
        elif not _GUARD_ECHO.fullmatch(line):
            return None
    return None


def _screen_lines(statement: _Statement, lines: list[str]) -> None:
    """Apply easy-rsa's whole-line checks to the statement's non-comment lines."""
    for line in lines[statement.first_line - 1 : statement.last_line]:
        if line.lstrip(_BLANKS).startswith("#"):
            continue
        for name in _PASSPHRASE_NAMES:
            reason = (
                f"{name} is not permitted in a vars file, even with "
                "--force-vars; give passphrases with --passin/--passout"
            )
            if name in line and reason not in statement.fatal:
                statement.fatal.append(reason)
        for pattern, construct, fix in _TEXT_SCREENS:
            reason = f"{construct} is not permitted; {fix}"
            known = statement.problems + statement.screened
            if pattern.search(line) and reason not in known:
                statement.screened.append(reason)


def _evaluate(statement: _Statement, lookup: _Lookup, *, apply: bool) -> None:
    """Apply a statement, or record in it why it cannot be applied.

    With ``apply`` false the statement is only checked.
    """
    if statement.problems or statement.fatal or not statement.tokens:
        return

    operators = [token for token in statement.tokens if isinstance(token, str)]
    first = statement.tokens[0]
    if isinstance(first, _Word) and first.literal and first.value in _BLOCK_OPENERS:
        statement.problems.append(
            f"'{first.value}' starts a shell compound command; a vars file may "
            "only use set_var and force_set_var"
        )
    elif operators:
        statement.problems.append(
            f"the shell operator '{operators[0]}' is not supported; "
            "write one set_var per line"
        )
    elif not isinstance(first, _Word) or not first.literal:
        statement.problems.append(
            "a command name must be written literally; use set_var NAME value"
        )
    elif _ASSIGNMENT.match(first.value):
        name = first.value.split("=", 1)[0]
        statement.problems.append(
            f"'{name}=' is a shell assignment; write 'set_var {name} value' instead"
        )
    elif first.value in _SET_COMMANDS:
        _apply_set_command(statement, lookup, apply=apply)
    else:
        statement.problems.append(
            f"'{first.value}' is a shell command; a vars file may only use "
            "set_var and force_set_var"
        )


def _apply_set_command(statement: _Statement, lookup: _Lookup, *, apply: bool) -> None:
    words = [token for token in statement.tokens if isinstance(token, _Word)]
    command = words[0].value
    arguments = words[1:]
    if not arguments:
        if command == "force_set_var":
            statement.fatal.append("force_set_var needs a variable name")
        return
    if len(arguments) > 2:
        statement.fatal.append(
            f"{command} takes a name and one value; put the value in double "
            'quotes, as in set_var NAME "two words"'
        )
        return

    name_word = arguments[0]
    if name_word.expanded:
        statement.problems.append(
            f"the variable name must be written out; write {command} NAME value"
        )
        return
    if not _NAME.fullmatch(name_word.value):
        statement.fatal.append(
            f"'{name_word.value}' is not a valid variable name; write "
            f"{command} NAME value"
        )
        return

    value_word = arguments[1] if len(arguments) == 2 else _EMPTY_WORD
    if value_word.unsafe:
        statement.problems.append(
            f"{value_word.unsafe}; put the value in double quotes"
        )
        return
    try:
        value = _expand_again(value_word.value, lookup)
    except _Problem as problem:
        statement.problems.append(str(problem))
        return
    if not apply:
        return
    if command == "set_var":
        lookup.set_var(name_word.value, value)
    else:
        lookup.force_set_var(name_word.value, value)


def _expand_again(value: str, lookup: _Lookup) -> str:
    """Apply the second expansion that easy-rsa's set_var gives every value.

    easy-rsa 3.2.7 passes the value through ``eval`` inside a double-quoted
    ``${NAME-value}``, so even a single-quoted '$HOME' expands, and a
    backslash before $ \\ " ` or } is removed. An unescaped " or } would
    end that expansion early and a backtick would run a command, so such
    values are rejected.
    """
    parts: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        following = value[index + 1 : index + 2]
        if char == "\\" and following and following in _EVAL_ESCAPES:
            parts.append(following)
            index += 2
        elif char == "$":
            text, index = _expand_again_reference(value, index, lookup)
            parts.append(text)
        elif char in '"}`':
            raise _Problem(
                f"the value contains an unescaped {char!r}, which easy-rsa's "
                f"set_var cannot store; write it as \\{char} inside single quotes",
                0,
            )
        else:
            parts.append(char)
            index += 1
    return "".join(parts)


def _expand_again_reference(value: str, index: int, lookup: _Lookup) -> tuple[str, int]:
    rest = value[index + 1 :]
    name = _NAME.match(rest)
    if name:
        return lookup(name.group()), index + 1 + name.end()
    braced = re.match(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", rest)
    if braced:
        return lookup(braced.group(1)), index + 1 + braced.end()
    if rest and rest[0] in "({0123456789@*#?$!-":
        raise _Problem(
            f"the value contains '${rest[0]}', which easy-rsa's set_var would "
            "run or expand; write it as \\$ inside single quotes",
            0,
        )
    return "$", index + 1


def _skip_block(
    scanner: _Scanner,
    statement: _Statement,
    lines: list[str],
    errors: list[tuple[int, str]],
) -> int:
    """Skip the rest of a compound command such as 'if ... fi'.

    Returns the last line skipped. Passphrase lines inside the block still
    go into ``errors``.
    """
    last_line = statement.last_line
    depth = _block_depth_change(statement)
    while depth > 0 and (inner := scanner.next_statement()) is not None:
        _screen_lines(inner, lines)
        errors.extend(_fatal_notes(inner, lines))
        depth += _block_depth_change(inner)
        last_line = inner.last_line
    return last_line


def _block_depth_change(statement: _Statement) -> int:
    change = 0
    at_command = True
    for token in statement.tokens:
        if isinstance(token, str):
            at_command = True
            continue
        if at_command and token.literal:
            if token.value in _BLOCK_OPENERS:
                change += 1
            elif token.value in _BLOCK_CLOSERS:
                change -= 1
        at_command = token.literal and token.value in _COMMAND_STARTERS
    return change


def _quoted_line(text: str) -> str:
    """Return the line for a message, or a placeholder if it may contain a passphrase."""
    if any(name in text for name in _PASSPHRASE_NAMES):
        return "(text not shown: it sets a passphrase)"
    return repr(text)


def _describe_lines(statement: _Statement, last_line: int, lines: list[str]) -> str:
    first = statement.first_line
    where = f"line {first}" if last_line <= first else f"lines {first}-{last_line}"
    text = _quoted_line(lines[first - 1].strip())
    reasons = statement.problems + statement.screened
    return f"{where}: {text}: {'; '.join(reasons)}"


def _fatal_notes(statement: _Statement, lines: list[str]) -> list[tuple[int, str]]:
    text = _quoted_line(lines[statement.first_line - 1].strip())
    first = statement.first_line
    return [(first, f"line {first}: {text}: {message}") for message in statement.fatal]


def _error_message(path: Path, notes: list[str], force: bool) -> str:
    listed = "\n".join(f"  {note}" for note in notes)
    advice = "Correct these lines and try again."
    if not force:
        advice = (
            "Correct these lines and try again, or run with --force-vars to "
            "skip the lines that are shell code."
        )
    return f"The vars file {path} cannot be used:\n{listed}\n{advice}"
