"""The read watch fails closed (#32): a read open the change guard cannot look at taints the
session instead of passing unseen. Real: the guard's filter and listener on a real process (a
Python script instead of the folder-sharing daemon), the real watcher and audit log; no VM
(``tests/security/test_taint.py`` runs the real daemon in a real sandbox).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from paddock.audit import AuditLog, AuditTrail
from paddock.policy.sensitive import SensitiveMatcher
from paddock.sandbox.sensitive import SensitiveReads
from paddock.session.auditing import SessionAuditor
from paddock.vm.guard import NO_KEEPER, launch_guarded


def _guarded(folder: Path, watcher: SensitiveReads, code: str) -> tuple[int, str]:
    """``code`` run by Python in ``folder`` under the guard, its read opens told to ``watcher``."""

    async def spawn(_name: str, argv: list[str], fds: tuple[int, ...]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *argv, pass_fds=fds, cwd=folder, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )

    async def go() -> tuple[int, str]:
        argv = [sys.executable, "-I", "-c", code]
        launched = await launch_guarded(spawn, "t", argv, (), NO_KEEPER, reads=watcher)
        assert not isinstance(launched, str), launched
        proc, guard = launched
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            guard.close()
        return proc.returncode or 0, out.decode()

    try:
        return asyncio.run(go())
    finally:
        watcher.close()


def _run_watched(folder: Path, code: str) -> tuple[int, str, SensitiveReads]:
    """``code`` under the guard, watched as a session's folder is."""
    watcher = SensitiveReads(folder, SensitiveMatcher())
    return *_guarded(folder, watcher, code), watcher


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any process's memory: run as the ordinary user")
def test_a_read_the_guard_cannot_look_at_taints_the_session_and_is_audited(tmp_path: Path) -> None:
    """A daemon that made itself non-dumpable: the guard can read neither its memory (the name
    it opens) nor its descriptors, yet the open goes on. Before: the guard let it go and told
    no one, so the session stayed untainted and a request right after could carry the file out."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text("an ordinary name, whatever it holds\n")
    code, out, watcher = _run_watched(
        folder,
        "import ctypes; assert ctypes.CDLL(None).prctl(4, 0, 0, 0, 0) == 0\n"  # PR_SET_DUMPABLE 0
        "print(open('notes.txt').read())",
    )
    assert code == 0 and "an ordinary name" in out, out  # the read itself still works
    [read] = watcher.reads
    assert read.why == "unreadable read"

    log = AuditLog(tmp_path / "audit", key=b"k" * 32)
    SessionAuditor(AuditTrail(log, None), folder, entry="test").sensitive_read(read)
    records = list(AuditLog(tmp_path / "audit", key=b"k" * 32).records(None))
    [seen] = [r for r in records if r["kind"] == "guest.file.sensitive_read"]
    assert seen["attributes"]["paddock.sensitive.why"] == "unreadable read"
    [taint] = [r for r in records if r["kind"] == "session.tainted"]
    assert taint["parent_span_id"] == seen["span_id"]


def test_a_read_open_of_no_file_gets_the_kernels_answer_and_taints_nothing(tmp_path: Path) -> None:
    """Where there is no file to read, the guard answers as the kernel would (a new file made
    with ``O_EXCL`` is empty): ordinary misses, as every program's start makes, taint nothing."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello\n")
    code, out, watcher = _run_watched(
        folder,
        "import errno, os\n"
        "try:\n    open('missing.txt')\nexcept FileNotFoundError:\n    print('no such file')\n"
        "try:\n    open('nodir/notes.txt')\nexcept FileNotFoundError:\n    print('no such folder')\n"
        "os.close(os.open('fresh.lock', os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600))\n"
        "print(open('notes.txt').read())",
    )
    assert code == 0, out
    assert "no such file" in out and "no such folder" in out and "hello" in out, out
    assert (folder / "fresh.lock").exists()
    assert watcher.reads == [] and watcher.opens >= 1


def test_a_file_in_a_renamed_folder_stays_sensitive(tmp_path: Path) -> None:
    """``mv HR Archive`` then reading ``Archive/salaries.xlsx``: the file's own name is ordinary
    and its inode was never seen, but the folder's rename was a guarded call, so the read is
    matched under the folder's earlier name. Before: only files were remembered, and the read
    passed unseen. (Here the stand-in daemon sees host paths: the watch's folder is ``/``.)"""
    folder = tmp_path / "work"
    (folder / "HR").mkdir(parents=True)
    (folder / "HR" / "salaries.xlsx").write_text("alice,91000\n")
    (folder / "notes.txt").write_text("hello\n")
    inside = str(folder).lstrip("/")
    watcher = SensitiveReads(Path("/"), SensitiveMatcher([f"{inside}/HR/**"]))
    code, out = _guarded(
        folder,
        watcher,
        "import os\nos.rename('HR', 'Archive')\nprint(open('notes.txt').read(), open('Archive/salaries.xlsx').read())",
    )
    assert code == 0 and "alice" in out, out
    [read] = watcher.reads
    assert read.why == "renamed folder" and read.first_name == f"{inside}/HR/salaries.xlsx", read
    assert read.path == f"{inside}/Archive/salaries.xlsx"


def test_a_held_request_on_a_sandbox_host_says_why_it_is_asked(tmp_path: Path) -> None:
    """The person is told the truth: not "opened <file>" (nothing was seen) but that the session
    runs where Paddock cannot see which files are opened (#32). No gateway process: the decision
    is the one the gateway sends for a request held by the taint a sandbox host's session starts with."""
    from paddock.egress import UNWATCHED, Decision, EgressGateway
    from paddock.session.egress_questions import EgressQuestion
    from paddock.session.taint_questions import TaintAsker

    gw = EgressGateway(tmp_path / "gw", "vm", [], {})
    asked: list[object] = []
    auditor = SessionAuditor(AuditTrail(AuditLog(tmp_path / "audit", key=b"k" * 32), None), tmp_path, entry="test")
    TaintAsker(gw, asked.append, auditor)
    gw.decided.emit(Decision(False, "held", "tickets", "POST", "tickets.example.test", "/t", held=True,
                             taint=UNWATCHED["id"], taint_path=UNWATCHED["path"], taint_mode="ask"))  # fmt: skip
    [question] = asked
    assert isinstance(question, EgressQuestion)
    assert question.text == ("The assistant works on a sandbox host, where Paddock cannot see which files it opens, "
                             "and now wants to send data to tickets.example.test. Allow this once?")  # fmt: skip
