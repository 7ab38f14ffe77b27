"""files.py under faults: interrupted moves, failed renames and the fault hook itself."""

from __future__ import annotations

import errno
import os

import pytest

from easyrsa_py import files


def test_move_finishes_interrupted_link(tmp_path):
    # The link fallback was killed after os.link: both names exist.
    source = tmp_path / "alice.crt"
    source.write_bytes(b"certificate")
    target = tmp_path / "revoked.crt"
    os.link(source, target)
    files.move_no_clobber(source, target)
    assert not source.exists()
    assert target.read_bytes() == b"certificate"


def test_move_rejects_different_existing_file(tmp_path):
    source = tmp_path / "alice.crt"
    source.write_bytes(b"new")
    target = tmp_path / "revoked.crt"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        files.move_no_clobber(source, target)
    assert source.read_bytes() == b"new"
    assert target.read_bytes() == b"old"


@pytest.mark.parametrize("rename_no_replace", [True, False], ids=["renameat2", "link-fallback"])
def test_move_both_paths(tmp_path, monkeypatch, rename_no_replace):
    if not rename_no_replace:
        monkeypatch.setattr(files, "_rename_no_replace", lambda source, target: False)
    source = tmp_path / "a.key"
    source.write_bytes(b"key")
    os.chmod(source, 0o600)
    (tmp_path / "sub").mkdir()
    target = tmp_path / "sub" / "a.key"
    files.move_no_clobber(source, target)
    assert not source.exists()
    assert target.read_bytes() == b"key"
    assert os.stat(target).st_mode & 0o777 == 0o600
    source.write_bytes(b"other")
    with pytest.raises(FileExistsError):
        files.move_no_clobber(source, target)
    assert target.read_bytes() == b"key"


def test_failed_rename_leaves_no_temporary_files(tmp_path, monkeypatch):
    first, second = tmp_path / "crl.pem", tmp_path / "crl.der"
    first.write_bytes(b"old pem")
    second.write_bytes(b"old der")
    real_replace = os.replace

    def replace(source, target):
        if str(target).endswith("crl.der"):
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        real_replace(source, target)

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(OSError):
        files.atomic_write_all([(first, b"new pem", None), (second, b"new der", None)])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["crl.der", "crl.pem"]
    assert second.read_bytes() == b"old der"


def test_backup_and_target_written_together(tmp_path, monkeypatch):
    index = tmp_path / "index.txt"
    index.write_bytes(b"old\n")
    (tmp_path / "index.txt.old").write_bytes(b"older\n")
    monkeypatch.setattr(files, "_fault", ("write-temp-before", 2, "enospc"))
    with pytest.raises(OSError) as caught:
        files.write_with_backup(index, b"new\n")
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(index)
    assert index.read_bytes() == b"old\n"
    assert (tmp_path / "index.txt.old").read_bytes() == b"older\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["index.txt", "index.txt.old"]


def test_write_all_with_backup(tmp_path):
    index, attr = tmp_path / "index.txt", tmp_path / "index.txt.attr"
    index.write_bytes(b"v1\n")
    files.write_all_with_backup([(index, b"v2\n"), (attr, b"unique_subject = no\n")])
    assert index.read_bytes() == b"v2\n"
    assert (tmp_path / "index.txt.old").read_bytes() == b"v1\n"
    assert attr.read_bytes() == b"unique_subject = no\n"
    assert not (tmp_path / "index.txt.attr.old").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        ("move-after", ("move-after", 1, "kill")),
        ("move-after:3", ("move-after", 3, "kill")),
        ("write-temp-after:2:enospc", ("write-temp-after", 2, "enospc")),
    ],
)
def test_fault_variable_parsed(text, expected):
    assert files._parse_fault(text) == expected


@pytest.mark.parametrize("text", ["no-such-point", "move-after:0", "move-after:x", "move-after:1:explode"])
def test_fault_variable_invalid(text):
    with pytest.raises(ValueError, match="EASYRSA_PY_FAULT"):
        files._parse_fault(text)
