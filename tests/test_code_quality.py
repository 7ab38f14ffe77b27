"""The package passes mypy and ruff, as STYLE.md asks of every change."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


def test_mypy_clean():
    pytest.importorskip("mypy")
    result = _run(sys.executable, "-m", "mypy", "easyrsa_py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed; pip install -e '.[test]' installs it")
    result = _run(ruff, "check", "easyrsa_py")
    assert result.returncode == 0, result.stdout + result.stderr
