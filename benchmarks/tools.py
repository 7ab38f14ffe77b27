"""The two programs compared, and the machine they run on."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import ssl
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reference import reference_easyrsa

REPO_ROOT = Path(__file__).resolve().parent.parent
CONSOLE_SCRIPT = "easyrsa-py"
REFERENCE_VERSION = "3.2.7"


@dataclass(frozen=True)
class Tool:
    """A command line that runs one easy-rsa implementation."""

    label: str
    command: tuple[str, ...]
    description: str
    extra_env: dict[str, str] = field(default_factory=dict)

    def argv(self, pki: Path, *arguments: str) -> list[str]:
        """Build the command line for one easy-rsa command on ``pki``."""
        return [*self.command, "--batch", f"--pki={pki}", *arguments]


def installed_console_script() -> Path | None:
    """Return easyrsa_py's console script in this environment, if installed."""
    try:
        importlib.metadata.distribution("easyrsa_py")
    except importlib.metadata.PackageNotFoundError:
        return None
    script = Path(sysconfig.get_path("scripts")) / CONSOLE_SCRIPT
    return script if os.access(script, os.X_OK) else None


def easyrsa_py_tool() -> Tool:
    """Run easyrsa_py as a user does: the console script, else ``python -m``."""
    script = installed_console_script()
    if script is not None:
        return Tool("easyrsa_py", (str(script),), f"console script {script}")

    command = (sys.executable, "-m", "easyrsa_py")
    if importlib.util.find_spec("easyrsa_py") is not None:
        return Tool(
            "easyrsa_py", command, f"{' '.join(command)} (not installed as a script)"
        )
    # The package is not installed, so the runs import it from this checkout.
    return Tool(
        "easyrsa_py",
        command,
        f"{' '.join(command)} with PYTHONPATH={REPO_ROOT} (not installed)",
        {"PYTHONPATH": str(REPO_ROOT)},
    )


def reference_tool() -> Tool:
    script = reference_easyrsa(REFERENCE_VERSION) / "easyrsa"
    return Tool("easy-rsa", (str(script),), f"easy-rsa {REFERENCE_VERSION} at {script}")


def clean_env(home: Path, tool: Tool) -> dict[str, str]:
    """Build the same small environment for both tools.

    The environment contains none of the caller's EASYRSA_* variables, so
    both tools take their settings from the command line and the PKI.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
    }
    env.update(tool.extra_env)
    return env


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return platform.processor() or "unknown"
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown"


def openssl_cli_version() -> str:
    if shutil.which("openssl") is None:
        return "not installed"
    result = subprocess.run(
        ["openssl", "version"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or result.stderr.strip()


def cryptography_versions() -> str:
    try:
        import cryptography
        from cryptography.hazmat.backends.openssl.backend import backend
    except ImportError:
        return "not importable"
    return f"{cryptography.__version__} on {backend.openssl_version_text()}"


def machine_info() -> dict[str, Any]:
    """Describe the machine and the software versions the figures depend on."""
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": f"{platform.python_version()} ({sys.executable})",
        "python_ssl": ssl.OPENSSL_VERSION,
        "openssl_cli": openssl_cli_version(),
        "cryptography": cryptography_versions(),
    }
