"""What restore points cost (``paddock.session.undo``): the time they add to opening a folder
and to each turn, and the disk they use. Host only — a restore point never involves the guest.

    .venv/bin/python -m benchmarks.undo [--mb 1024] [--files 10000] [--turn-mb 100]

* open, undo off: a session's start does no work for undo (policy ``undo.budget_mb: 0``).
* open, undo on, first time: the folder's first restore point copies every file once.
* open, undo on, again: a later session on the unchanged folder only lists it (nothing copied).
* turn: a turn that changed ``--turn-mb`` MB (one big file changed in place, and small files
  rewritten) costs the next restore point that much copying; undo then puts it back.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from paddock.audit import AuditLog, AuditTrail
from paddock.policy import EffectivePolicy
from paddock.session.auditing import SessionAuditor
from paddock.session.undoing import FolderUndo

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

        on = _undo(folder, work, None)
        t0 = time.perf_counter()
        first = asyncio.run(on.point("start", "bench"))
        out["undo_open_first_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = asyncio.run(on.point("start", "bench again"))
        out["undo_open_again_s"] = time.perf_counter() - t0
        assert first is not None and again is not None and again.copied_files == 0
        out["undo_store_mb_after_open"] = _du(work / "store") / MB

        # A turn that changes turn_mb: the big file in place, and enough small files rewritten.
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
        t0 = time.perf_counter()
        turn = asyncio.run(on.point("turn", "bench turn"))
        out["undo_turn_s"] = time.perf_counter() - t0
        assert turn is not None
        out["undo_turn_copied_mb"] = turn.copied_bytes / MB
        out["undo_store_mb_after_turn"] = _du(work / "store") / MB
        t0 = time.perf_counter()
        done = asyncio.run(on.undo(to=first.point.id))
        out["undo_restore_s"] = time.perf_counter() - t0
        assert not done.failed
        out["undo_restore_files"] = len(done.written)
        shutil.rmtree(folder)
    return out


ROWS = (
    ("open, undo off: time undo adds", "undo_open_off_s", "s"),
    ("open, undo on, folder's first restore point (copies the folder once)", "undo_open_first_s", "s"),
    ("the same folder copied with `cp -a` (baseline, same run)", "undo_baseline_cp_s", "s"),
    ("open, undo on, unchanged folder seen before (lists it, copies nothing)", "undo_open_again_s", "s"),
    ("restore point store after the first open", "undo_store_mb_after_open", "MB"),
    ("restore point after a turn that changed the turn's MB", "undo_turn_s", "s"),
    ("copied for that turn", "undo_turn_copied_mb", "MB"),
    ("restore point store after that turn", "undo_store_mb_after_turn", "MB"),
    ("undo of that turn (before-undo point + restore)", "undo_restore_s", "s"),
)


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
