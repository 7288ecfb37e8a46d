"""Cold boot and exec round trip, against host baselines measured in the same run."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.memory import pss_mb, rss_mb
from paddock.core.paths import runtime_dir
from paddock.egress import EgressGateway
from paddock.sandbox import SNAPSHOT_ENV, Sandbox, WarmPool, ensure_snapshot


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


async def _boots(
    folder: Path, n: int, *, restore: bool
) -> tuple[list[float], list[float], str, list[dict[str, float]]]:
    """Boot (cold, or woken from the saved sandbox) to a ready agent, and "folder chosen" to the
    first command's answer, with a wake's stages."""
    os.environ[SNAPSHOT_ENV] = "1" if restore else "0"
    if restore:
        await ensure_snapshot()
    boots: list[float] = []
    firsts: list[float] = []
    stages: list[dict[str, float]] = []
    accel = ""
    for _ in range(n):
        t0 = time.monotonic()
        sandbox = await Sandbox.boot(folder)
        boots.append(time.monotonic() - t0)
        t1 = time.monotonic()
        await sandbox.guest.run(["true"])
        firsts.append(time.monotonic() - t0)
        stages.append(_stages(sandbox, t1 - t0, time.monotonic() - t1))
        accel = sandbox.timings.accel.accel.value
        if sandbox.timings.restored != restore:
            raise RuntimeError("the benchmark did not boot the way it meant to")
        await sandbox.close()
    return boots, firsts, accel, stages


def _stages(sandbox: Sandbox, boot_s: float, first_s: float) -> dict[str, float]:
    """A boot's stages: the wake's own (QEMU restoring, the agent answering, shares attached,
    claim), the rest of ``Sandbox.boot`` (policy, image, accelerator, egress) and the command."""
    out = dict(sandbox.timings.stages)
    ahead = ("qemu_restore", "agent_answers") if sandbox.timings.pooled else ()
    out["rest_of_boot"] = boot_s - sum(v for k, v in out.items() if k not in ahead)
    out["first_command"] = first_s
    return {f"{k} (before the folder)" if k in ahead else k: v for k, v in out.items()}


async def _pooled(folder: Path, n: int) -> tuple[list[float], list[dict[str, float]], list[float], list[float]]:
    """The window's path: a sandbox woken ahead (the pool), then "folder chosen" to the first
    command's answer. Also the PSS the idle woken sandbox holds, and a pooled session's PSS."""
    os.environ[SNAPSHOT_ENV] = "1"
    pool = WarmPool()
    firsts: list[float] = []
    stages: list[dict[str, float]] = []
    idle: list[float] = []
    held: list[float] = []
    try:
        for _ in range(n):
            pool.fill()
            if not await pool.wait():
                raise RuntimeError("the pool could not wake a sandbox")
            await asyncio.sleep(1.0)  # the person choosing a folder; the woken guest settles
            idle.append(pss_mb(list(pool.pids.values())))
            t0 = time.monotonic()
            sandbox = await Sandbox.boot(folder, warm=pool)
            t1 = time.monotonic()
            await sandbox.guest.run(["true"])
            firsts.append(time.monotonic() - t0)
            if not sandbox.timings.pooled:
                raise RuntimeError("the benchmark did not take the pool's sandbox")
            stages.append(_stages(sandbox, t1 - t0, time.monotonic() - t1))
            held.append(pss_mb(list(sandbox.vm.pids.values())))
            await sandbox.close()
    finally:
        await pool.close()
    return firsts, stages, idle, held


async def _gateway_pss() -> float:
    """The egress gateway's own PSS (mitmproxy; started for a session with grants or asking)."""
    gateway = EgressGateway(runtime_dir() / "gw-bench", "bench", [], {})
    await gateway.start()
    try:
        await asyncio.sleep(1.0)
        proc = gateway._proc
        return pss_mb([proc.pid]) if proc is not None else 0.0
    finally:
        await gateway.stop()


def _median_stages(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in rows[0]] if rows else []
    return {k: round(_median([r[k] for r in rows if k in r]) * 1000, 1) for k in keys}


DD_MB = 64


def _mbps(seconds: float) -> float:
    return round(DD_MB / seconds, 1)


async def _virtiofs(folder: Path, repeats: int) -> tuple[list[float], list[float], dict[str, float]]:
    """Write (with fsync) and read (guest caches dropped) 64 MiB through the workspace share."""
    writes: list[float] = []
    reads: list[float] = []
    async with Sandbox.open(folder) as sandbox:
        run = sandbox.guest.run
        for _ in range(repeats):
            t0 = time.perf_counter()
            await run(["dd", "if=/dev/zero", "of=bench.bin", "bs=1M", f"count={DD_MB}", "conv=fsync", "status=none"])
            writes.append(_mbps(time.perf_counter() - t0))
            # The guest's user cannot drop the guest's caches (this fails as an ordinary user);
            # the reads run at the same speed the first time and after, through the share.
            await run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true"])
            t0 = time.perf_counter()
            await run(["dd", "if=bench.bin", "of=/dev/null", "bs=1M", "status=none"])
            reads.append(_mbps(time.perf_counter() - t0))
        pids = list(sandbox.vm.pids.values())
        memory = {"session_rss_mb": rss_mb(pids), "session_pss_mb": pss_mb(pids)}
        await run(["rm", "-f", "bench.bin"])
    return writes, reads, memory


