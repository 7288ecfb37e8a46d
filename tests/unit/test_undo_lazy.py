"""Lazy restore points: a point is a listing; the change guard keeps a file's content only when
something is about to change it.

Real: the guard's seccomp filter and listener (``paddock.vm.guard``, loaded by the launcher
``paddock.vm.guardjail``), real processes (``sh``, ``dd``, ``mv``, ``rm``) changing the folder
under it, the undo store on disk. No VM here: the guarded process is a shell instead of
bubblewrap and virtiofsd (``tests/session/test_undo_vm.py`` and
``tests/security/test_change_guard.py`` run the real daemon); nothing is faked.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paddock.audit import AuditLog, AuditTrail
from paddock.policy import EffectivePolicy
from paddock.session.auditing import SessionAuditor
from paddock.session.undoing import FolderUndo
from paddock.undo.keeper import LazyKeeper
from paddock.undo.restore import restore
from paddock.undo.store import MB, UndoStore
from paddock.vm.guard import Guard, launch_guarded
from tests.undo_tree import GUEST_SCRIPT, make_tree, tree_state


class Guarded:
    """Shell commands run under the guard, with the keeper of one folder's store."""

    def __init__(self, folder: Path, root: Path, budget_mb: int = 10_000) -> None:
        self.folder = folder
        self.store = UndoStore(folder, budget_mb=budget_mb, root=root)
        self.keeper = LazyKeeper(self.store)
        self.store.on_point = self.keeper.arm
        self.loop = asyncio.new_event_loop()
        self.guard: Guard | None = None
        self.proc: asyncio.subprocess.Process | None = None

    def start(self, script: str) -> Guard:
        async def spawn(_name: str, argv: list[str], fds: tuple[int, ...]) -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                *argv, pass_fds=fds, cwd=self.folder, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )

        launched = self.loop.run_until_complete(launch_guarded(spawn, "t", ["/bin/sh", "-c", script], (), self.keeper))
        assert not isinstance(launched, str), launched
        self.proc, self.guard = launched
        return self.guard

    def wait(self) -> tuple[int, str]:
        assert self.proc is not None and self.guard is not None
        out, _ = self.loop.run_until_complete(asyncio.wait_for(self.proc.communicate(), 120))
        self.guard.close()
        return self.proc.returncode or 0, out.decode()

    def run(self, script: str) -> tuple[int, str]:
        self.start(script)
        return self.wait()

    def point(self) -> int:
        made = self.store.make("turn", "t", "s", lazy=True, eager=self.guard.writers if self.guard else None)
        return made.point.id

    def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            self.loop.run_until_complete(self.proc.wait())
        if self.guard is not None:
            self.guard.close()
        self.loop.close()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Guarded]:
    g = Guarded(tmp_path / "work", tmp_path / "undo")
    g.folder.mkdir()
    yield g
    g.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_point_of_a_big_folder_is_a_listing_and_an_edit_copies_one_file(guarded: Guarded) -> None:
    # 1 GB in 10,000 files (the big ones sparse: what is measured is what Paddock copies).
    for i in range(10):
        with open(guarded.folder / f"big{i}.bin", "wb") as f:
            f.truncate(100 * MB)
    small = guarded.folder / "small"
    small.mkdir()
    for i in range(9_990):
        (small / f"f{i}.txt").write_bytes(b"x" * 2400)
    (guarded.folder / "edit.bin").write_bytes(os.urandom(8 * MB))
    original = _sha(guarded.folder / "edit.bin")
    made = guarded.store.make("start", "open", "s", lazy=True)
    assert made.copied_bytes == 0 and made.copied_files == 0
    assert made.lazy_files == 10_001
    assert guarded.store.used_bytes() == 0  # opening the folder copied nothing
    code, out = guarded.run("printf CHANGED | dd of=edit.bin bs=1 seek=4096 conv=notrunc status=none")
    assert code == 0, out
    assert _sha(guarded.folder / "edit.bin") != original
    assert guarded.keeper.kept_files == 1 and guarded.keeper.kept_bytes == 8 * MB  # that one file, once
    assert guarded.store.used_bytes() < 9 * MB
    done = restore(guarded.store, made.point)
    assert done.failed == [] and done.written == ["edit.bin"]
    assert _sha(guarded.folder / "edit.bin") == original


def test_the_issue_script_is_undone_byte_for_byte(guarded: Guarded, tmp_path: Path) -> None:
    make_tree(guarded.folder, big_mb=20, small=300)
    hostfile = tmp_path / "host.txt"
    hostfile.write_text("host\n")
    before = tree_state(guarded.folder)
    made = guarded.store.make("turn", "reorganise", "s", lazy=True)
    assert made.copied_files == 0
    script = GUEST_SCRIPT.replace("cd /workspace", "").replace("$HOSTFILE", str(hostfile))
    code, out = guarded.run(script)
    assert code == 0, out
    assert tree_state(guarded.folder) != before
    assert guarded.keeper.linked_files > 0  # the deleted files were linked into the store, not copied
    assert guarded.keeper.kept_files <= 4  # big.bin in place, report.docx, notes.txt (chmod): not the folder
    done = restore(guarded.store, made.point)
    assert done.failed == []
    assert tree_state(guarded.folder) == before
    assert hostfile.read_text() == "host\n"


