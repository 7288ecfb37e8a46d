"""Cold boot and exec round trip, against host baselines measured in the same run."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from paddock.session.sandbox import Sandbox


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


async def _boots(folder: Path, n: int) -> tuple[list[float], str]:
    times: list[float] = []
    accel = ""
    for _ in range(n):
        t0 = time.monotonic()
        sandbox = await Sandbox.boot(folder)
        times.append(time.monotonic() - t0)
        accel = sandbox.timings.accel.accel.value
        await sandbox.close()
    return times, accel


async def _execs(folder: Path, n: int) -> tuple[list[float], list[float]]:
    async with Sandbox.open(folder) as sandbox:
        await sandbox.guest.run(["true"])  # warm up
        execs: list[float] = []
        for _ in range(n):
            t0 = time.perf_counter()
            await sandbox.guest.run(["true"])
            execs.append(time.perf_counter() - t0)
        unary: list[float] = []
        for _ in range(n):
            t0 = time.perf_counter()
            await sandbox.guest.health()
            unary.append(time.perf_counter() - t0)
    return execs, unary


def _host_execs(argv: list[str], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True)
        out.append(time.perf_counter() - t0)
    return out


def measure(boots: int, execs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="paddock-bench-") as tmp:
        folder = Path(tmp)
        boot_times, accel = asyncio.run(_boots(folder, boots))
        exec_times, unary_times = asyncio.run(_execs(folder, execs))
        results: dict[str, Any] = {
            "accel": accel,
            "cold_boot_s": round(_median(boot_times), 3),
            "exec_rtt_ms": round(_median(exec_times) * 1000, 2),
            "unary_rtt_ms": round(_median(unary_times) * 1000, 2),
            "exec_rtt_subprocess_ms": round(_median(_host_execs(["true"], execs)) * 1000, 2),
            "runs": {
                "cold_boot_s": boots,
                "exec_rtt_ms": execs,
                "unary_rtt_ms": execs,
                "exec_rtt_subprocess_ms": execs,
            },
            "raw": {"cold_boot_s": [round(t, 3) for t in boot_times]},
        }
        bwrap = shutil.which("bwrap")
        if bwrap:
            argv = [bwrap, "--ro-bind", "/", "/", "--bind", tmp, tmp, "--unshare-all", "--die-with-parent", "true"]
            results["exec_rtt_bwrap_ms"] = round(_median(_host_execs(argv, execs)) * 1000, 2)
            results["runs"]["exec_rtt_bwrap_ms"] = execs
        return results
