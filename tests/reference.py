"""Locate, unpack and run the real easy-rsa that easyrsa_py is compared with.

The tests run easy-rsa 3.1.0, 3.2.2 and 3.2.7 beside easyrsa_py. Each
version is taken from the first of these sources that has it:

1. ``$EASYRSA_REFERENCE_DIR/VERSION/``: an easy-rsa tree (``easyrsa``,
   ``openssl-easyrsa.cnf``, ``x509-types/``, directly or under
   ``usr/share/easy-rsa/``), or ``easy-rsa_VERSION-1_all.deb``.
2. ``apt-get download easy-rsa=VERSION-1`` into ``.reference/apt/``. This
   only works for versions the machine's apt sources offer, so a failure
   moves on to the next source.
3. ``easy-rsa_VERSION-1_all.deb`` in ``shared/reference-easyrsa/`` beside
   the repository.

A .deb is unpacked in pure Python (ar archive plus tarfile) into
``.reference/extracted/``, so no dpkg is needed. The log and the pytest
header name the source used for each version.

Public interface, for test modules (``from reference import ...``) and for
``pki_fixtures/build.py``:

- ``REFERENCE_VERSIONS``: the versions compared, oldest first.
- ``reference_easyrsa(version) -> Path``: the folder holding the ``easyrsa``
  script, located once per process. Raises ``ReferenceNotFound``.
- ``locate_reference(version, ...) -> ReferenceSource``: the locator itself,
  with every source overridable for tests of the locator.
- ``require_reference(version, environ=None, locate=...) -> ReferenceSource``:
  locate for a test; a missing version fails the test when CI is set and
  skips it otherwise.
- ``run_reference(version, pki_dir, *args, env=None, input=None, check=True,
  batch=True, prefix=(), timeout=300) -> CompletedProcess``: run the real
  script on ``pki_dir`` in a clean environment.
- ``tree_snapshot(path, exclude=()) -> dict``: relative path to
  ``(mode, sha256)`` for comparing whole PKI trees.
- ``is_ci(environ) -> bool`` and ``missing_reference_help(version)``.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import io
import logging
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

REFERENCE_VERSIONS = ("3.1.0", "3.2.2", "3.2.7")

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".reference"
SHARED_DEBS_DIR = REPO_ROOT.parent / "shared" / "reference-easyrsa"
ENV_VAR = "EASYRSA_REFERENCE_DIR"

# Files that make a folder usable as an easy-rsa installation.
TREE_MEMBERS = ("easyrsa", "openssl-easyrsa.cnf", "x509-types")
# Where Debian's package puts the easy-rsa tree.
DEB_TREE_PREFIX = "usr/share/easy-rsa"
APT_TIMEOUT_SECONDS = 300
# Marks an extraction folder as complete, so a crash mid-extraction is
# never mistaken for a usable tree.
EXTRACTED_MARKER = ".extracted-from"

SOURCE_ENV = "env"
SOURCE_APT = "apt"
SOURCE_SHARED = "shared"


class ReferenceNotFound(Exception):
    """No source provided a usable easy-rsa tree for one version."""

    def __init__(self, version: str, attempts: Sequence[str]) -> None:
        self.version = version
        self.attempts = list(attempts)
        tried = "\n".join(f"  - {attempt}" for attempt in self.attempts)
        super().__init__(
            f"Reference easy-rsa {version} not found. Tried:\n{tried}\n"
            f"{missing_reference_help(version)}"
        )


@dataclass(frozen=True)
class ReferenceSource:
    """Where one reference version came from and where its script is."""

    version: str
    kind: str
    origin: Path
    script_dir: Path
    attempts: tuple[str, ...] = field(default=())

    @property
    def script(self) -> Path:
        return self.script_dir / "easyrsa"

    def describe(self) -> str:
        labels = {
            SOURCE_ENV: f"${ENV_VAR}",
            SOURCE_APT: "apt-get download",
            SOURCE_SHARED: "shared packages",
        }
        return (
            f"easy-rsa {self.version} from {labels[self.kind]} "
            f"({self.origin}) at {self.script_dir}"
        )


def is_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Tell whether CI is set to anything other than empty or "false"."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip() != "" and value.strip().lower() != "false"


def deb_name(version: str) -> str:
    return f"easy-rsa_{version}-1_all.deb"


def missing_reference_help(version: str) -> str:
    return (
        f"To provide easy-rsa {version}, set {ENV_VAR} to a folder whose "
        f"{version}/ subfolder holds an easy-rsa tree (easyrsa, "
        f"openssl-easyrsa.cnf, x509-types/) or {deb_name(version)}, or put "
        f"{deb_name(version)} in {SHARED_DEBS_DIR}."
    )


# --- .deb extraction -------------------------------------------------------


def read_ar_members(archive: Path) -> dict[str, bytes]:
    """Read the members of a Unix ar archive, the container of a .deb."""
    data = archive.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise ValueError(
            f"{archive} is not an ar archive: it does not start with '!<arch>'"
        )

    members: dict[str, bytes] = {}
    offset = 8
    while offset + 60 <= len(data):
        header = data[offset : offset + 60]
        if header[58:60] != b"`\n":
            raise ValueError(f"{archive}: bad ar header at byte {offset}")
        name = header[0:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        start = offset + 60
        members[name] = data[start : start + size]
        # Members are padded to an even length.
        offset = start + size + (size % 2)
    return members


def open_data_tar(name: str, payload: bytes) -> tarfile.TarFile:
    """Open a .deb's data.tar member whatever its compression."""
    if name.endswith(".zst"):
        payload = decompress_zstd(payload)
        return tarfile.open(fileobj=io.BytesIO(payload), mode="r:")
    # tarfile detects gzip, bzip2, xz and plain tar by itself.
    return tarfile.open(fileobj=io.BytesIO(payload), mode="r:*")


