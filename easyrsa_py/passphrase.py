"""Passphrase sources in OpenSSL's `-passin` syntax, as easy-rsa passes them on.

`pass:TEXT`, `env:VAR`, `file:PATH`, `fd:N` and `stdin` read the passphrase
the way OpenSSL's `app_passwd` does: the whole text after `pass:`, the
variable's value, or the first line of the file, descriptor or standard
input without its line ending. A passphrase never reaches a log message.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from easyrsa_py.errors import PassphraseError

# OpenSSL reads at most this many bytes of a passphrase line (PEM_BUFSIZE).
_MAX_LINE = 1024


# OpenSSL's app_passwd reads a line with BIO_gets() into a 1024-byte buffer,
# so it keeps at most the first 1023 bytes of a long line.
_OPENSSL_LINE_BYTES = 1023


def _first_line(data: bytes) -> bytes:
    # OpenSSL ends the line at '\n' and keeps a '\r' before it, so a
    # passphrase file with CRLF endings has the '\r' in the passphrase.
    return data[:_OPENSSL_LINE_BYTES].split(b"\n", 1)[0]


def read_line_unbuffered(fd: int) -> bytes | None:
    """Read one line from a file descriptor a byte at a time, or None at end of input.

    Reading byte by byte leaves the rest of the input unread, so a
    confirmation answer and a passphrase can arrive on one stream, one line
    each, as with easy-rsa.
    """
    chunks: list[bytes] = []
    while len(chunks) <= _MAX_LINE:
        chunk = os.read(fd, 1)
        if not chunk:
            return b"".join(chunks) if chunks else None
        if chunk == b"\n":
            break
        chunks.append(chunk)
    return b"".join(chunks)


# Descriptor numbers fit a C int, which has at most 10 digits.
_MAX_FD_DIGITS = 10


def _read_fd_line(fd: int, source: str) -> bytes:
    try:
        line = read_line_unbuffered(fd)
    except (OSError, OverflowError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not a valid descriptor"
        raise PassphraseError(f"Cannot read the passphrase from {source}: {reason}.") from None
    return _first_line(line or b"")


def read_passphrase(source: str) -> bytes:
    """Return the passphrase that an OpenSSL-style `source` names."""
    kind, _, value = source.partition(":")
    if kind == "pass" and source.startswith("pass:"):
        # os.fsencode restores bytes that are not UTF-8, as OpenSSL takes them.
        return os.fsencode(value)
    if kind == "env" and source.startswith("env:"):
        if not value:
            raise PassphraseError("Invalid passphrase source 'env:': name the variable, as in env:CA_PASS.")
        if os.fsencode(value) not in os.environb:
            raise PassphraseError(f"The passphrase variable '{value}' (from env:{value}) is not set.")
        return os.environb[os.fsencode(value)]
    if kind == "file" and source.startswith("file:"):
        try:
            with open(value, "rb") as handle:
                data = handle.read(_MAX_LINE + 2)
        except OSError as error:
            raise PassphraseError(
                f"Cannot read the passphrase file '{value}': {error.strerror}."
            ) from None
        return _first_line(data)
    if kind == "fd" and source.startswith("fd:"):
        # str.isdigit() also accepts digits such as '²', which int() rejects.
        if not (value.isascii() and value.isdigit()) or len(value) > _MAX_FD_DIGITS:
            raise PassphraseError(
                f"Invalid passphrase descriptor 'fd:{value}': expected a file descriptor number."
            )
        return _read_fd_line(int(value), f"file descriptor fd:{value}")
    if source == "stdin":
        return _read_fd_line(sys.stdin.fileno(), "standard input")
    raise PassphraseError(
        "Invalid passphrase source (the value of --passin or EASYRSA_PASSIN): expected "
        "pass:TEXT, env:VARIABLE, file:PATH, fd:NUMBER or stdin."
    )


def _has_terminal() -> bool:
    try:
        with open("/dev/tty", "rb"):
            return True
    except OSError:
        return False


def prompt_passphrase(key_path: Path) -> bytes:
    """Ask for a passphrase with the prompt OpenSSL uses, which expect scripts answer.

    Like OpenSSL, this asks on the terminal without echo, and reads a line
    from standard input when the process has no terminal.
    """
    missing = PassphraseError(
        f"No passphrase was given for {key_path}. Use --passin (env:, file:, fd: or stdin) to supply one."
    )
    return _first_line(read_hidden_line(f"Enter pass phrase for {key_path}:", missing))


def read_hidden_line(prompt: str, missing: PassphraseError) -> bytes:
    """Read one line after `prompt`: without echo on the terminal, else from stdin.

    This is how OpenSSL reads passphrases. Without a terminal the prompt
    still goes to stderr, for expect scripts. End of input raises `missing`.
    """
    if _has_terminal():
        try:
            return getpass.getpass(prompt).encode()
        except EOFError:
            raise missing from None
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = read_line_unbuffered(sys.stdin.fileno())
    sys.stderr.write("\n")
    if line is None:
        raise missing
    return line
