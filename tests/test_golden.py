"""Golden files for the text users read: help, show-* reports and common error messages.

Each tests/golden/*.yml file contains the inputs of one run (``args``, and
optionally ``fixture``, ``pki``, ``now``) and the recorded ``exit_code``,
``stdout`` and ``stderr``. tests/golden/commands/help_each_command.yml
records ``help COMMAND`` (its ``args`` followed by the command's name) for
every command in easyrsa_py.commands.COMMANDS.

The runs call easyrsa_py.cli.main in-process with EASYRSA_BATCH=1 and
every command enabled, as if NOT_YET_IMPLEMENTED were empty. The PKI path
is replaced by ``<PKI>`` in the output. After a deliberate change of wording, regenerate
the outputs and review the diff:

    python -m pytest tests/test_golden.py --update-goldens
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import restore_pki_layout
from reference import REPO_ROOT

from easyrsa_py import commands, status
from easyrsa_py.cli import main

FIXTURES_DIR = REPO_ROOT / "pki_fixtures"
PKI_MARKER = "<PKI>"


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """Give main() a clean environment and working folder, and restore the umask it sets."""
    for name in list(os.environ):
        if name.startswith(("EASYRSA", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("EASYRSA_BATCH", "1")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    umask = os.umask(0o077)
    os.umask(umask)
    yield monkeypatch
    os.umask(umask)


def prepare_pki(inputs: Any, tmp_path: Path) -> Path:
    """Build the PKI a case names: a fixture copy, an initialised PKI without a CA, or none."""
    pki = tmp_path / "pki"
    fixture = inputs.get("fixture")
    if fixture is not None:
        shutil.copytree(FIXTURES_DIR / fixture / "pki", pki)
        restore_pki_layout(pki, [])
    elif inputs.get("pki") == "without-ca":
        (pki / "private").mkdir(parents=True)
        (pki / "reqs").mkdir()
    return pki


class FrozenDatetime(datetime):
    """A datetime whose now() returns the time a golden case fixes."""

    frozen: datetime

    @classmethod
    def now(cls, tz: Any = None) -> FrozenDatetime:  # type: ignore[override]
        return cls.frozen  # type: ignore[return-value]


def run_main(args: list[str], pki: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    monkeypatch.setenv("EASYRSA_PKI", str(pki))
    exit_code = main(args)
    captured = capsys.readouterr()
    return Run(
        exit_code,
        captured.out.replace(str(pki), PKI_MARKER),
        captured.err.replace(str(pki), PKI_MARKER),
    )


@pytest.mark.golden_test("golden/*.yml")
def test_golden_output(
    golden: Any, isolated: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = prepare_pki(golden, tmp_path)
    now = golden.get("now")
    if now is not None:
        # show-expire compares end dates with the current time.
        FrozenDatetime.frozen = datetime.fromisoformat(now).astimezone(UTC)
        isolated.setattr(status, "datetime", FrozenDatetime)
    run = run_main([str(arg) for arg in golden["args"]], pki, isolated, capsys)
    assert run.exit_code == golden.out["exit_code"]
    assert run.stdout == golden.out["stdout"]
    assert run.stderr == golden.out["stderr"]


@pytest.mark.golden_test("golden/commands/help_each_command.yml")
def test_golden_help_each_command(
    golden: Any, isolated: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = {}
    for name in sorted(commands.COMMANDS):
        run = run_main([*golden["args"], name], tmp_path / "pki", isolated, capsys)
        recorded[name] = {"exit_code": run.exit_code, "stdout": run.stdout, "stderr": run.stderr}
    assert recorded == golden.out["help"]
