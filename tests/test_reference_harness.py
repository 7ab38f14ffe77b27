"""Tests of tests/reference.py: the locator, .deb unpacking and the runner.

The locator tests build fake easy-rsa trees and packages in tmp_path and
pass every source explicitly, so they never depend on, or change, the real
reference setup. The smoke tests at the end run the real scripts.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ReferenceEasyRSA
from reference import (
    ENV_VAR,
    SOURCE_APT,
    SOURCE_ENV,
    SOURCE_SHARED,
    ReferenceNotFound,
    ReferenceSource,
    extract_deb,
    is_ci,
    locate_reference,
    read_ar_members,
    reference_env,
    require_reference,
    tree_snapshot,
)

VERSION = "3.2.7"
# The fixture each version's smoke test runs on, and its CA's common name.
SMOKE_FIXTURES = {
    "3.1.0": ("v3.1.0-rsa", "Fixture 3.1.0 RSA CA"),
    "3.2.2": ("v3.2.2-ec", "Fixture 3.2.2 EC CA"),
    "3.2.7": ("v3.2.7-rsa", "Example VPN CA"),
}


def fake_script(version: str) -> bytes:
    return f'#!/bin/sh\nEASYRSA_version="{version}"\necho "fake {version}"\n'.encode()


def write_tree(folder: Path, version: str = VERSION) -> Path:
    folder.mkdir(parents=True)
    script = folder / "easyrsa"
    script.write_bytes(fake_script(version))
    script.chmod(0o755)
    (folder / "openssl-easyrsa.cnf").write_text("# fake\n")
    (folder / "x509-types").mkdir()
    (folder / "x509-types" / "COMMON").write_text("")
    return folder


def tar_bytes(files: dict[str, tuple[bytes, int]], compression: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as archive:
        for name, (content, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = mode
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def ar_bytes(members: dict[str, bytes]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, content in members.items():
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(content):<10}`\n"
        out += header.encode("ascii") + content
        if len(content) % 2:
            out += b"\n"
    return bytes(out)


def write_deb(path: Path, version: str = VERSION, compression: str = "xz") -> Path:
    prefix = "./usr/share/easy-rsa"
    data = tar_bytes(
        {
            f"{prefix}/easyrsa": (fake_script(version), 0o755),
            f"{prefix}/openssl-easyrsa.cnf": (b"# fake\n", 0o644),
            f"{prefix}/x509-types/COMMON": (b"", 0o644),
            "./usr/share/doc/easy-rsa/copyright": (b"not extracted\n", 0o644),
        },
        compression,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        ar_bytes(
            {
                "debian-binary": b"2.0\n",
                "control.tar.xz": tar_bytes({}, "xz"),
                f"data.tar.{compression}": data,
            }
        )
    )
    return path


def locate(tmp_path: Path, env_dir: Path | None, **kwargs: object) -> ReferenceSource:
    environ = {ENV_VAR: str(env_dir)} if env_dir else {}
    options: dict[str, object] = {
        "environ": environ,
        "cache_dir": tmp_path / "cache",
        "shared_dir": tmp_path / "shared",
        "use_apt": False,
    }
    options.update(kwargs)
    return locate_reference(VERSION, **options)  # type: ignore[arg-type]


def test_env_dir_tree(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "refs" / VERSION)
    found = locate(tmp_path, tmp_path / "refs")
    assert found.kind == SOURCE_ENV
    assert found.script_dir == tree


def test_env_dir_unpacked_deb_tree(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "refs" / VERSION / "usr" / "share" / "easy-rsa")
    found = locate(tmp_path, tmp_path / "refs")
    assert found.script_dir == tree


def test_env_dir_deb(tmp_path: Path) -> None:
    write_deb(tmp_path / "refs" / VERSION / f"easy-rsa_{VERSION}-1_all.deb")
    found = locate(tmp_path, tmp_path / "refs")
    assert found.kind == SOURCE_ENV
    assert (found.script_dir / "easyrsa").read_bytes() == fake_script(VERSION)
    assert found.script_dir.is_relative_to(tmp_path / "cache")


def test_env_dir_beats_shared(tmp_path: Path) -> None:
    write_tree(tmp_path / "refs" / VERSION)
    write_deb(tmp_path / "shared" / f"easy-rsa_{VERSION}-1_all.deb")
    assert locate(tmp_path, tmp_path / "refs").kind == SOURCE_ENV


def test_env_dir_wrong_version_falls_through(tmp_path: Path) -> None:
    write_tree(tmp_path / "refs" / VERSION, version="3.2.2")
    write_deb(tmp_path / "shared" / f"easy-rsa_{VERSION}-1_all.deb")
    found = locate(tmp_path, tmp_path / "refs")
    assert found.kind == SOURCE_SHARED
    assert "declares version '3.2.2'" in found.attempts[0]


def test_shared_used_when_env_unset(tmp_path: Path) -> None:
    deb = write_deb(tmp_path / "shared" / f"easy-rsa_{VERSION}-1_all.deb")
    found = locate(tmp_path, None)
    assert found.kind == SOURCE_SHARED
    assert found.origin == deb


def test_apt_download_beats_shared(tmp_path: Path) -> None:
    # A package already in the download folder is reused without apt-get.
    write_deb(tmp_path / "cache" / "apt" / f"easy-rsa_{VERSION}-1_all.deb")
    write_deb(tmp_path / "shared" / f"easy-rsa_{VERSION}-1_all.deb")
    found = locate(tmp_path, None, use_apt=True)
    assert found.kind == SOURCE_APT


def test_missing_everywhere_raises(tmp_path: Path) -> None:
    with pytest.raises(ReferenceNotFound) as caught:
        locate(tmp_path, tmp_path / "refs")
    message = str(caught.value)
    assert ENV_VAR in message
    assert f"easy-rsa_{VERSION}-1_all.deb" in message
    assert len(caught.value.attempts) == 2


def missing_locator(tmp_path: Path) -> Callable[[str], ReferenceSource]:
    return lambda version: locate(tmp_path, None)


def test_missing_in_ci_fails(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_reference(
            VERSION, environ={"CI": "true"}, locate=missing_locator(tmp_path)
        )


def test_missing_outside_ci_skips(tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match=ENV_VAR):
        require_reference(
            VERSION, environ={"CI": "false"}, locate=missing_locator(tmp_path)
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("1", True), ("yes", True), ("", False), ("false", False)],
)
def test_is_ci_values(value: str, expected: bool) -> None:
    assert is_ci({"CI": value}) is expected


def test_is_ci_unset() -> None:
    assert is_ci({}) is False


def test_extract_deb_gzip(tmp_path: Path) -> None:
    deb = write_deb(tmp_path / "pkg.deb", compression="gz")
    tree = extract_deb(deb, tmp_path / "cache")
    assert (tree / "x509-types" / "COMMON").is_file()
    assert (tree / "easyrsa").stat().st_mode & 0o111


def test_extract_deb_skips_docs(tmp_path: Path) -> None:
    tree = extract_deb(write_deb(tmp_path / "pkg.deb"), tmp_path / "cache")
    assert not (tree.parent / "doc").exists()


def test_extract_deb_reuses_cache(tmp_path: Path) -> None:
    deb = write_deb(tmp_path / "pkg.deb")
    first = extract_deb(deb, tmp_path / "cache")
    (first / "marker").write_text("kept")
    second = extract_deb(deb, tmp_path / "cache")
    assert (second / "marker").read_text() == "kept"


def test_read_ar_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "not.deb"
    path.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ValueError, match="not an ar archive"):
        read_ar_members(path)


def test_env_has_no_caller_variables(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EASYRSA_REQ_CN", "leaked")
    env = reference_env(tmp_path / "pki", tmp_path, batch=False, extra=None)
    assert "EASYRSA_REQ_CN" not in env
    assert "EASYRSA_BATCH" not in env
    assert env["EASYRSA_PKI"] == str(tmp_path / "pki")


def test_env_batch_and_extra(tmp_path: Path) -> None:
    env = reference_env(tmp_path, tmp_path, batch=True, extra={"EASYRSA_X": "1"})
    assert env["EASYRSA_BATCH"] == "1"
    assert env["EASYRSA_X"] == "1"


def test_tree_snapshot_modes_and_digests(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir(mode=0o700)
    (tmp_path / "sub" / "file").write_bytes(b"abc")
    (tmp_path / "sub" / "file").chmod(0o600)
    (tmp_path / "lock.file").write_text("1")
    snapshot = tree_snapshot(tmp_path, exclude=["lock.file"])
    assert snapshot["sub"] == (0o700, None)
    assert snapshot["sub/file"] == (
        0o600,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    )
    assert "lock.file" not in snapshot


def test_reference_version_command(reference: ReferenceEasyRSA, tmp_path: Path) -> None:
    result = reference.run(tmp_path / "pki", "version")
    assert f"Version:     {reference.version}" in result.stdout


def test_reference_show_ca(
    reference: ReferenceEasyRSA, pki_copy: Callable[[str], Path]
) -> None:
    fixture, common_name = SMOKE_FIXTURES[reference.version]
    pki = pki_copy(fixture)
    result = reference.run(pki, "show-ca")
    assert "commonName" in result.stdout
    assert common_name in result.stdout


def test_reference_ignores_caller_vars(
    reference: ReferenceEasyRSA,
    pki_copy: Callable[[str], Path],
    tmp_path: Path,
    monkeypatch,
) -> None:
    broken_vars = tmp_path / "vars"
    broken_vars.write_text("this is not a vars file\n")
    monkeypatch.setenv("EASYRSA_VARS_FILE", str(broken_vars))
    monkeypatch.chdir(tmp_path)
    pki = pki_copy(SMOKE_FIXTURES[reference.version][0])
    assert reference.run(pki, "show-ca").returncode == 0


def test_reference_failure_raises(reference: ReferenceEasyRSA, tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        reference.run(tmp_path / "missing-pki", "show-ca")
