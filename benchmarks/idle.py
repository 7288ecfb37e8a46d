"""What a waiting sandbox costs the host's CPU: QEMU's and the share daemons' user + system time
over a window, as a percentage of one core.

    .venv/bin/python -m benchmarks.idle [--runs 3] [--window 20] [--settle 5]

Two waits are measured: the window's pool holding a woken sandbox before a folder is chosen
(``idle_pool_cpu_pct``), and a session between turns: claimed, both shares attached, the last
command answered, nothing running (``idle_cpu_pct``), beside the same session with pausing off
(``idle_unpaused_cpu_pct``, the baseline), and the command after the wait in each
(``exec_after_idle_ms``: a paused one is resumed first). Medians of ``--runs``.
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

from paddock.guest.idle import IDLE_ENV
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


async def _session(folder: Path, window_s: float, settle_s: float, *, pause: bool) -> tuple[float, float]:
    """A session's CPU while it waits, and then how long its next command (``true``) takes."""
    if pause:
        os.environ.pop(IDLE_ENV, None)  # the default
    else:
        os.environ[IDLE_ENV] = "0"
    async with Sandbox.open(folder) as sandbox:
        await sandbox.guest.run(["true"])
        await asyncio.sleep(settle_s)
        pct = await cpu_pct(list(sandbox.vm.pids.values()), window_s)
        t0 = time.perf_counter()
        await sandbox.guest.run(["true"])
        return pct, time.perf_counter() - t0


def measure(runs: int = 3, window_s: float = 20.0, settle_s: float = 5.0) -> dict[str, Any]:
    """Each run: the pool's sandbox, a session (paused while it waits, the default) and the same
    session with pausing off (PADDOCK_IDLE_PAUSE_S=0: the baseline, in the same run)."""
    saved = os.environ.get(IDLE_ENV)
    pool: list[float] = []
    session: list[float] = []
    after: list[float] = []
    unpaused: list[float] = []
    unpaused_after: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="paddock-idle-") as tmp:
            for _ in range(runs):
                pool.append(asyncio.run(_pool(window_s, settle_s)))
                pct, first = asyncio.run(_session(Path(tmp), window_s, settle_s, pause=True))
                session.append(pct)
                after.append(first)
                pct, first = asyncio.run(_session(Path(tmp), window_s, settle_s, pause=False))
                unpaused.append(pct)
                unpaused_after.append(first)
    finally:
        os.environ.pop(IDLE_ENV, None)
        if saved is not None:
            os.environ[IDLE_ENV] = saved
    return {
        "idle_cpu_pct": round(statistics.median(session), 2),
        "idle_pool_cpu_pct": round(statistics.median(pool), 2),
        "idle_unpaused_cpu_pct": round(statistics.median(unpaused), 2),
        "exec_after_idle_ms": round(statistics.median(after) * 1000, 2),
        "exec_after_idle_unpaused_ms": round(statistics.median(unpaused_after) * 1000, 2),
        "raw_idle_cpu_pct": [round(x, 2) for x in session],
        "raw_idle_pool_cpu_pct": [round(x, 2) for x in pool],
        "raw_idle_unpaused_cpu_pct": [round(x, 2) for x in unpaused],
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
