"""What restore points cost (``paddock.undo.store``): the time they add to opening a folder
and to each turn, and the disk they use. Host only — a restore point never involves the guest.

    .venv/bin/python -m benchmarks.undo [--mb 1024] [--files 10000] [--turn-mb 100]

* open, undo off: a session's start does no work for undo (policy ``undo.budget_mb: 0``).
* open, undo on, with the change guard (``paddock.vm.guard``, as a session's folder-sharing
  daemon runs): the restore point is a listing; nothing is copied.
* turn: a process under the guard changes ``--turn-mb`` MB (one big file changed in place, and
  small files rewritten); the guard keeps each file before its first change. The extra time is
  the same changes' time under the guard minus without it, plus the next point.
* without the guard (where it cannot run): the folder's first point copies every file once; a
  later one only lists it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from paddock.audit import AuditLog, AuditTrail
from paddock.policy import EffectivePolicy
from paddock.session.auditing import SessionAuditor
from paddock.session.undoing import FolderUndo
from paddock.vm import Keeper
from paddock.vm.guard import launch_guarded

MB = 1024 * 1024


def _make(folder: Path, total_mb: int, files: int, big_mb: int) -> None:
    """``files`` files in nested folders, ``total_mb`` in all: one big file and the rest spread out."""
    folder.mkdir(parents=True)
    block = os.urandom(MB)
    with open(folder / "big.bin", "wb") as f:
        for i in range(big_mb):
            f.write(block[i % 997 :] + block[: i % 997])
    each = max(1, (total_mb - big_mb) * MB // max(1, files - 1))
    for i in range(files - 1):
        d = folder / f"d{i % 50}" / f"e{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.dat").write_bytes(block[i % 1000 : i % 1000 + min(each, MB - 1000)] * max(1, each // (MB - 1000)))


def _undo(folder: Path, work: Path, budget_mb: int | None) -> FolderUndo:
    trail = AuditTrail(AuditLog(work / "audit", key=os.urandom(32)), None)
    policy = EffectivePolicy(undo_budget_mb=budget_mb)
    return FolderUndo(folder, policy, SessionAuditor(trail, folder), root=work / "store")


def _du(path: Path) -> int:
    seen: set[int] = set()
    total = 0
    for root, _dirs, names in os.walk(path):
        for n in names:
            st = os.lstat(os.path.join(root, n))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_blocks * 512
    return total


CHANGE = """
import sys
from pathlib import Path
folder, big_mb, turn_mb = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
MB = 1024 * 1024
with open(folder / "big.bin", "r+b") as f:
    f.write(b"changed in place")
changed = big_mb * MB
small = sorted(folder.glob("d*/e*/*.dat"))
i = 0
while changed < turn_mb * MB and i < len(small):
    data = small[i].read_bytes()
    small[i].write_bytes(data[::-1])
    changed += len(data)
    i += 1
