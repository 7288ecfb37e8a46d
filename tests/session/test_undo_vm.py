"""Undo anything: a scripted session changes a folder from the guest (a big file in place, files
deleted, a folder renamed, files created, a chmod, a link to a host file planted where a document
was), and ``paddock undo`` brings every name, mode, mtime and byte back — also when the VM or
the app is killed in the middle of the turn. The host file the planted link points at is
untouched.

Real: the VM, virtiofs, the guest agent, ``paddock run`` and ``paddock undo`` as processes, the
audit log on disk. The one fake is the model service (``tests.fakes.messages_api``, a loopback
Messages API that asks for one ``run_command``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paddock.audit import AuditLog
from tests.fakes.messages_api import MessagesAPI, text, tool
from tests.undo_tree import GUEST_SCRIPT, make_tree, tree_state

pytestmark = pytest.mark.vm

HOST_TEXT = "a host file the guest must never reach\n"


def _env(data: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PADDOCK_DATA_DIR": str(data), **extra}


def _setup(tmp_path: Path) -> tuple[Path, Path, Path, Path, str]:
    data, folder = tmp_path / "data", tmp_path / "work"
    make_tree(folder, big_mb=20, small=500)
    hostfile = tmp_path / "host-secret.txt"
    hostfile.write_text(HOST_TEXT)
    hostdir = tmp_path / "host-dir"  # shaped like a folder of the tree, so a followed link would write here
    (hostdir / "e0").mkdir(parents=True)
    (hostdir / "e0" / "n2.txt").write_text(HOST_TEXT)
    script = GUEST_SCRIPT.replace("$HOSTFILE", str(hostfile)) + f"rm -rf docs/d2; ln -s {hostdir} docs/d2\n"
    return data, folder, hostfile, hostdir, script


def _undo(data: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paddock.cli", "undo", "--folder", str(folder), *args],
        capture_output=True, text=True, timeout=300, env=_env(data),
    )  # fmt: skip


def _host_untouched(hostfile: Path, hostdir: Path) -> None:
    assert hostfile.read_text() == HOST_TEXT
    assert (hostdir / "e0" / "n2.txt").read_text() == HOST_TEXT
    assert sorted(p.name for p in hostdir.rglob("*")) == ["e0", "n2.txt"]


def test_undo_after_a_turn_puts_every_byte_back(tmp_path: Path) -> None:
    data, folder, hostfile, hostdir, script = _setup(tmp_path)
    before = tree_state(folder)
    with MessagesAPI([tool("run_command", command=script, timeout_s=600), text("Done.")]) as api:
        proc = subprocess.run(
            [sys.executable, "-m", "paddock.cli", "run", "--folder", str(folder), "--new", "reorganise my files"],
            capture_output=True, text=True, timeout=900,
            env=_env(data, ANTHROPIC_BASE_URL=api.url, ANTHROPIC_API_KEY="test-key"),
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = tree_state(folder)
    assert after != before and after["victim.txt"][0] == "link" and "docs/d1-renamed" in after
    listed = _undo(data, folder, "--list")
    assert listed.returncode == 0, listed.stderr
    assert "reorganise my files" in listed.stdout and "changed after it" in listed.stdout
    undone = _undo(data, folder)
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert tree_state(folder) == before  # names, types, modes, mtimes, every file's sha256
    _host_untouched(hostfile, hostdir)
    # The undo can itself be undone: back to what the turn left, then forward again.
    again = _undo(data, folder, "--to", undone.stdout.rsplit("--to ", 1)[1].strip())
    assert again.returncode == 0, again.stderr
    assert {k: v for k, v in tree_state(folder).items() if v[0] != "dir"} == {
        k: v for k, v in after.items() if v[0] != "dir"
    }
    _host_untouched(hostfile, hostdir)
    records = list(AuditLog(data / "audit").records())
    kinds = [r["kind"] for r in records]
    assert kinds.count("undo.point") >= 4 and kinds.count("undo.restored") == 2, kinds
    # The points of the session were listings (nothing copied): every byte the undo put back was
    # kept by the change guard just before the guest's daemon changed it.
    session = [r["attributes"] for r in records if r["kind"] == "undo.point"][:2]
    assert [a["paddock.undo.kind"] for a in session] == ["start", "turn"], session
    assert all(a["paddock.undo.copied_bytes"] == 0 and a["paddock.undo.lazy_files"] > 500 for a in session)
    assert session[1]["paddock.undo.guarded"] is True


def _descendants(root: int) -> dict[int, str]:
    parent: dict[int, int] = {}
    comm: dict[int, str] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                head, rest = fh.read().rsplit(")", 1)
            parent[int(pid)] = int(rest.split()[1])
            comm[int(pid)] = head.split("(", 1)[1]
        except (OSError, ValueError, IndexError):
            continue
    out = {}
    for pid in parent:
        p = pid
        while p in parent and p > 1:
            p = parent[p]
            if p == root:
                out[pid] = comm[pid]
                break
    return out


@pytest.mark.parametrize("kill", ["vm", "app"])
def test_undo_after_a_turn_killed_midway(tmp_path: Path, kill: str) -> None:
    data, folder, hostfile, hostdir, script = _setup(tmp_path)
    before = tree_state(folder)
    script += "echo halfway > HALFWAY\nsleep 600\n"
    with MessagesAPI([tool("run_command", command=script, timeout_s=900), text("Done.")]) as api:
        proc = subprocess.Popen(
            [sys.executable, "-m", "paddock.cli", "run", "--folder", str(folder), "--new", "reorganise my files"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=_env(data, ANTHROPIC_BASE_URL=api.url, ANTHROPIC_API_KEY="test-key"),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 600
            while not (folder / "HALFWAY").exists():
                assert proc.poll() is None and time.monotonic() < deadline, "the turn never got halfway"
                time.sleep(0.5)
            if kill == "vm":
                qemu = [pid for pid, name in _descendants(proc.pid).items() if name.startswith("qemu-system")]
                assert len(qemu) == 1, _descendants(proc.pid)
                os.kill(qemu[0], signal.SIGKILL)
            else:
                os.kill(proc.pid, signal.SIGKILL)  # the app dies; its VM dies with it (PDEATHSIG)
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert tree_state(folder) != before
    undone = _undo(data, folder)
    assert undone.returncode == 0, undone.stdout + undone.stderr + out
    assert tree_state(folder) == before
    _host_untouched(hostfile, hostdir)
