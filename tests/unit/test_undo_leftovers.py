"""Undo against what a guest leaves behind, on the host without a VM (issue 30): a folder nested
past the listing's depth, an unreadable folder and a sparse file cost only themselves. The VM
versions are in tests/session/test_undo_leftovers.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from paddock.audit import AuditLog, AuditTrail
from paddock.policy import EffectivePolicy
from paddock.session.auditing import SessionAuditor
from paddock.session.undoing import FolderUndo
from paddock.undo import listing
from paddock.undo.store import copy_fd


def _undo(folder: Path, tmp_path: Path, budget_mb: int | None = None) -> FolderUndo:
    trail = AuditTrail(AuditLog(tmp_path / "audit", key=b"k" * 32), None)
    auditor = SessionAuditor(trail, folder, entry="test")
    return FolderUndo(folder, EffectivePolicy(undo_budget_mb=budget_mb), auditor, root=tmp_path / "store")


def _deep(base: Path, depth: int) -> Path:
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):  # by descriptors: the path is longer than PATH_MAX
        os.mkdir("x", dir_fd=fd)
        nxt = os.open("x", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
    return base


def test_a_deep_folder_made_after_a_point_neither_stops_nor_survives_the_undo(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "letter.txt").write_text("Dear Sam,\n")
    u = _undo(folder, tmp_path)
    asyncio.run(u.point("turn", "t"))
    (folder / "letter.txt").unlink()
    (folder / "deep").mkdir()
    _deep(folder / "deep", 600)
    made = asyncio.run(u.point("turn", "next"))  # a point is still made, and says what it left out
    assert made is not None and made.point.skipped and any("nested more than" in w for w in made.warnings)
    done = asyncio.run(u.undo(to=1))
    assert not done.failed, done.failed
    assert (folder / "letter.txt").read_text() == "Dear Sam,\n" and not (folder / "deep").exists()


def test_a_deep_folder_recorded_in_a_point_is_left_alone_and_named(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "letter.txt").write_text("Dear Sam,\n")
    _deep(folder, 300)
    u = _undo(folder, tmp_path)
    asyncio.run(u.point("turn", "t"))
    (folder / "letter.txt").write_text("changed\n")
    done = asyncio.run(u.undo())
    assert not done.failed, done.failed
    assert (folder / "letter.txt").read_text() == "Dear Sam,\n" and done.skipped
    assert (folder / "x").is_dir()
    subprocess.run(["rm", "-rf", str(folder / "x")], check=True, timeout=120)  # pytest's clean-up recurses


def test_an_unreadable_folder_does_not_stop_undo(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    (folder / "locked").mkdir(parents=True)
    (folder / "letter.txt").write_text("Dear Sam,\n")
    u = _undo(folder, tmp_path)
    asyncio.run(u.point("turn", "t"))
    (folder / "letter.txt").unlink()
    os.chmod(folder / "locked", 0)
    try:
        done = asyncio.run(u.undo(to=1))
    finally:
        os.chmod(folder / "locked", 0o755)
    assert (folder / "letter.txt").read_text() == "Dear Sam,\n", done.failed


def test_copies_keep_holes_as_holes(tmp_path: Path) -> None:
    src_path, dst_path = tmp_path / "sparse", tmp_path / "copy"
    with open(src_path, "wb") as f:
        f.truncate(1 << 30)
        f.seek(1 << 29)
        f.write(b"middle")
    src = os.open(src_path, os.O_RDONLY)
    dst = os.open(dst_path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        copy_fd(src, dst, 1 << 30)
    finally:
        os.close(src)
        os.close(dst)
    st = dst_path.stat()
    assert st.st_size == 1 << 30 and st.st_blocks * 512 < 1 << 20
    with open(dst_path, "rb") as f:
        f.seek(1 << 29)
        assert f.read(6) == b"middle"


def test_the_copy_before_a_restore_keeps_to_the_budget(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "letter.txt").write_text("Dear Sam,\n")
    u = _undo(folder, tmp_path, budget_mb=4)
    asyncio.run(u.point("turn", "t"))
    (folder / "dense.bin").write_bytes(os.urandom(8 << 20))  # more than the whole budget
    done = asyncio.run(u.undo())
    assert not (folder / "dense.bin").exists() and done.unkept == ["dense.bin"]
    used = sum(p.lstat().st_blocks * 512 for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert used <= 4 << 20


def test_a_folder_of_more_entries_than_a_point_lists_does_not_stop_undo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``MAX_ITEMS`` (a million entries; 50 here) a point used to stop with "more than … files";
    now it lists the first ones, an undo puts those back and leaves what it did not list in place."""
    monkeypatch.setattr(listing, "MAX_ITEMS", 50)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a-letter.txt").write_text("Dear Sam,\n")
    u = _undo(folder, tmp_path)
    asyncio.run(u.point("turn", "t"))
    (folder / "a-letter.txt").write_text("overwritten\n")
    (folder / "many").mkdir()
    for i in range(200):
        (folder / "many" / f"f{i}").write_text("x")
    made = asyncio.run(u.point("turn", "next"))
    assert (
        made is not None and made.point.partial and any("entries; the restore point lists" in w for w in made.warnings)
    )
    done = asyncio.run(u.undo(to=1))
    assert not done.failed, done.failed
    assert (folder / "a-letter.txt").read_text() == "Dear Sam,\n" and not (folder / "many").exists()
    (folder / "many").mkdir()  # now the point itself is listed in part: nothing it did not list is removed
    for i in range(200):
        (folder / "many" / f"f{i}").write_text("x")
    third = asyncio.run(u.point("turn", "third"))
    assert third is not None and third.point.partial
    (folder / "a-letter.txt").write_text("again\n")
    done = asyncio.run(u.undo(to=third.point.id))
    assert not done.failed, done.failed
    assert (folder / "a-letter.txt").read_text() == "Dear Sam,\n"  # a folder's own files are listed first
    assert len(list((folder / "many").iterdir())) == 200  # none removed: the point did not list them all