def decompress_zstd(payload: bytes) -> bytes:
    try:
        import zstandard
    except ImportError as error:
        raise RuntimeError(
            "This .deb uses zstd compression and Python 3.11 has no zstd "
            "module. Install the 'zstandard' package or provide the "
            "easy-rsa tree unpacked."
        ) from error
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(payload))
    return reader.read()


def publish_extraction(staging: Path, target: Path) -> None:
    """Move a finished extraction into place unless another process did."""
    if (target / EXTRACTED_MARKER).is_file():
        return
    shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(staging, target)
    except OSError:
        if not (target / EXTRACTED_MARKER).is_file():
            raise


def extract_deb(deb: Path, cache_dir: Path) -> Path:
    """Unpack the easy-rsa tree of ``deb`` under ``cache_dir`` and return it.

    The target folder is named after the package's SHA-256, so a changed
    .deb is unpacked afresh and an unchanged one is reused.
    """
    digest = hashlib.sha256(deb.read_bytes()).hexdigest()[:16]
    target = cache_dir / "extracted" / f"{deb.stem}-{digest}"
    tree = target / DEB_TREE_PREFIX
    if (target / EXTRACTED_MARKER).is_file():
        return tree

    members = read_ar_members(deb)
    data_names = [name for name in members if name.startswith("data.tar")]
    if not data_names:
        raise ValueError(f"{deb} has no data.tar member: {sorted(members)}")

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        with open_data_tar(data_names[0], members[data_names[0]]) as archive:
            wanted = [
                member
                for member in archive.getmembers()
                if member.name.lstrip("./").startswith(DEB_TREE_PREFIX)
            ]
            archive.extractall(staging, members=wanted, filter="data")
        (staging / EXTRACTED_MARKER).write_text(f"{deb}\n")
        publish_extraction(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    logger.info("Unpacked %s into %s", deb, target)
    return tree


# --- sources ---------------------------------------------------------------


def find_tree(folder: Path) -> Path | None:
    """Return the easy-rsa tree in ``folder`` or its usr/share/easy-rsa."""
    for candidate in (folder, folder / DEB_TREE_PREFIX):
        if all((candidate / name).exists() for name in TREE_MEMBERS):
            return candidate
    return None


def read_script_version(script: Path) -> str | None:
    """Read the release number that an easyrsa script declares."""
    text = script.read_text(encoding="utf-8", errors="replace")
    for pattern in (
        r'^EASYRSA_version="([^"]+)"',
        r"^\s*Version:\s+(\d[\w.~-]*)\s*$",
    ):
        match = re.search(pattern, text, flags=re.MULTILINE)
        if match:
            return match.group(1)
    return None


def check_tree(tree: Path, version: str) -> str | None:
    """Return why ``tree`` is not easy-rsa ``version``, or None if it is."""
    script = tree / "easyrsa"
    declared = read_script_version(script)
    if declared != version:
        return f"{script} declares version {declared!r}, expected {version!r}"
    if not os.access(script, os.X_OK):
        return f"{script} is not executable"
    return None


def tree_from_folder(
    folder: Path, version: str, cache_dir: Path
) -> tuple[Path | None, str]:
    """Find or unpack an easy-rsa ``version`` in ``folder``."""
    tree = find_tree(folder)
    if tree is not None:
        problem = check_tree(tree, version)
        return (None, problem) if problem else (tree, f"tree {tree}")

    debs = sorted(folder.glob(f"easy-rsa_{version}-*.deb"))
    if not debs:
        return None, f"{folder} has no easy-rsa tree and no {deb_name(version)}"
    return tree_from_deb(debs[0], version, cache_dir)


def tree_from_deb(deb: Path, version: str, cache_dir: Path) -> tuple[Path | None, str]:
    try:
        tree = extract_deb(deb, cache_dir)
    except (OSError, ValueError, RuntimeError, tarfile.TarError) as error:
        return None, f"unpacking {deb} failed: {error}"
    problem = check_tree(tree, version)
    return (None, problem) if problem else (tree, f"package {deb}")


def locate_in_env_dir(
    version: str, env_dir: Path | None, cache_dir: Path
) -> tuple[ReferenceSource | None, str]:
    """Try source 1: ``$EASYRSA_REFERENCE_DIR/VERSION``."""
    if env_dir is None:
        return None, f"${ENV_VAR} is not set"
    folder = env_dir / version
    if not folder.is_dir():
        return None, f"${ENV_VAR}: {folder} is not a folder"
    tree, detail = tree_from_folder(folder, version, cache_dir)
    if tree is None:
        return None, f"${ENV_VAR}: {detail}"
    return ReferenceSource(version, SOURCE_ENV, folder, tree), detail


def download_with_apt(version: str, cache_dir: Path) -> tuple[Path | None, str]:
    """Download easy-rsa=VERSION-1 with ``apt-get download``, or reuse it."""
    download_dir = cache_dir / "apt"
    existing = download_dir / deb_name(version)
    if existing.is_file():
        return existing, f"cached download {existing}"
    if shutil.which("apt-get") is None:
        return None, "apt-get is not installed"

    download_dir.mkdir(parents=True, exist_ok=True)
    command = ["apt-get", "download", "-q", f"easy-rsa={version}-1"]
    try:
        result = subprocess.run(
            command,
            cwd=download_dir,
            capture_output=True,
            text=True,
            timeout=APT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"{' '.join(command)} timed out after {APT_TIMEOUT_SECONDS}s"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit code {result.returncode}"
        return None, f"{' '.join(command)} failed: {reason}"

    downloaded = sorted(download_dir.glob(f"easy-rsa_{version}-1_*.deb"))
    if not downloaded:
        return None, f"{' '.join(command)} left no .deb in {download_dir}"
    return downloaded[0], f"downloaded {downloaded[0]}"


def locate_with_apt(
    version: str, cache_dir: Path
) -> tuple[ReferenceSource | None, str]:
    """Try source 2: a package from the machine's own apt sources."""
    deb, detail = download_with_apt(version, cache_dir)
    if deb is None:
        return None, f"apt: {detail}"
    tree, unpack_detail = tree_from_deb(deb, version, cache_dir)
    if tree is None:
        return None, f"apt: {unpack_detail}"
    return ReferenceSource(version, SOURCE_APT, deb, tree), detail


def locate_in_shared(
    version: str, shared_dir: Path, cache_dir: Path
) -> tuple[ReferenceSource | None, str]:
    """Try source 3: the packages in shared/reference-easyrsa/."""
    deb = shared_dir / deb_name(version)
    if not deb.is_file():
        return None, f"shared: {deb} does not exist"
    tree, detail = tree_from_deb(deb, version, cache_dir)
    if tree is None:
        return None, f"shared: {detail}"
    return ReferenceSource(version, SOURCE_SHARED, deb, tree), detail


def locate_reference(
    version: str,
    *,
    environ: Mapping[str, str] | None = None,
    cache_dir: Path = CACHE_DIR,
    shared_dir: Path = SHARED_DEBS_DIR,
    use_apt: bool = True,
) -> ReferenceSource:
    """Find easy-rsa ``version`` in the three sources, in order.

    Raises ReferenceNotFound listing what each source reported.
    """
    environ = os.environ if environ is None else environ
    env_value = environ.get(ENV_VAR, "").strip()
    env_dir = Path(env_value).expanduser() if env_value else None

    attempts: list[str] = []
    found, detail = locate_in_env_dir(version, env_dir, cache_dir)
    attempts.append(detail)
    if found is None and use_apt:
        found, detail = locate_with_apt(version, cache_dir)
        attempts.append(detail)
    if found is None:
        found, detail = locate_in_shared(version, shared_dir, cache_dir)
        attempts.append(detail)

    for attempt in attempts[:-1] if found else attempts:
        logger.info("easy-rsa %s: source skipped: %s", version, attempt)
    if found is None:
        raise ReferenceNotFound(version, attempts)

    located = ReferenceSource(
        found.version, found.kind, found.origin, found.script_dir, tuple(attempts)
    )
    logger.info("Using reference %s", located.describe())
    return located


@functools.cache
def cached_reference(version: str) -> ReferenceSource:
    """Locate ``version`` once per process with the default sources."""
    return locate_reference(version)


def require_reference(
    version: str,
    *,
    environ: Mapping[str, str] | None = None,
    locate: Callable[[str], ReferenceSource] = cached_reference,
) -> ReferenceSource:
    """Locate ``version`` for a test, or end the test when it is missing.

    A missing version fails the test when CI is set in ``environ`` (default:
    the process environment) and skips it otherwise.
    """
    import pytest

    try:
        return locate(version)
    except ReferenceNotFound as error:
        if is_ci(environ):
            pytest.fail(f"CI is set, so a missing reference fails: {error}")
        pytest.skip(str(error))


def reference_easyrsa(version: str) -> Path:
    """Return the folder containing easy-rsa ``version``'s ``easyrsa`` script."""
    return cached_reference(version).script_dir


# --- running the script ----------------------------------------------------


def reference_env(
    pki_dir: Path, home: Path, batch: bool, extra: Mapping[str, str] | None
) -> dict[str, str]:
    """Build the environment for one run, free of the caller's EASYRSA_*."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "EASYRSA_PKI": str(pki_dir),
    }
    if batch:
        env["EASYRSA_BATCH"] = "1"
    env.update(extra or {})
    return env


def run_reference(
    version: str,
    pki_dir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
    batch: bool = True,
    prefix: Sequence[str] = (),
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run the real easy-rsa ``version`` on ``pki_dir`` and return its output.

    The script runs in a fresh temporary working directory (so no ``vars``
    or ``pki/`` in the caller's directory is picked up) with only PATH,
    HOME, LANG, TZ and EASYRSA_PKI set, plus EASYRSA_BATCH=1 when ``batch``
    is true. ``env`` adds or overrides variables. ``prefix`` is prepended to
    the command, for example ``("faketime", "-f", "@2021-01-01 00:00:00")``.
    With ``check`` true a non-zero exit raises CalledProcessError, whose
    ``stdout`` and ``stderr`` hold the script's output.
    """
    script = reference_easyrsa(version) / "easyrsa"
    command = [*prefix, str(script), *args]
    with tempfile.TemporaryDirectory(prefix="easyrsa-ref-cwd-") as cwd:
        run_env = reference_env(Path(pki_dir).resolve(), Path(cwd), batch, env)
        logger.debug("Running %s with EASYRSA_PKI=%s", command, pki_dir)
        result = subprocess.run(
            command,
            cwd=cwd,
            env=run_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(
            result.returncode, command, result.stdout, result.stderr
        )
    return result


# --- comparing trees -------------------------------------------------------


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_snapshot(
    path: Path, exclude: Iterable[str] = ()
) -> dict[str, tuple[int, str | None]]:
    """Map each path under ``path`` to ``(mode, sha256)``.

    Keys are POSIX paths relative to ``path``. Folders map to
    ``(mode, None)`` so an added empty folder shows up; a symbolic link maps
    to ``(mode, "-> target")``. ``exclude`` contains fnmatch patterns matched
    against the relative path.
    """
    root = Path(path)
    patterns = list(exclude)
    snapshot: dict[str, tuple[int, str | None]] = {}
    for entry in sorted(root.rglob("*")):
        relative = entry.relative_to(root).as_posix()
        if any(fnmatch.fnmatch(relative, pattern) for pattern in patterns):
            continue
        info = entry.lstat()
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            snapshot[relative] = (mode, f"-> {os.readlink(entry)}")
        elif stat.S_ISDIR(info.st_mode):
            snapshot[relative] = (mode, None)
        else:
            snapshot[relative] = (mode, sha256_file(entry))
    return snapshot
