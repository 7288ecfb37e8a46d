"""``paddock undo`` as a person runs it, on restore points made through the session layer (no VM:
the changes are made on the host, as virtiofsd makes them for the guest; the VM tests are in
tests/session/test_undo_vm.py). Real: the audit log and its key in the keychain, the store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from paddock.audit import AuditLog
from paddock.policy import EffectivePolicy
from paddock.session.auditing import SessionAuditor
from paddock.session.runner import audit_trail
from paddock.session.undoing import FolderUndo


def _undo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "paddock.cli", "undo", *args], capture_output=True, text=True,
                          timeout=120, env=os.environ.copy())  # fmt: skip


def _point(folder: Path, label: str) -> int:
    policy = EffectivePolicy()
    undo = FolderUndo(folder, policy, SessionAuditor(audit_trail(policy), folder, entry="test"))
    made = asyncio.run(undo.point("turn", label))
    assert made is not None
    return made.point.id


def test_list_undo_file_and_undo_the_undo(tmp_path: Path) -> None:
    folder = (tmp_path / "Sales").resolve()
    folder.mkdir()
    none = _undo("--folder", str(folder))
    assert none.returncode == 1 and "no restore points" in none.stderr and "Traceback" not in none.stderr
    (folder / "report.txt").write_text("first draft\n")
    (folder / "keep.txt").write_text("keep\n")
    first = _point(folder, "write the report")
    (folder / "report.txt").write_text("rewritten\n")
    (folder / "keep.txt").unlink()
    (folder / "new.txt").write_text("new\n")

    listed = _undo("--folder", str(folder), "--list")
    assert listed.returncode == 0, listed.stderr
    assert f"{first:5}" in listed.stdout and "write the report" in listed.stdout
    assert "3 file(s) changed after it" in listed.stdout and "keep.txt" in listed.stdout

    one = _undo("--folder", str(folder), "--file", "keep.txt")
    assert one.returncode == 0, one.stderr
    assert (folder / "keep.txt").read_text() == "keep\n" and (folder / "report.txt").read_text() == "rewritten\n"

    whole = _undo("--folder", str(folder))
    assert whole.returncode == 0, whole.stderr
    assert (folder / "report.txt").read_text() == "first draft\n" and not (folder / "new.txt").exists()
    again = whole.stdout.rsplit("--to ", 1)[1].strip()
    back = _undo("--folder", str(folder), "--to", again)  # the undo, undone
    assert back.returncode == 0, back.stderr
    assert (folder / "report.txt").read_text() == "rewritten\n" and (folder / "new.txt").exists()

    outside = _undo("--folder", str(folder), "--file", "../etc/passwd")
    assert outside.returncode == 1 and "not a path inside the folder" in outside.stderr
    missing = _undo("--folder", str(folder), "--to", "999")
    assert missing.returncode == 1 and "no restore point 999" in missing.stderr
    records = list(AuditLog().records())  # this test run's log: other tests' sessions are in it too
    started = [r for r in records if r["kind"] == "session.started" and r["attributes"]["paddock.entry"] == "undo"]
    ours = {r["session_id"] for r in started if r["attributes"]["paddock.folder"] == str(folder)}
    assert [r["kind"] for r in records if r["session_id"] in ours].count("undo.restored") == 3
