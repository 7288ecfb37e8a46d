"""What a waiting sandbox costs the host's CPU: QEMU's and the share daemons' user + system time
over a window, as a percentage of one core.

    .venv/bin/python -m benchmarks.idle [--runs 3] [--window 20] [--settle 5]

Two waits are measured: the window's pool holding a woken sandbox before a folder is chosen
(``idle_pool_cpu_pct``), and a session between turns: claimed, both shares attached, the last
command answered, nothing running (``idle_cpu_pct``). Medians of ``--runs``.
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

from paddock.sandbox import SNAPSHOT_ENV, Sandbox, WarmPool

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pids: list[int]) -> float:
    """User + system seconds these processes (and their waited-for children) have used so far."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / TICK  # utime stime cutime cstime
    return total


async def cpu_pct(pids: list[int], window_s: float) -> float:
    c0, t0 = cpu_s(pids), time.monotonic()
    await asyncio.sleep(window_s)
    return 100 * (cpu_s(pids) - c0) / (time.monotonic() - t0)


async def _pool(window_s: float, settle_s: float) -> float:
    os.environ[SNAPSHOT_ENV] = "1"
    pool = WarmPool()
    try:
        pool.fill()
        if not await pool.wait():
            raise RuntimeError(f"the pool could not wake a sandbox: {pool.last_error}")
        await asyncio.sleep(settle_s)
        return await cpu_pct(list(pool.pids.values()), window_s)
    finally:
        await pool.close()


async def _session(folder: Path, window_s: float, settle_s: float) -> float:
    async with Sandbox.open(folder) as sandbox:
        await sandbox.guest.run(["true"])
        await asyncio.sleep(settle_s)
        return await cpu_pct(list(sandbox.vm.pids.values()), window_s)


def measure(runs: int = 3, window_s: float = 20.0, settle_s: float = 5.0) -> dict[str, Any]:
    pool: list[float] = []
    session: list[float] = []
    with tempfile.TemporaryDirectory(prefix="paddock-idle-") as tmp:
        for _ in range(runs):
            pool.append(asyncio.run(_pool(window_s, settle_s)))
            session.append(asyncio.run(_session(Path(tmp), window_s, settle_s)))
    return {
        "idle_cpu_pct": round(statistics.median(session), 2),
        "idle_pool_cpu_pct": round(statistics.median(pool), 2),
        "raw_idle_cpu_pct": [round(x, 2) for x in session],
        "raw_idle_pool_cpu_pct": [round(x, 2) for x in pool],
        "idle_window_s": window_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured (default 20)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds waited first (default 5)")
    ns = parser.parse_args()
    print(json.dumps(measure(ns.runs, ns.window, ns.settle), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