def _host_disk(folder: Path, repeats: int) -> tuple[list[float], list[float]]:
    """The same on the host, through a subprocess dd, with the file dropped from the page cache."""
    writes: list[float] = []
    reads: list[float] = []
    target = folder / "host-bench.bin"
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={DD_MB}", "conv=fsync",
                        "status=none"], check=True)  # fmt: skip
        writes.append(_mbps(time.perf_counter() - t0))
        fd = os.open(target, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        t0 = time.perf_counter()
        subprocess.run(["dd", f"if={target}", "of=/dev/null", "bs=1M", "status=none"], check=True)
        reads.append(_mbps(time.perf_counter() - t0))
    target.unlink()
    return writes, reads


# The guest's own spawn floor: a shell in the guest starting the binary the round trip runs
# (``true`` on the commands' PATH is /usr/bin/true), timed by the guest's clock, one figure per
# start; printed as nanoseconds, one line per start.
FLOOR_SCRIPT = (
    'n=$1; i=0; while [ "$i" -lt "$n" ]; do s=$(date +%s%N); /usr/bin/true; e=$(date +%s%N); '
    "echo $((e - s)); i=$((i + 1)); done"
)
FLOOR_DATE_SCRIPT = (
    'n=$1; i=0; while [ "$i" -lt "$n" ]; do s=$(date +%s%N); e=$(date +%s%N); echo $((e - s)); i=$((i + 1)); done'
)


async def _floor(sandbox: Sandbox, n: int) -> list[float]:
    """Seconds per start of /usr/bin/true from a shell in the guest (the same run, the same guest):
    each start is bracketed by two ``date`` calls, and the same pair of ``date`` calls with nothing
    between them is measured alongside and taken off (median of those), so only the start remains."""

    async def lines(script: str) -> list[int]:
        out, err, result = await sandbox.guest.run(["sh", "-c", script, "floor", str(n)], timeout_s=600)
        if result.exit_code != 0:
            raise RuntimeError(f"the floor script failed: {err.decode(errors='replace')}")
        return [int(x) for x in out.split()]

    with_true = await lines(FLOOR_SCRIPT)
    bare = _median([float(x) for x in await lines(FLOOR_DATE_SCRIPT)])
    return [max(0.0, x - bare) / 1e9 for x in with_true]


async def _execs(folder: Path, n: int) -> tuple[list[float], list[float], list[float]]:
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
        floor = await _floor(sandbox, n)
    return execs, unary, floor


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
        boot_times, cold_first_times, accel, cold_stages = asyncio.run(_boots(folder, boots, restore=False))
        restore_times, first_times, _, woken_stages = asyncio.run(_boots(folder, boots, restore=True))
        pooled_times, pooled_stages, idle_pss, pooled_pss = asyncio.run(_pooled(folder, boots))
        exec_times, unary_times, floor_times = asyncio.run(_execs(folder, execs))
        vfs_writes, vfs_reads, memory = asyncio.run(_virtiofs(folder, 3))
        gateway_pss = asyncio.run(_gateway_pss())
        host_writes, host_reads = _host_disk(folder, 3)
        results: dict[str, Any] = {
            "accel": accel,
            "cold_boot_s": round(_median(boot_times), 3),
            "first_exec_cold_s": round(_median(cold_first_times), 3),
            "restore_s": round(_median(restore_times), 3),
            "first_exec_s": round(_median(first_times), 3),
            "first_exec_pooled_s": round(_median(pooled_times), 3),
            "stages_ms": {
                "cold": _median_stages(cold_stages),
                "woken": _median_stages(woken_stages),
                "pooled": _median_stages(pooled_stages),
            },
            "virtiofs_write_mbps": _median(vfs_writes),
            "virtiofs_read_mbps": _median(vfs_reads),
            "host_write_mbps": _median(host_writes),
            "host_read_mbps": _median(host_reads),
            **memory,
            "pooled_session_pss_mb": _median(pooled_pss),
            "idle_warm_pss_mb": _median(idle_pss),
            "gateway_pss_mb": gateway_pss,
            "exec_rtt_ms": round(_median(exec_times) * 1000, 2),
            "unary_rtt_ms": round(_median(unary_times) * 1000, 2),
            "exec_floor_ms": round(_median(floor_times) * 1000, 2),
            "exec_rtt_subprocess_ms": round(_median(_host_execs(["true"], execs)) * 1000, 2),
            "runs": {
                "cold_boot_s": boots,
                "first_exec_cold_s": boots,
                "restore_s": boots,
                "first_exec_s": boots,
                "virtiofs_write_mbps": 3,
                "virtiofs_read_mbps": 3,
                "host_write_mbps": 3,
                "host_read_mbps": 3,
                "session_rss_mb": 1,
                "session_pss_mb": 1,
                "first_exec_pooled_s": boots,
                "pooled_session_pss_mb": boots,
                "idle_warm_pss_mb": boots,
                "gateway_pss_mb": 1,
                "exec_rtt_ms": execs,
                "unary_rtt_ms": execs,
                "exec_floor_ms": execs,
                "exec_rtt_subprocess_ms": execs,
            },
            "raw": {
                "cold_boot_s": [round(t, 3) for t in boot_times],
                "restore_s": [round(t, 3) for t in restore_times],
                "first_exec_pooled_s": [round(t, 3) for t in pooled_times],
            },
        }
        bwrap = shutil.which("bwrap")
        if bwrap:
            argv = [bwrap, "--ro-bind", "/", "/", "--bind", tmp, tmp, "--unshare-all", "--die-with-parent", "true"]
            results["exec_rtt_bwrap_ms"] = round(_median(_host_execs(argv, execs)) * 1000, 2)
            results["runs"]["exec_rtt_bwrap_ms"] = execs
        return results