"""


async def _turn(folder: Path, big_mb: int, turn_mb: int, keeper: Keeper | None) -> float:
    """The turn's changes made by a separate process: under the change guard (as the guest's
    daemon is), or not. The seconds they took."""

    async def spawn(_name: str, argv: list[str], fds: tuple[int, ...]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(*argv, pass_fds=fds)

    argv = [sys.executable, "-c", CHANGE, str(folder), str(big_mb), str(turn_mb)]
    t0 = time.perf_counter()
    if keeper is None:
        proc = await spawn("turn", argv, ())
        await proc.wait()
        return time.perf_counter() - t0
    launched = await launch_guarded(spawn, "turn", argv, (), keeper)
    assert not isinstance(launched, str), launched
    proc, guard = launched
    await proc.wait()
    took = time.perf_counter() - t0
    guard.close()
    return took


def measure(total_mb: int = 1024, files: int = 10_000, turn_mb: int = 100) -> dict[str, Any]:
    big_mb = min(turn_mb, total_mb // 2)
    with tempfile.TemporaryDirectory(prefix="paddock-bench-undo-") as tmp:
        work = Path(tmp)
        folder = work / "folder"
        _make(folder, total_mb, files, big_mb)
        os.sync()
        out: dict[str, Any] = {"undo_folder_mb": total_mb, "undo_folder_files": files, "undo_turn_mb": turn_mb}

        t0 = time.perf_counter()  # the baseline: the same files copied by cp, in the same run
        subprocess.run(["cp", "-a", str(folder), str(work / "baseline-copy")], check=True)
        out["undo_baseline_cp_s"] = time.perf_counter() - t0
        shutil.rmtree(work / "baseline-copy")
        os.sync()
        off = _undo(folder, work, 0)
        t0 = time.perf_counter()
        asyncio.run(off.point("start", "bench"))
        out["undo_open_off_s"] = time.perf_counter() - t0

        # Guarded (the session's folder-sharing daemon under the change guard): a listing.
        on = _undo(folder, work, None)
        on.store.on_point = on.keeper.arm
        t0 = time.perf_counter()
        first = asyncio.run(on.point("start", "bench", lazy=True))
        out["undo_open_lazy_s"] = time.perf_counter() - t0
        assert first is not None
        out["undo_open_lazy_copied_mb"] = first.copied_bytes / MB
        out["undo_store_mb_after_lazy_open"] = _du(work / "store") / MB

        # A turn that changes turn_mb (the big file in place, small files rewritten), under the guard.
        guarded_s = asyncio.run(_turn(folder, big_mb, turn_mb, on.keeper))
        t0 = time.perf_counter()
        turn = asyncio.run(on.point("turn", "bench turn", lazy=True))
        out["undo_turn_point_s"] = time.perf_counter() - t0
        assert turn is not None
        out["undo_turn_kept_mb"] = (on.keeper.kept_bytes + turn.copied_bytes) / MB
        out["undo_store_mb_after_turn"] = _du(work / "store") / MB
        t0 = time.perf_counter()
        done = asyncio.run(on.undo(to=first.point.id))
        out["undo_restore_s"] = time.perf_counter() - t0
        assert not done.failed, done.failed
        out["undo_restore_files"] = len(done.written)
        plain_s = asyncio.run(_turn(folder, big_mb, turn_mb, None))  # the same changes, unguarded
        out["undo_turn_guarded_s"], out["undo_turn_plain_s"] = guarded_s, plain_s
        out["undo_turn_extra_s"] = guarded_s - plain_s + out["undo_turn_point_s"]

        # Unguarded (no change guard here, or the Rust daemon): the first point copies the folder.
        copying = _undo(folder, work / "copying", None)
        t0 = time.perf_counter()
        asyncio.run(copying.point("start", "bench"))
        out["undo_open_first_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = asyncio.run(copying.point("start", "bench again"))
        out["undo_open_again_s"] = time.perf_counter() - t0
        assert again is not None and again.copied_files == 0
        out["undo_store_mb_after_open"] = _du(work / "copying" / "store") / MB
        shutil.rmtree(folder)
    return out


ROWS = (
    ("open, undo off: time undo adds", "undo_open_off_s", "s"),
    ("open, undo on, change guard (a listing)", "undo_open_lazy_s", "s"),
    ("copied when opening it", "undo_open_lazy_copied_mb", "MB"),
    ("restore point store after that open", "undo_store_mb_after_lazy_open", "MB"),
    ("extra time for a turn that changed the turn's MB (kept before the writes + the next point)",
     "undo_turn_extra_s", "s"),
    ("the turn's changes under the guard", "undo_turn_guarded_s", "s"),
    ("the same changes without it", "undo_turn_plain_s", "s"),
    ("the next point alone (a listing)", "undo_turn_point_s", "s"),
    ("kept for that turn", "undo_turn_kept_mb", "MB"),
    ("restore point store after that turn", "undo_store_mb_after_turn", "MB"),
    ("undo of that turn (before-undo point + restore)", "undo_restore_s", "s"),
    ("without the guard: open, the folder's first point (copies it once)", "undo_open_first_s", "s"),
    ("the same folder copied with `cp -a` (baseline, same run)", "undo_baseline_cp_s", "s"),
    ("without the guard: open again, unchanged (lists it)", "undo_open_again_s", "s"),
    ("without the guard: store after the first open", "undo_store_mb_after_open", "MB"),
)  # fmt: skip


def table(r: dict[str, Any]) -> str:
    lines = [f"Restore points: a {r['undo_folder_mb']:,} MB folder of {r['undo_folder_files']:,} files; "
             f"a turn changing {r['undo_turn_mb']} MB\n", "| measure | value |", "|---|---:|"]  # fmt: skip
    for label, key, unit in ROWS:
        v = r[key]
        lines.append(f"| {label} | {v:,.0f} {unit} |" if v >= 100 else f"| {label} | {v:.3g} {unit} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=1024, help="folder size in MB (default 1024)")
    parser.add_argument("--files", type=int, default=10_000, help="files in the folder (default 10,000)")
    parser.add_argument("--turn-mb", type=int, default=100, help="MB a turn changes (default 100)")
    ns = parser.parse_args()
    print(table(measure(ns.mb, ns.files, ns.turn_mb)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
