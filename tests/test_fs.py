"""``fs.atomic_write``: the one way tfwrap replaces a file (edits, the shim, the cache)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tfwrap import fs


def test_replaces_whole_keeps_permissions_and_leaves_nothing_behind(tmp_path: Path) -> None:
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    target = tmp_path / "backend.tf"
    target.write_text("old")
    target.chmod(0o640)
    fs.atomic_write(target, "new")
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o640
    fs.atomic_write(tmp_path / "shim", b"#!/bin/sh\n", mode=0o755)
    assert (tmp_path / "shim").stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backend.tf", "shim"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    target = tmp_path / "dir-in-the-way"
    (target / "inside").mkdir(parents=True)  # os.replace of a file over a non-empty directory fails
    with pytest.raises(OSError):
        fs.atomic_write(target, "x")
    assert [p.name for p in tmp_path.iterdir()] == ["dir-in-the-way"]


def test_relative_to_an_open_directory(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        fs.atomic_write("v.cache", b"\x00", mode=0o600, dir_fd=fd, durable=False)
    finally:
        os.close(fd)
    assert (tmp_path / "v.cache").read_bytes() == b"\x00"
    assert (tmp_path / "v.cache").stat().st_mode & 0o777 == 0o600
