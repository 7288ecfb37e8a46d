"""Where an exec round trip goes: ``python -m benchmarks.exec_profile [N]``.

In one woken sandbox, medians of N runs of: a unary call (gRPC and the agent's Python, no
process); ``true`` through Exec (the whole path) and the agent's own measure of it (start to
exit, inside the guest); a static binary through Exec; and, timed inside the guest by one
shell, a plain fork+exec of ``true`` (dynamic) and of busybox (static), and ``true`` through the
run-as helper without its cgroup join (the guest's user may not join; the agent's root does).
The differences name the stages. The guest's clock ticks in 4 ms steps (refined-jiffies), so
in-guest figures are averages over N."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from paddock.sandbox import SNAPSHOT_ENV, Sandbox


def ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 2)


BUSYBOX = "/opt/paddock/bin/busybox"
RUNAS = "/opt/paddock/bin/paddock-runas"


async def _profile(folder: Path, n: int) -> dict[str, Any]:
    os.environ.setdefault(SNAPSHOT_ENV, "1")
    async with Sandbox.open(folder) as sandbox:
        guest = sandbox.guest
        await guest.run(["true"])
        unary, rtt, agent, static = [], [], [], []
        for _ in range(n):
            t0 = time.perf_counter()
            await guest.health()
            unary.append(time.perf_counter() - t0)
        for _ in range(n):
            t0 = time.perf_counter()
            _, _, result = await guest.run(["true"])
            rtt.append(time.perf_counter() - t0)
            agent.append(result.duration_s)
        for _ in range(n):
            t0 = time.perf_counter()
            await guest.run([BUSYBOX, "true"])
            static.append(time.perf_counter() - t0)
        loops = {
            "guest_shell_loop_empty_ms": f"for i in $(seq {n}); do :; done",
            "guest_fork_exec_static_ms": f"for i in $(seq {n}); do {BUSYBOX} true; done",
            "guest_fork_exec_true_ms": f"for i in $(seq {n}); do /usr/bin/true; done",
            "guest_runas_no_cgroup_true_ms": f"for i in $(seq {n}); do {RUNAS} - 1000 1000 - -- /usr/bin/true; done",
        }
        out: dict[str, Any] = {}
        for key, loop in loops.items():
            script = f"s=$(date +%s%N); {loop}; e=$(date +%s%N); echo $(( (e - s) / {n} ))"
            stdout, stderr, _ = await guest.run(["sh", "-c", script])
            out[key] = round(int(stdout.decode().strip() or 0) / 1e6, 2) if stdout.strip() else stderr.decode()
    return {"unary_ms": ms(unary), "exec_true_ms": ms(rtt), "agent_measured_true_ms": ms(agent),
            "exec_static_true_ms": ms(static), **out}  # fmt: skip


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="paddock-bench-") as tmp:
        for k, v in asyncio.run(_profile(Path(tmp), int(sys.argv[1]) if len(sys.argv) > 1 else 30)).items():
            print(f"{k}: {v}")
