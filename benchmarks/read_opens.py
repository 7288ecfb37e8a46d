"""What one read open costs under the read watch (#32), without a VM: where the time goes.

    .venv/bin/python -m benchmarks.read_opens [--files 400] [--runs 7]

A Python stand-in for the folder-sharing daemon opens ``--files`` small files the way virtiofsd
does (an ``O_PATH`` handle, then ``openat(proc_self_fd, "<fd>", O_RDONLY)``) and reads each, under
the real change guard: not guarded, guarded without the watch (read opens are not notified), and
guarded with the watch (``paddock.sandbox.sensitive``, folder ``/`` so every file gets the full
look: its path, the pattern match, the private-key header). Medians per open over ``--runs``,
alternating, so the differences are comparable on a busy machine. Then each step of the guard's
look, timed in this process (``steps``): what is left of a read open's cost is the notification
round trip itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

from paddock.policy.sensitive import SensitiveMatcher
from paddock.sandbox.sensitive import SensitiveReads
from paddock.vm.guard import NO_KEEPER, launch_guarded
from paddock.vm.tracee import read_string, target

DAEMON = r"""
import os, sys, time
PROC = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY)
handles = [os.open("small/" + n, os.O_PATH | os.O_NOFOLLOW) for n in sorted(os.listdir("small"))]
t0 = time.perf_counter()
for h in handles:
    fd = os.open(str(h), os.O_RDONLY, dir_fd=PROC)
    os.read(fd, 8192)
    os.close(fd)
print((time.perf_counter() - t0) / len(handles) * 1e6)
"""
KINDS = ("not_guarded", "guarded", "watched")


async def _one(folder: Path, kind: str) -> float:
    async def spawn(_name: str, argv: list[str], fds: tuple[int, ...]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(*argv, pass_fds=fds, cwd=folder, stdout=asyncio.subprocess.PIPE)

    argv = [sys.executable, "-I", "-c", DAEMON]
    if kind == "not_guarded":
        proc = await spawn("t", argv, ())
        out, _ = await proc.communicate()
        return float(out)
    watcher = SensitiveReads(Path("/"), SensitiveMatcher()) if kind == "watched" else None
    launched = await launch_guarded(spawn, "t", argv, (), NO_KEEPER, reads=watcher)
    if isinstance(launched, str):
        raise RuntimeError(launched)
    proc, guard = launched
    try:
        out, _ = await proc.communicate()
    finally:
        guard.close()
    if watcher is not None:
        assert watcher.opens >= len(os.listdir(folder / "small")) and not watcher.reads
        watcher.close()
    return float(out)


def _steps(folder: Path) -> dict[str, float]:
    """Each step of the guard's look at one read open, µs (this process stands for the daemon)."""
    import ctypes

    proc_fd = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY)
    handle = os.open(folder / "small" / "f0001.txt", os.O_PATH)
    name = ctypes.create_string_buffer(str(handle).encode())
    pid, n = os.getpid(), 3000
    watcher, matcher = SensitiveReads(Path("/"), SensitiveMatcher()), SensitiveMatcher()
    fd = target(pid, proc_fd, str(handle), True)
    st = os.fstat(fd)
    rel = watcher._rel(fd, st) or ""

    def header() -> None:
        watcher._heads.clear()
        watcher._private_key(fd, st)

    def whole() -> None:
        watcher._read.clear()
        watcher._heads.clear()
        watcher.opened(fd, st)

    steps = {
        "read the name from the daemon's memory": lambda: read_string(pid, ctypes.addressof(name)),
        "open the target (O_PATH) and close it": lambda: os.close(target(pid, proc_fd, str(handle), True)),
        "fstat": lambda: os.fstat(fd),
        "its path in the folder (readlink, stat)": lambda: watcher._rel(fd, st),
        "pattern match": lambda: matcher.matches(rel),
        "private-key header (4 KiB, uncached)": header,
        "the watcher's whole look (uncached)": whole,
    }
    out = {k: round(timeit.timeit(f, number=n) / n * 1e6, 2) for k, f in steps.items()}
    for f in (fd, handle, proc_fd):
        os.close(f)
    watcher.close()
    return out


async def measure(files: int, runs: int) -> dict[str, Any]:
    rows: dict[str, list[float]] = {k: [] for k in KINDS}
    with tempfile.TemporaryDirectory(prefix="paddock-read-opens-") as tmp:
        folder = Path(tmp)
        (folder / "small").mkdir()
        for i in range(files):
            (folder / "small" / f"f{i:04d}.txt").write_bytes(os.urandom(2048).hex().encode())
        for _ in range(runs):
            for kind in KINDS:
                rows[kind].append(await _one(folder, kind))
        steps = _steps(folder)
    med = {k: round(statistics.median(v), 1) for k, v in rows.items()}
    return {
        "files": files,
        "per_open_us_median": med,
        "watch_adds_us": round(med["watched"] - med["guarded"], 1),
        "runs_us": {k: [round(x, 1) for x in v] for k, v in rows.items()},
        "steps_us": steps,
        "load_average": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.files, args.runs)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
