"""Shared pytest fixtures for running the real easy-rsa beside easyrsa_py.

Fixtures:

- ``reference``: a ``ReferenceEasyRSA`` for each of 3.1.0, 3.2.2 and 3.2.7
  (the test runs once per version). ``reference.version`` is the release,
  ``reference.script_dir`` the folder with the script, and
  ``reference.run(pki_dir, *args, **kwargs)`` calls ``run_reference``.
  A version that cannot be found skips the test with a message on how to
  provide it, or fails it when CI is set.
- ``reference_for``: a function ``version -> ReferenceEasyRSA`` with the
  same skip or fail rule, for tests that pick versions themselves.
- ``pki_copy``: a function ``name -> Path`` that copies
  ``pki_fixtures/NAME/`` into ``tmp_path/NAME-N/`` (N counts copies, so a
  test can hold several) and returns the copied ``pki`` folder, with easy-rsa's modes (0700 folders, 0600 files) and the empty
  folders that git cannot store.
- ``fixture_manifest``: a function ``name -> dict`` returning
  ``pki_fixtures/NAME/fixture.json``.
- ``tree_snapshot``: ``reference.tree_snapshot``, a function
  ``(path, exclude=()) -> {relative path: (mode, sha256)}``.

Helpers importable from ``reference``: ``REFERENCE_VERSIONS``,
``reference_easyrsa(version)``, ``run_reference(version, pki_dir, *args,
env=None, input=None, check=True, batch=True, prefix=(), timeout=300)``.

With CI set (to anything but empty or "false") every reference version is
located when the session starts, and a missing one stops the session with
an error.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Lets test modules and this file import reference.py even if tests/ ever
# becomes a package, when pytest no longer adds this folder to sys.path.
TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from reference import (
    REFERENCE_VERSIONS,
    REPO_ROOT,
    ReferenceNotFound,
    ReferenceSource,
    cached_reference,
    is_ci,
    require_reference,
    run_reference,
)
from reference import tree_snapshot as snapshot_tree

logger = logging.getLogger(__name__)

FIXTURES_DIR = REPO_ROOT / "pki_fixtures"
MANIFEST_NAME = "fixture.json"
# easy-rsa runs under umask 077; git stores neither of these modes.
PKI_DIR_MODE = 0o700
PKI_FILE_MODE = 0o600


@dataclass(frozen=True)
class ReferenceEasyRSA:
    """One located reference version, with a shortcut to run it."""

    version: str
    script_dir: Path
    source: ReferenceSource

    def run(
        self, pki_dir: Path, *args: str, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        return run_reference(self.version, pki_dir, *args, **kwargs)

    def __str__(self) -> str:
        return self.version


def locate_all() -> dict[str, ReferenceSource | ReferenceNotFound]:
    results: dict[str, ReferenceSource | ReferenceNotFound] = {}
    for version in REFERENCE_VERSIONS:
        try:
            results[version] = cached_reference(version)
        except ReferenceNotFound as error:
            results[version] = error
    return results


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for version, result in locate_all().items():
        if isinstance(result, ReferenceNotFound):
            lines.append(
                f"reference easy-rsa {version}: NOT FOUND, so its tests are skipped; set "
                f"EASYRSA_REFERENCE_DIR to a folder with {version}/ holding its .deb or tree"
            )
        else:
            lines.append(f"reference {result.describe()}")
    return lines


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    # The report header, which names the sources, is hidden under -q.
    if config.get_verbosity() >= 0:
        return
    for line in pytest_report_header(config):
        terminalreporter.write_line(line)


def pytest_sessionstart(session: pytest.Session) -> None:
    if not is_ci():
        return
    missing = [
        str(result)
        for result in locate_all().values()
        if isinstance(result, ReferenceNotFound)
    ]
    if missing:
        pytest.exit(
            "CI is set and reference easy-rsa is missing:\n" + "\n".join(missing),
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


def reference_for_test(version: str) -> ReferenceEasyRSA:
    """Locate ``version``; skip the test, or fail it when CI is set."""
    source = require_reference(version)
    return ReferenceEasyRSA(version, source.script_dir, source)


@pytest.fixture(params=REFERENCE_VERSIONS)
def reference(request: pytest.FixtureRequest) -> ReferenceEasyRSA:
    request.applymarker(pytest.mark.reference)
    return reference_for_test(request.param)


@pytest.fixture
def reference_for() -> Callable[[str], ReferenceEasyRSA]:
    return reference_for_test


def restore_pki_layout(pki: Path, empty_dirs: list[str]) -> None:
    """Recreate folders and modes that a git checkout loses."""
    for relative in empty_dirs:
        (pki / relative).mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(pki):
        os.chmod(root, PKI_DIR_MODE)
        for name in files:
            os.chmod(os.path.join(root, name), PKI_FILE_MODE)


def read_manifest(name: str) -> dict[str, Any]:
    path = FIXTURES_DIR / name / MANIFEST_NAME
    if not path.is_file():
        known = sorted(p.parent.name for p in FIXTURES_DIR.glob(f"*/{MANIFEST_NAME}"))
        raise LookupError(f"No PKI fixture named {name!r} ({path}). Known: {known}")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


@pytest.fixture
def fixture_manifest() -> Callable[[str], dict[str, Any]]:
    return read_manifest


@pytest.fixture
def pki_copy(tmp_path: Path) -> Callable[[str], Path]:
    copies = itertools.count(1)

    def copy(name: str) -> Path:
        manifest = read_manifest(name)
        # Numbered, so one test can hold several copies of the same PKI.
        target = tmp_path / f"{name}-{next(copies)}"
        shutil.copytree(FIXTURES_DIR / name, target, symlinks=True)
        pki = target / "pki"
        restore_pki_layout(pki, manifest.get("empty_dirs", []))
        return pki

    return copy


@pytest.fixture
def tree_snapshot() -> Callable[..., dict[str, tuple[int, str | None]]]:
    return snapshot_tree
