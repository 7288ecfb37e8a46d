"""The change guard on the real, jailed virtiofsd: the guest cannot change a file in the folder
before Paddock has kept the version a restore point recorded, and with Paddock's supervisor gone
the guest cannot change the folder at all (the guarded calls fail; nothing is lost).

Real: the VM, each virtiofsd that runs here (QEMU's C one, the Rust one; ``virtiofsd`` runs the
test once per daemon and skips one that is not installed) jailed by bubblewrap under the guard's
seccomp filter, the guest agent and its commands, the undo store on disk. Nothing is faked (no
model is involved).
"""

from __future__ import annotations

import gc
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from paddock.core.errors import PaddockError
from paddock.undo.keeper import LazyKeeper
from paddock.undo.restore import restore
from paddock.undo.store import MB, UndoStore
from paddock.vm import VMState
from paddock.vm.sharing import FolderSharing
from tests.conftest import VMFactory
from tests.undo_tree import tree_state

pytestmark = pytest.mark.vm


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_guest_cannot_change_a_file_before_it_is_kept_nor_at_all_without_paddock(
    vms: VMFactory, tmp_path: Path, virtiofsd: FolderSharing
) -> None:
    folder = tmp_path / "workspace"
    store = UndoStore(folder, budget_mb=1_000, root=tmp_path / "undo")
    keeper = LazyKeeper(store)
    store.on_point = keeper.arm
    b = vms.boot(tmp_path, keeper=keeper)
    assert b.sandbox.vm.config.tools.sharing.daemon is virtiofsd.daemon
    guard = b.sandbox.vm.guards.get("workspace")
    assert guard is not None and guard.active, b.sandbox.vm.guard_failures

    # 1. In place, through the daemon: the point is a listing, the write is preceded by a copy.
    (folder / "big.bin").write_bytes(os.urandom(16 * MB))
    (folder / "doc.txt").write_text("the person's text\n")
    original = _sha(folder / "big.bin")
    made = store.make("turn", "t", "s", lazy=True, eager=guard.writers)
    assert made.copied_bytes == 0 and made.lazy_files == 2
    _out, err, code = b.sh("printf CHANGED | dd of=/workspace/big.bin bs=1 seek=1000 conv=notrunc status=none")
    assert code == 0, err
    assert _sha(folder / "big.bin") != original
    assert keeper.kept_files == 1 and guard.notified > 0
    assert restore(store, made.point).failed == []
    assert _sha(folder / "big.bin") == original

    # 2. A command still running holds a file open for writing across the point (the daemon opened
    # it before the point, so the guard will see no open): the point copies it at once.
    writer = threading.Thread(target=b.sh, args=(
        "exec 3>/workspace/log.txt; echo first >&3; touch /workspace/ready;"
        " while [ ! -e /workspace/go ]; do sleep 0.1; done;"
        " echo later >&3",))  # fmt: skip
    writer.start()
    deadline = time.monotonic() + 60
    while not (folder / "ready").exists():
        assert time.monotonic() < deadline, "the background writer never started"
        time.sleep(0.1)
    made = store.make("turn", "t2", "s", lazy=True, eager=guard.writers)
    assert store.has(made.point.items["log.txt"].ref)  # new since the last point, held open for writing
    (folder / "go").touch()
    writer.join(timeout=60)
    assert (folder / "log.txt").read_text() == "first\nlater\n"
    assert restore(store, made.point).failed == []
    assert (folder / "log.txt").read_text() == "first\n"

    # 3. Paddock's supervisor gone (its listener closed under it): the daemon is stopped at once, so
    # the guest can no longer change the folder at all; the folder is as it was.
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, guard.listener)  # the listener closed; its number stays taken until the guard's own close
    os.close(null)
    deadline = time.monotonic() + 30
    while b.sandbox.vm.state is not VMState.FAILED:
        assert time.monotonic() < deadline, "the sandbox kept running without its change guard"
        time.sleep(0.1)
    assert "folder-sharing helper" in (b.sandbox.vm.failure or "")
    with pytest.raises(PaddockError):
        b.sh("cd /workspace; echo x >> doc.txt; : > big.bin; rm doc.txt")
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    vms.close(b)
    # The failed VM's control channel leaves a future whose error is logged when it is collected;
    # collect it now, not in the middle of pytest parsing a module at the end (CPython 3.11's ast
    # state is not re-entrant: "AST constructor recursion depth mismatch", gh-106905).
    gc.collect()


# Every way the guest can change a file through the daemon, one file each (the daemon's calls
# for them are listed in docs/UNDO.md, "What the guard sees").
CHANGES = r"""
import ctypes, os
os.chdir("/workspace")
libc = ctypes.CDLL(None, use_errno=True)
os.truncate("trunc.bin", 100)  # a size change without an open file: the daemon reopens it to write
with open("alloc.bin", "r+b") as f:
    os.posix_fallocate(f.fileno(), 0, 4 << 20)
with open("src.bin", "rb") as s, open("copied.bin", "r+b") as d:
    os.copy_file_range(s.fileno(), d.fileno(), 4096, 0, 0)
with open("written.bin", "r+b") as f:
    os.pwritev(f.fileno(), [b"CHANGED"], 10)
os.chmod("mode.bin", 0o600)
os.utime("times.bin", (1, 1))
os.link("linked.bin", "second-name.bin")
with open("new.bin", "wb") as f:
    f.write(b"new")
os.rename("new.bin", "replaced.bin")
assert libc.syscall(316, -100, b"a.bin", -100, b"b.bin", 2) == 0, os.strerror(ctypes.get_errno())  # RENAME_EXCHANGE
os.unlink("gone.bin")
"""
NAMES = ["trunc", "alloc", "src", "copied", "written", "mode", "times", "linked", "replaced", "a", "b", "gone"]


def test_every_way_the_guest_changes_a_file_is_kept_first(
    vms: VMFactory, tmp_path: Path, virtiofsd: FolderSharing
) -> None:
    """Each change reaches the folder only after the file's version is kept, and the undo puts
    every file back byte for byte, with its mode and mtime. (Before: the Rust daemon ran with no
    guard at all, and a link, made through /proc's magic link, was not kept on either daemon.)"""
    folder = tmp_path / "workspace"
    store = UndoStore(folder, budget_mb=1_000, root=tmp_path / "undo")
    keeper = LazyKeeper(store)
    store.on_point = keeper.arm
    b = vms.boot(tmp_path, keeper=keeper)
    guard = b.sandbox.vm.guards.get("workspace")
    assert guard is not None and guard.active, b.sandbox.vm.guard_failures
    for i, name in enumerate(NAMES):
        (folder / f"{name}.bin").write_bytes(os.urandom(MB + i))
    before = tree_state(folder)
    made = store.make("turn", "t", "s", lazy=True, eager=guard.writers)
    assert made.copied_bytes == 0 and made.lazy_files == len(NAMES)
    _out, err, code = b.run(["python3", "-c", CHANGES])
    assert code == 0, err
    after = tree_state(folder)
    # (a link changes only the file's ctime: not shown here, but a new version all the same)
    assert {n for n in before if after.get(n) != before[n]} == {f"{n}.bin" for n in NAMES if n not in ("src", "linked")}
    assert "second-name.bin" in after
    assert restore(store, made.point).failed == []
    assert tree_state(folder) == before
    vms.close(b)
