"""Exceptions raised by easyrsa_py, each carrying the exit code the CLI uses.

Every error a user can cause derives from `EasyRSAError`. The CLI prints
`str(error)` and exits with `error.exit_code`; nothing else decides exit
codes. Built-in exceptions are left for programming mistakes.
"""

from __future__ import annotations

from pathlib import Path

# easy-rsa exits 1 for every user error and failed command, and reserves 17
# for a lock file it could not take or remove.
EXIT_ERROR = 1
EXIT_LOCK = 17


class EasyRSAError(Exception):
    """Base class: a failure with a message the user can act on."""

    exit_code = EXIT_ERROR


class UsageError(EasyRSAError):
    """The command line is invalid: unknown option or command, missing value."""


class ConfirmationAborted(EasyRSAError):
    """The user answered a confirmation prompt with anything but the word asked for."""

    def __init__(self) -> None:
        super().__init__("Aborting without confirmation.")


class PKINotFound(EasyRSAError):
    """The PKI folder, or a file every command needs in it, does not exist."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


class CANotFound(PKINotFound):
    """The PKI has no CA certificate or key yet."""


class FileFormatError(EasyRSAError):
    """A PKI file cannot be parsed. `line` is 1-based, or None for the whole file."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"Invalid {path.name} at {where}: {message}")
        self.path = path
        self.line = line
        self.reason = message


class VarsError(EasyRSAError):
    """A vars file contains shell code or settings easyrsa_py will not run."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


class LockHeld(EasyRSAError):
    """Another process holds pki/lock.file."""

    exit_code = EXIT_LOCK

    def __init__(self, path: Path, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.pid = pid


class CertificateNotFound(EasyRSAError):
    """No certificate file exists where the command expects one."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


class RevocationConflict(EasyRSAError):
    """Revocation would overwrite a file, or the certificate is already revoked."""


class PassphraseError(EasyRSAError):
    """A passphrase source is invalid or the passphrase does not open the key."""


class CryptoMismatch(EasyRSAError):
    """Keys, certificates or CRLs that must belong together do not."""
