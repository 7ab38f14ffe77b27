"""The command-line interface: `easyrsa-py`, `easyrsa` and `python -m easyrsa_py`.

This module alone handles argv, stdout and exit codes. It parses easy-rsa's
global options, builds the settings, checks the PKI, takes the lock, runs
one command from the table in `easyrsa_py.commands`, and turns any
EasyRSAError into a message on stderr and the error's exit code.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from easyrsa_py import journal
from easyrsa_py.commands import (
    COMMANDS,
    NOT_YET_IMPLEMENTED,
    Command,
    Context,
    help_text,
    version_text,
)
from easyrsa_py.console import Console
from easyrsa_py.errors import EXIT_ERROR, EasyRSAError, UsageError
from easyrsa_py.files import describe_os_error
from easyrsa_py.lock import PKILock
from easyrsa_py.options import parse_command_line
from easyrsa_py.pki import PKILayout, PKINotFound, require_ca, require_pki
from easyrsa_py.settings import Settings, build_settings

logger = logging.getLogger("easyrsa_py")

EXIT_INTERRUPTED = 130


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  # %(name)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logger.propagate = False


def _run(argv: list[str], console: Console) -> int:
    parsed = parse_command_line(argv)
    _configure_logging(bool(parsed.options.get("EASYRSA_VERBOSE") or os.environ.get("EASYRSA_VERBOSE")))
    if parsed.command in ("help", ""):
        console.output(help_text(parsed.arguments[0] if parsed.arguments else None))
        return 0
    if parsed.command in ("version",):
        console.output(version_text())
        return 0
    command = COMMANDS.get(parsed.command)
    if parsed.command in NOT_YET_IMPLEMENTED:
        raise UsageError(
            f"'{parsed.command}' is an easy-rsa command that easyrsa_py does not implement yet. "
            "Run the real easy-rsa script for it; both work on the same PKI."
        )
    if command is None:
        raise UsageError(f"Unknown command '{parsed.command}'. Run 'easyrsa help' for the list of commands.")

    options = dict(parsed.options)
    days = options.pop("EASYRSA_ALIAS_DAYS", None)
    wait_lock_seconds = int(options.pop("EASYRSA_PY_WAIT_LOCK", "0"))
    if days == "0" and command.name != "show-expire":
        raise UsageError(f"Invalid --days=0 for '{command.name}': use 1 or more days.")
    if days is not None and command.days_variable:
        options[command.days_variable] = days
    environ: dict[str, str] = dict(os.environ)
    if not command.reads_vars:
        environ["EASYRSA_NO_VARS"] = "1"
    settings = build_settings(options, environ, Path.cwd())
    if settings.umask is not None:
        os.umask(settings.umask)
    console.batch = settings.batch
    console.silent = settings.silent
    if settings.vars_ignored:
        console.warn(
            f"--force-vars: these lines of {settings.vars_file} were skipped:\n"
            + "\n".join(settings.vars_ignored)
        )

    if not command.needs_pki:
        context = Context(settings=settings, layout=PKILayout(settings.pki_dir), console=console,
                          command_name=command.name)
        return _run_handler(command, context, parsed.arguments, lock_held=False)
    layout = _checked_layout(command, settings, console)
    context = Context(settings=settings, layout=layout, console=console, command_name=command.name)
    if settings.no_lockfile or not command.takes_lock:
        return _run_handler(command, context, parsed.arguments, lock_held=False)
    with PKILock(layout.root, wait_seconds=wait_lock_seconds, notify=console.alert) as lock:
        return _run_handler(command, context, parsed.arguments, lock_held=True, took_over=lock.took_over)


# Commands that take no lock and never write to the PKI. They skip the undo
# of interrupted commands, which needs the lock, and a journal folder is
# not a PKI file they read.
_READ_ONLY_COMMANDS = frozenset(
    {"display-dn", "show-eku", "x509-eku", "rand", "random", "show-host", "upload", "crl-status"}
)


def _run_handler(
    command: Command, context: Context, arguments: list[str], *, lock_held: bool, took_over: bool = False
) -> int:
    """Undo or finish interrupted commands, then run this one so that a failure undoes its changes."""
    if command.name in _READ_ONLY_COMMANDS:
        _warn_pending(command, context)
    recovered = command.name not in _READ_ONLY_COMMANDS and _recover(context.settings, context.console, lock_held)
    if (recovered or took_over) and lock_held:
        removed = journal.remove_temporary_files(context.layout.root)
        if removed:
            context.console.alert(
                f"Removed {len(removed)} temporary file(s) that the interrupted command left, such as {removed[0]}."
            )
    if recovered and command.needs_ca:
        require_ca(context.layout)
    with journal.recording(context.layout.root, notify=context.console.warn):
        return command.handler(context, arguments)


def _warn_pending(command: Command, context: Context) -> None:
    """Stop `upload` and `crl-status`, and warn other read-only commands, while a killed command is pending.

    Until the next writing command undoes or finishes it, the PKI may be
    half changed, and an upload would publish a CRL that is then undone.
    """
    pending = journal.abandoned_journals(context.layout.root)
    if not pending:
        return
    folder = pending[0][1]
    text = (
        f"A killed command left the PKI half changed ({folder}). Any writing easyrsa-py "
        "command, such as 'easyrsa update-db', undoes or finishes it first."
    )
    if command.name in ("upload", "crl-status"):
        raise EasyRSAError(f"{text} Run one, then run '{command.name}' again.")
    context.console.warn(text)


def _checked_layout(command: Command, settings: Settings, console: Console) -> PKILayout:
    """Check that the PKI (and CA) the command needs exist, undoing killed commands if they do not.

    A killed init-pki or build-ca leaves files missing until it is undone.
    """
    try:
        layout = require_pki(settings.pki_dir)
        if command.needs_ca:
            require_ca(layout)
        return layout
    except PKINotFound:
        if command.name in _READ_ONLY_COMMANDS or not _recover(settings, console, lock_held=False):
            raise
    layout = require_pki(settings.pki_dir)
    if command.needs_ca:
        require_ca(layout)
    return layout


def _recover(settings: Settings, console: Console, lock_held: bool) -> bool:
    """Undo the commands that were killed in this PKI; return whether there were any."""
    root = settings.pki_dir
    if not journal.abandoned_journals(root):
        return False
    if lock_held or settings.no_lockfile:
        messages = journal.recover(root)
    else:
        with PKILock(root, notify=console.alert):
            messages = journal.recover(root)
    for message in messages:
        console.alert(message)
    return True


def main(argv: list[str] | None = None) -> int:
    """Run one easyrsa command and return its exit code."""
    console = Console()
    try:
        return _run(sys.argv[1:] if argv is None else argv, console)
    except EasyRSAError as error:
        sys.stderr.write(f"\nError: {error}\n")
        return error.exit_code
    except OSError as error:
        sys.stderr.write(f"\nError: {describe_os_error(error)}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("\nInterrupted.\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 1
