"""Atomic writes, backups and no-clobber moves."""

from __future__ import annotations

import os
import stat

import pytest

from easyrsa_py import files


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_keeps_existing_mode(tmp_path):
    target = tmp_path / "crl.pem"
    target.write_bytes(b"old")
    os.chmod(target, 0o644)
    files.atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o644


def test_atomic_write_new_file_follows_umask(tmp_path):
    old_umask = os.umask(0o077)
    try:
        files.atomic_write(tmp_path / "crl.der", b"data")
    finally:
        os.umask(old_umask)
    assert _mode(tmp_path / "crl.der") == 0o600


def test_atomic_write_leaves_no_temp_files(tmp_path):
    files.atomic_write(tmp_path / "index.txt", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.txt"]


def test_write_with_backup_keeps_previous(tmp_path):
    target = tmp_path / "index.txt"
    target.write_bytes(b"first\n")
    os.chmod(target, 0o600)
    files.write_with_backup(target, b"second\n")
    assert target.read_bytes() == b"second\n"
    assert (tmp_path / "index.txt.old").read_bytes() == b"first\n"
    assert _mode(tmp_path / "index.txt.old") == 0o600


def test_write_with_backup_without_previous(tmp_path):
    files.write_with_backup(tmp_path / "index.txt.attr", b"unique_subject = no\n")
    assert not (tmp_path / "index.txt.attr.old").exists()


def test_move_no_clobber_refuses_existing(tmp_path):
    source = tmp_path / "a.crt"
    target = tmp_path / "b.crt"
    source.write_bytes(b"a")
    target.write_bytes(b"b")
    with pytest.raises(FileExistsError):
        files.move_no_clobber(source, target)
    assert source.read_bytes() == b"a"
    assert target.read_bytes() == b"b"


def test_move_no_clobber_moves(tmp_path):
    source = tmp_path / "a.crt"
    source.write_bytes(b"a")
    (tmp_path / "sub").mkdir()
    files.move_no_clobber(source, tmp_path / "sub" / "a.crt")
    assert not source.exists()
    assert (tmp_path / "sub" / "a.crt").read_bytes() == b"a"
