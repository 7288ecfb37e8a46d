"""What seeing read opens costs (#32): a real sandbox with the change guard, with and without the
sensitive-read watch (``paddock.sandbox.sensitive``), timed inside the guest and from the host.

    .venv/bin/python -m benchmarks.sensitive_reads [--runs 3] [--files 400] [--mb 64]

* share read throughput: ``--files`` small files (4 KiB) opened and read, per file; one ``--mb``
  MB file read through, MB/s (one open: what the watch adds is per open, not per byte);
* first command: from "sandbox ready" to the first command's exit (``python3 -c pass``), host side;
* a turn: a typical turn's commands (``grep -r`` over the folder, ``wc`` on every file, a Python
  script reading a CSV), one shell command, timed inside the guest.

Both sandboxes run the change guard (undo on), so the difference is the read-open notification
and the watcher's look at each file; they alternate, ``--runs`` times each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from paddock.policy import EffectivePolicy
from paddock.sandbox import Sandbox
from paddock.undo.keeper import LazyKeeper
from paddock.undo.store import MB, UndoStore

SMALL = r"""
import os, sys, time
os.chdir("/workspace/small")
names = sorted(os.listdir("."))
t0 = time.perf_counter()
for n in names:
    with open(n, "rb") as f:
        f.read()
print((time.perf_counter() - t0) / len(names))
"""
BIG = r"""
import time
t0 = time.perf_counter()
n = 0
with open("/workspace/big.bin", "rb") as f:
    while chunk := f.read(1 << 20):
        n += len(chunk)
print(n / (1 << 20) / (time.perf_counter() - t0))
"""
TURN = r"""
import subprocess, time
t0 = time.perf_counter()
subprocess.run("cd /workspace && grep -rl needle small >/dev/null; wc -c small/* >/dev/null", shell=True, check=False)
subprocess.run(["python3", "-c", "import csv; rows=list(csv.reader(open('/workspace/sales.csv'))); print(len(rows))"],
               check=True, capture_output=True)
print(time.perf_counter() - t0)
"""


def _folder(root: Path, files: int, mb: int) -> None:
    (root / "small").mkdir(parents=True)
    for i in range(files):
        (root / "small" / f"f{i:04d}.txt").write_bytes(os.urandom(2048).hex().encode())
    with open(root / "big.bin", "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(MB))
    (root / "sales.csv").write_text("".join(f"{i},item{i},{i * 3}\n" for i in range(20000)))
    (root / ".env").write_text("TOKEN=x\n")  # one sensitive file in the folder, never read here


async def _guest(sandbox: Sandbox, code: str) -> float:
    out, err, res = await sandbox.guest.run(["python3", "-c", code], timeout_s=600)
    if res.shell_code != 0:
        raise RuntimeError(err.decode())
    return float(out.split()[-1])


async def _one(folder: Path, store_root: Path, watch: bool) -> dict[str, Any]:
    store = UndoStore(folder, budget_mb=1000, root=store_root)
    keeper = LazyKeeper(store)
    store.on_point = keeper.arm
    sandbox = await Sandbox.boot(folder, keeper=keeper, policy=EffectivePolicy(), watch_reads=watch)
    try:
        t0 = time.monotonic()
        _, _, res = await sandbox.guest.run(["python3", "-c", "pass"])
        first = time.monotonic() - t0
        assert res.shell_code == 0
        row = {"first_command_s": first, "small_open_read_us": await _guest(sandbox, SMALL) * 1e6,
               "big_read_mb_s": await _guest(sandbox, BIG), "turn_s": await _guest(sandbox, TURN)}  # fmt: skip
        if watch:
            assert sandbox.sensitive is not None and not sandbox.sensitive.reads, "nothing sensitive was read"
            row["opens_seen"] = sandbox.sensitive.opens
        return row
    finally:
        await sandbox.close()


async def measure(runs: int, files: int, mb: int) -> dict[str, Any]:
    rows: dict[str, list[dict[str, Any]]] = {"watched": [], "not_watched": []}
    with tempfile.TemporaryDirectory(prefix="paddock-reads-bench-") as tmp:
        folder = Path(tmp) / "work"
        _folder(folder, files, mb)
        for i in range(runs):
            for kind in rows:
                rows[kind].append(await _one(folder, Path(tmp) / f"undo-{kind}-{i}", kind == "watched"))
    out: dict[str, Any] = {"files": files, "mb": mb, "runs": rows}
    for key in ("first_command_s", "small_open_read_us", "big_read_mb_s", "turn_s"):
        for kind, rs in rows.items():
            vals = [r[key] for r in rs]
            out[f"{kind}_{key}"] = [round(min(vals), 4), round(statistics.median(vals), 4), round(max(vals), 4)]
        w, n = (
            statistics.median(r[key] for r in rows["watched"]),
            statistics.median(r[key] for r in rows["not_watched"]),
        )
        out[f"cost_{key}_pct"] = round(((n / w) - 1 if key == "big_read_mb_s" else (w / n) - 1) * 100, 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--mb", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.runs, args.files, args.mb)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
