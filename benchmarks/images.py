"""Two guest images side by side: the cold first command of each, alternating, in one run.

    .venv/bin/python -m benchmarks.images [--rounds 3] [--execs N] NAME=IMAGE_FOLDER NAME=IMAGE_FOLDER ...

Each round boots every image cold once (``PADDOCK_SNAPSHOTS=0``, an empty folder), runs ``true``
and closes it, so the machine's load moves them alike. Reports, per image, the medians of the wall
time to the command's answer and of QEMU's own CPU time (user + system) until then (the guest's
work, steadier than the wall time on a busy machine), and the guest's uptime when the shares were
mounted and when the agent answered (its console), and the host's stages of each boot
(``BootTimings.stages``: the share daemons, QEMU, QMP, the agent's answer, the claim), with the
time from QEMU started to the guest's clock starting (host time of an Info call less the guest
uptime it reports: QEMU's own start and the kernel's load, before the guest counts). For a change
to the guest image: the installed image against one built elsewhere (``PADDOCK_CACHE_DIR=… ./scripts/setup.sh``).

With ``--execs N``: one sandbox per image instead, open side by side, each round ``N`` round trips
of ``true`` in each (interleaved), then each one's floor (``benchmarks.sandbox``): medians of the
round trip, the floor, and QEMU's CPU time per command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from paddock.core.paths import runtime_dir
from paddock.sandbox import SNAPSHOT_ENV, Sandbox
from paddock.vm import GuestImage, VirtualMachine

TICK = os.sysconf("SC_CLK_TCK")


def _qemu_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


CONSOLE_MARKS = {"first console output": "", "shares mounted": "shares mounted", "agent ready": "paddock-agent: ready"}


async def _console_times(t0: float, seen: dict[str, float]) -> None:
    """When (host time, from ``t0``) the new VM's console first showed each of ``CONSOLE_MARKS``:
    a timeline of the guest in the host's clock (the guest's own clock is not the host's under
    emulation, docs/BENCHMARKS.md)."""
    known = {p.parent for p in runtime_dir().glob("vm-*/console.log")}
    console = None
    while True:
        if console is None:
            fresh = [p for p in runtime_dir().glob("vm-*/console.log") if p.parent not in known]
            console = fresh[0] if fresh else None
        if console is not None:
            text = console.read_text(errors="replace")
            now = time.monotonic() - t0
            for name, marker in CONSOLE_MARKS.items():
                if name not in seen and text and marker in text:
                    seen[name] = now
        await asyncio.sleep(0.005)


async def _once(folder: Path, image: GuestImage) -> tuple[float, float, list[str], dict[str, float]]:
    t0 = time.monotonic()
    seen: dict[str, float] = {}
    watch = asyncio.ensure_future(_console_times(t0, seen))
    try:
        sandbox = await Sandbox.boot(folder, image=image)
    finally:
        watch.cancel()
    try:
        booted = time.monotonic()
        await sandbox.guest.run(["true"])
        done = time.monotonic()
        wall = done - t0
        cpu = _qemu_cpu_s(sandbox.vm.pids["qemu"])
        vm = sandbox.vm
        assert isinstance(vm, VirtualMachine)  # booted here
        uptimes = re.findall(r"uptime ([0-9.]+) s", vm.console_log.read_text(errors="replace"))
        stages = dict(sandbox.timings.stages)
        if "agent answers" in stages:
            names = list(stages)
            upto = names[: names.index("agent answers") + 1]
            answered = sum(stages[k] for k in upto)
        stages["rest of the boot"] = booted - t0 - sum(stages.values())
        stages["first command"] = done - booted
        asked = time.monotonic()
        info = await sandbox.guest.info()
        guest_zero = (asked + time.monotonic()) / 2 - info.uptime_s  # host time when the guest's clock began
        qemu_started = dict(vm.start_marks).get("qemu started")
        if qemu_started is not None:
            stages["(QEMU started to the guest's clock starting)"] = guest_zero - qemu_started
        for name, at in seen.items():
            stages[f"(console: {name}, from the start)"] = at
        if "agent answers" in stages:
            stages["(agent answers, from the start)"] = answered
    finally:
        await sandbox.close()
    return wall, cpu, uptimes, stages


async def _run(images: dict[str, GuestImage], rounds: int) -> None:
    os.environ[SNAPSHOT_ENV] = "0"
    walls: dict[str, list[float]] = {name: [] for name in images}
    cpus: dict[str, list[float]] = {name: [] for name in images}
    stages: dict[str, list[dict[str, float]]] = {name: [] for name in images}
    with tempfile.TemporaryDirectory(prefix="paddock-bench-images-") as tmp:
        for i in range(rounds):
            for name, image in images.items():
                wall, cpu, uptimes, boot_stages = await _once(Path(tmp), image)
                walls[name].append(wall)
                cpus[name].append(cpu)
                stages[name].append(boot_stages)
                print(f"round {i + 1} {name}: {wall:.2f} s, QEMU CPU {cpu:.2f} s, guest uptime {uptimes}, "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    print("\n| image | wall to first command, median | QEMU CPU, median |\n|---|---:|---:|")
    for name in images:
        print(f"| {name} | {statistics.median(walls[name]):.2f} s | {statistics.median(cpus[name]):.2f} s |")
    names = list(dict.fromkeys(k for rows in stages.values() for row in rows for k in row))
    print("\nThe host's stages, medians (ms):\n\n| stage | " + " | ".join(images) + " |")
    print("|---|" + "---:|" * len(images))
    for stage in names:
        cells = [statistics.median([r[stage] for r in stages[n] if stage in r] or [0.0]) * 1000 for n in images]
        print(f"| {stage} | " + " | ".join(f"{c:,.1f}" for c in cells) + " |")


async def _execs(images: dict[str, GuestImage], rounds: int, n: int) -> None:
    from benchmarks.sandbox import _floor

    os.environ[SNAPSHOT_ENV] = "0"
    rtt: dict[str, list[float]] = {name: [] for name in images}
    cpu: dict[str, list[float]] = {name: [] for name in images}
    floor: dict[str, list[float]] = {name: [] for name in images}
    with tempfile.TemporaryDirectory(prefix="paddock-bench-images-") as tmp:
        boxes = {}
        try:
            for name, image in images.items():
                (Path(tmp) / name).mkdir()
                boxes[name] = await Sandbox.boot(Path(tmp) / name, image=image)
                await boxes[name].guest.run(["true"])  # warm up
            for _ in range(rounds):
                for name, box in boxes.items():
                    c0 = _qemu_cpu_s(box.vm.pids["qemu"])
                    for _ in range(n):
                        t0 = time.perf_counter()
                        await box.guest.run(["true"])
                        rtt[name].append(time.perf_counter() - t0)
                    cpu[name].append((_qemu_cpu_s(box.vm.pids["qemu"]) - c0) / n)
                for name, box in boxes.items():
                    floor[name] += await _floor(box, n)
        finally:
            for box in boxes.values():
                await box.close()
    print("| image | round trip | floor | ratio | QEMU CPU per command |\n|---|---:|---:|---:|---:|")
    for name in images:
        r, f = statistics.median(rtt[name]) * 1000, statistics.median(floor[name]) * 1000
        c = statistics.median(cpu[name]) * 1000
        ratio = f"{r / f:.2f}×" if f > 0 else "—"  # a floor of 0: too few runs to take the date calls off
        print(f"| {name} | {r:.1f} ms | {f:.1f} ms | {ratio} | {c:.1f} ms |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--execs", type=int, default=0, help="round trips per round instead of cold starts")
    parser.add_argument("images", nargs="+", metavar="NAME=IMAGE_FOLDER")
    ns = parser.parse_args()
    images = {}
    for item in ns.images:
        name, _, folder = item.partition("=")
        images[name] = GuestImage.load(Path(folder).resolve())
    asyncio.run(_execs(images, ns.rounds, ns.execs) if ns.execs else _run(images, ns.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
