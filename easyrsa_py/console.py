"""What the commands print and ask.

Command results (show-* output, JSON) go to stdout. Notices, warnings and
confirmation prompts go to stderr, so a script can capture the results
alone; easy-rsa prints all of them on stdout. The confirmation block keeps
easy-rsa's exact wording, because `expect` scripts and `echo yes |` pipes
answer it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from easyrsa_py.errors import ConfirmationAborted
from easyrsa_py.passphrase import read_line_unbuffered


@dataclass
class Console:
    batch: bool = False
    silent: bool = False
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    def output(self, text: str) -> None:
        """Write a command's result to stdout."""
        self.stdout.write(text if text.endswith("\n") else text + "\n")
        self.stdout.flush()

    def notice(self, text: str) -> None:
        """Write an informational message to stderr, unless --silent."""
        if not self.silent:
            self.stderr.write(f"\nNotice\n------\n{text}\n\n")
            self.stderr.flush()

    def warn(self, text: str, *, even_if_silent: bool = False) -> None:
        """Write a warning to stderr, unless --silent and the warning may be left out."""
        if not self.silent or even_if_silent:
            self.stderr.write(f"\nWARNING\n=======\n{text}\n\n")
            self.stderr.flush()

    def alert(self, text: str) -> None:
        """Write a warning that --silent does not hide: what a run did to recover from an earlier one."""
        self.warn(text, even_if_silent=True)

    def _read_answer(self) -> str:
        # A real stream is read unbuffered, so a passphrase on the next line
        # stays for the passphrase reader.
        try:
            fd = self.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return self.stdin.readline()
        line = read_line_unbuffered(fd)
        return "" if line is None else line.decode(errors="replace")

    def confirm(self, prompt: str, word: str, message: str) -> None:
        """Ask the user to type `word`, raising ConfirmationAborted otherwise.

        Batch mode skips the question. End of input counts as a refusal.
        """
        if self.batch:
            return
        self.stderr.write(f"{message}\n\nType the word '{word}' to continue, or any other input to abort.\n")
        self.stderr.write(f"  {prompt}")
        self.stderr.flush()
        answer = self._read_answer()
        self.stderr.write("\n")
        # easy-rsa reads the reply with the shell's `read`, which strips
        # leading and trailing spaces and tabs.
        if answer.rstrip("\n").strip(" \t") != word:
            raise ConfirmationAborted()