def test_a_file_written_twice_at_once_is_kept_once_before_either_write(guarded: Guarded) -> None:
    (guarded.folder / "shared.txt").write_text("original\n")
    made = guarded.store.make("turn", "t", "s", lazy=True)
    code, out = guarded.run("for i in 1 2 3 4 5 6 7 8; do (echo $i >> shared.txt) & done; wait")
    assert code == 0, out
    assert guarded.keeper.kept_files == 1
    assert sorted((guarded.folder / "shared.txt").read_text().split()) == sorted(["original", *"12345678"])
    assert restore(guarded.store, made.point).failed == []
    assert (guarded.folder / "shared.txt").read_text() == "original\n"


def test_a_file_held_open_for_writing_is_copied_when_the_point_is_made(guarded: Guarded) -> None:
    """A command still running from an earlier turn writes through a descriptor it opened before
    the point: the guard sees no open then, so the point copies that file at once."""
    (guarded.folder / "log.txt").write_text("before the point\n")
    guarded.start("exec 3>>log.txt; touch ready; while [ ! -e go ]; do sleep 0.05; done; echo after >&3")
    deadline = time.monotonic() + 30
    while not (guarded.folder / "ready").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    made = guarded.store.make("turn", "t", "s", lazy=True, eager=guarded.guard.writers if guarded.guard else None)
    assert guarded.store.has(made.point.items["log.txt"].ref)  # copied at the point
    assert made.copied_files + made.lazy_files == 2  # and "ready" (touch may still hold it open)
    (guarded.folder / "go").touch()
    assert guarded.wait()[0] == 0
    assert (guarded.folder / "log.txt").read_text() == "before the point\nafter\n"
    assert restore(guarded.store, made.point).failed == []
    assert (guarded.folder / "log.txt").read_text() == "before the point\n"


def test_over_the_budget_the_change_goes_on_and_the_file_is_named(tmp_path: Path) -> None:
    g = Guarded(tmp_path / "work", tmp_path / "undo", budget_mb=1)
    try:
        g.folder.mkdir()
        (g.folder / "big.bin").write_bytes(os.urandom(3 * MB))
        made = g.store.make("turn", "t", "s", lazy=True)
        assert g.run("echo more >> big.bin")[0] == 0  # the guest's program is not broken
        assert len(g.keeper.take_lost()) == 1 and g.keeper.kept_files == 0
        done = restore(g.store, made.point)
        assert [f for f, _ in done.failed] == ["big.bin"]
    finally:
        g.close()


def test_without_the_supervisor_guarded_changes_fail_and_nothing_is_lost(guarded: Guarded) -> None:
    (guarded.folder / "doc.txt").write_text("the person's text\n")
    guard = guarded.start("while [ ! -e go ]; do sleep 0.05; done; echo x >> doc.txt; rm doc.txt; mv doc.txt y")
    guard.close()  # Paddock gone: the listener is closed
    (guarded.folder / "go").touch()
    code, out = guarded.wait()
    assert code != 0
    assert "Function not implemented" in out
    assert (guarded.folder / "doc.txt").read_text() == "the person's text\n"
    assert not (guarded.folder / "y").exists()


def test_a_change_made_outside_the_guard_is_named_not_invented(guarded: Guarded) -> None:
    """The person's own program changes a file on the host after a point (the guard does not see
    it): the point's version is gone, and the undo says so instead of writing something else."""
    (guarded.folder / "sheet.csv").write_text("a,b\n")
    (guarded.folder / "other.txt").write_text("kept\n")
    made = guarded.store.make("turn", "t", "s", lazy=True)
    (guarded.folder / "sheet.csv").write_text("a,b,c\n")  # not through the guard
    assert guarded.run("rm other.txt")[0] == 0  # through the guard: kept first
    done = restore(guarded.store, made.point)
    assert [f for f, _ in done.failed] == ["sheet.csv"]
    assert (guarded.folder / "sheet.csv").read_text() == "a,b,c\n"  # left as the person made it
    assert (guarded.folder / "other.txt").read_text() == "kept\n"


class _Unguarded:
    """Stands for a sandbox whose folder-sharing daemon runs without the change guard (a kernel
    without seccomp user notification): that cannot run here, so only the answer it gives is faked."""

    def change_guard(self) -> tuple[None, str]:
        return None, "seccomp(NEW_LISTENER): Function not implemented"


def test_without_the_guard_the_session_start_point_copies_and_says_why(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "doc.txt").write_text("the person's text\n")
    trail = AuditTrail(AuditLog(tmp_path / "audit", key=b"k" * 32), None)
    undo = FolderUndo(folder, EffectivePolicy(), SessionAuditor(trail, folder, entry="test"), root=tmp_path / "st")
    loop = asyncio.new_event_loop()
    try:
        start = loop.run_until_complete(undo.point("start", "start", lazy=True))
        assert start is not None and start.copied_files == 0 and start.lazy_files == 1
        loop.run_until_complete(undo.attach_guard(_Unguarded(), start))  # type: ignore[arg-type]
        assert not undo.lazy
        assert undo.last is not None and undo.last.copied_files == 1  # the copying point, as before the guard
        turn = loop.run_until_complete(undo.point("turn", "t"))
        assert turn is not None and turn.lazy_files == 0
    finally:
        loop.close()
    attrs = [r["attributes"] for r in AuditLog(tmp_path / "audit").records() if r["kind"] == "undo.point"]
    assert any("NEW_LISTENER" in str(a.get("paddock.undo.unguarded", "")) for a in attrs), attrs
