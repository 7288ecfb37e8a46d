"""Restore points and undo on the host, without a VM: the store, the restore and their edges.

The VM tests (tests/session/test_undo_vm.py) change the folder from the guest; these change it
directly, which is what virtiofsd does on the guest's behalf.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from paddock.audit import AuditLog, AuditTrail
from paddock.policy import EffectivePolicy
from paddock.session.auditing import SessionAuditor
from paddock.session.undoing import FolderUndo
from paddock.undo.store import UndoError, UndoStore, scan
from tests.undo_tree import make_tree, mutate, tree_state


def _undo(folder: Path, tmp_path: Path, budget_mb: int | None = None) -> FolderUndo:
    trail = AuditTrail(AuditLog(tmp_path / "audit", key=b"k" * 32), None)
    auditor = SessionAuditor(trail, folder, entry="test")
    return FolderUndo(folder, EffectivePolicy(undo_budget_mb=budget_mb), auditor, root=tmp_path / "store")


def _records(tmp_path: Path) -> list[dict[str, object]]:
    return list(AuditLog(tmp_path / "audit", key=b"k" * 32).records(None))


def test_undo_puts_the_tree_back_byte_identical(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    make_tree(folder, big_mb=4, small=120)
    outside = tmp_path / "outside.txt"
    outside.write_text("host file\n")
    u = _undo(folder, tmp_path)
    before = tree_state(folder)
    made = asyncio.run(u.point("turn", "tidy up"))
    assert made is not None and made.copied_files > 100
    mutate(folder, outside)
    assert tree_state(folder) != before
    done = asyncio.run(u.undo())
    assert not done.failed, done.failed
    assert tree_state(folder) == before
    assert "victim.txt" in done.removed and "victim.txt" in done.written and "big.bin" in done.written
    assert "made" in done.removed and "notes.txt" in done.written
    assert outside.read_text() == "host file\n"  # the link the "guest" left was removed, not followed
    kinds = [r["kind"] for r in _records(tmp_path)]
    assert kinds.count("undo.point") == 2 and kinds.count("undo.restored") == 1  # the turn's, the undo's own


def test_an_unchanged_folder_costs_nothing_the_second_time(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    make_tree(folder, big_mb=2, small=50)
    u = _undo(folder, tmp_path)
    first = asyncio.run(u.point("start", "s"))
    second = asyncio.run(u.point("turn", "t"))
    assert first is not None and second is not None
    assert first.copied_bytes >= 2 * 1024 * 1024
    assert second.copied_files == 0
    (folder / "big.bin").open("r+b").write(b"X")  # in place: a new version, copied once
    third = asyncio.run(u.point("turn", "t2"))
    assert third is not None and third.copied_files == 1


def test_undo_is_undoable_and_goes_back_turn_by_turn(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    doc = folder / "doc.txt"
    doc.write_text("v1")
    u = _undo(folder, tmp_path)
    asyncio.run(u.point("turn", "one"))
    doc.write_text("v2")
    asyncio.run(u.point("turn", "two"))
    doc.write_text("v3")
    asyncio.run(u.undo())
    assert doc.read_text() == "v2"
    asyncio.run(u.undo())  # the turn before
    assert doc.read_text() == "v1"
    before_second_undo = u.last
    assert before_second_undo is not None
    asyncio.run(u.undo(to=before_second_undo.point.id))  # undo the undo
    assert doc.read_text() == "v2"


def test_one_file_comes_back_and_nothing_else_moves(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "one.txt").write_text("one")
    (folder / "two.txt").write_text("two")
    u = _undo(folder, tmp_path)
    asyncio.run(u.point("turn", "t"))
    (folder / "a" / "one.txt").write_text("ONE")
    (folder / "two.txt").write_text("TWO")
    (folder / "new").mkdir()
    (folder / "new" / "x.txt").write_text("x")
    asyncio.run(u.undo(file="a/one.txt"))
    assert (folder / "a" / "one.txt").read_text() == "one"
    assert (folder / "two.txt").read_text() == "TWO"
    asyncio.run(u.undo(file="new/x.txt"))  # created after the point: removed, its folder kept
    assert not (folder / "new" / "x.txt").exists() and (folder / "new").is_dir()
    with pytest.raises(UndoError, match="not a path inside"):
        asyncio.run(u.undo(file="../outside"))


def test_a_folder_replaced_by_a_link_out_is_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "f.txt").write_text("inside")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "f.txt").write_text("host")
    u = _undo(folder, tmp_path)
    asyncio.run(u.point("turn", "t"))
    import shutil

    shutil.rmtree(folder / "sub")
    (folder / "sub").symlink_to(elsewhere)
    done = asyncio.run(u.undo())
    assert not done.failed
    assert (elsewhere / "f.txt").read_text() == "host" and sorted(os.listdir(elsewhere)) == ["f.txt"]
    assert not (folder / "sub").is_symlink() and (folder / "sub" / "f.txt").read_text() == "inside"


def test_the_budget_drops_the_oldest_points_and_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    f = folder / "data.bin"
    warnings: list[str] = []
    u = _undo(folder, tmp_path, budget_mb=3)
    u.warn = warnings.append
    for i in range(4):
        f.write_bytes(bytes([i]) * (1024 * 1024))
        asyncio.run(u.point("turn", f"t{i}"))
    ids = [p.id for p in u.store.points()]
    assert ids[0] > 1 and len(ids) < 4, ids
    assert any("dropped" in w for w in warnings)
    f.write_bytes(b"y" * (5 * 1024 * 1024))  # bigger than the whole budget: kept as a name only, and said
    made = asyncio.run(u.point("turn", "big"))
    assert made is not None and made.point.unsaved == ["data.bin"]
    assert any("could not be kept" in w for w in warnings)


def test_dropping_old_points_keeps_the_copies_the_new_point_needs(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    steady, moving = folder / "steady.bin", folder / "moving.bin"
    steady.write_bytes(b"s" * 1024 * 1024)  # never changes: its copy was made by the first point
    u = _undo(folder, tmp_path, budget_mb=3)
    for i in range(5):
        moving.write_bytes(bytes([i]) * (1536 * 1024))  # each new version forces every older point out
        made = asyncio.run(u.point("turn", f"t{i}"))
        assert made is not None
        kept = [r for r, it in made.point.items.items() if it.kind == "f" and u.store.has(it.ref)]
        assert sorted(kept) == ["moving.bin", "steady.bin"], (i, made.dropped)  # dropping kept what it uses
    assert u.store.points()[0].id > 1  # the first point (which copied steady.bin) was dropped
    steady.unlink()
    moving.write_bytes(b"changed")
    done = asyncio.run(u.undo())
    assert not done.failed, done.failed
    assert steady.read_bytes() == b"s" * 1024 * 1024 and moving.read_bytes() == bytes([4]) * (1536 * 1024)


def test_nothing_to_undo_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    u = _undo(folder, tmp_path)
    with pytest.raises(UndoError, match="no restore points"):
        asyncio.run(u.undo())
    asyncio.run(u.point("turn", "t"))
    with pytest.raises(UndoError, match="Nothing to undo"):
        asyncio.run(u.undo())


def test_budget_zero_turns_restore_points_off(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    u = _undo(folder, tmp_path, budget_mb=0)
    assert asyncio.run(u.point("turn", "t")) is None
    assert UndoStore(folder, root=tmp_path / "store").points() == []


def test_a_folder_nested_too_deep_is_skipped_and_named_in_plain_words(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    fd = os.open(folder, os.O_RDONLY)
    try:
        for _ in range(300):  # relative steps: the full path would pass PATH_MAX
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
    finally:
        os.close(fd)
    made = asyncio.run(_undo(folder, tmp_path).point("turn", "t"))  # since #30 a point is made, without the depths
    assert made is not None and len(made.point.skipped) == 1 and "nested more than" in made.warnings[0]


def test_scan_records_links_without_following(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "l").symlink_to("/etc")
    items = scan(folder)
    assert items["l"].kind == "l" and items["l"].ref == "/etc" and len(items) == 1
