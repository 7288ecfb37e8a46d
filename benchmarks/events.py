"""Push, not poll (#31): how late a command's file reports and the session's end are, now that the
guest's events come on one ordered stream and closing waits on a barrier instead of a pause.

    .venv/bin/python -m benchmarks.events [--repeats 10]

1. A command writes one file (``sandbox.exec``, as the assistant's tool does): how many of its file
   reports had reached the host when its result did, and the round trip of the command.
2. ``Sandbox.settle()``: the barrier closing uses (the guest's Sync, the stream reaching its seq),
   against the fixed 0.3 s pause (plus up to 0.5 s until the next poll of the gateway's decisions)
   it replaces.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from paddock.guest import ExecResult, FileChangedEvent, GuestEvent
from paddock.sandbox import Sandbox


async def _measure(folder: Path, repeats: int) -> dict[str, Any]:
    trips: list[float] = []
    settles: list[float] = []
    on_time = 0
    async with Sandbox.open(folder) as sandbox:
        for r in range(repeats):
            name = f"out{r}.txt"
            seen: list[str] = []

            def on_event(ev: GuestEvent, name: str = name, seen: list[str] = seen) -> None:
                if isinstance(ev, FileChangedEvent) and not ev.writing and ev.path == name:
                    seen.append(ev.path)

            sandbox.guest_event.connect(on_event)
            t0 = time.perf_counter()
            async for ev in sandbox.exec(["sh", "-c", f"echo {r} > {name}"]):
                if isinstance(ev, ExecResult):
                    trips.append(time.perf_counter() - t0)
                    on_time += bool(seen)
            sandbox.guest_event.disconnect(on_event)
            t0 = time.perf_counter()
            await sandbox.settle()
            settles.append(time.perf_counter() - t0)
    return {
        "repeats": repeats,
        "on_time": on_time,
        "trip_s": statistics.median(trips),
        "settle_s": statistics.median(settles),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = asyncio.run(_measure(Path(tmp), ns.repeats))
    print("| measure | value |\n|---|---:|")
    print(f"| commands whose file report had arrived when their result did | {r['on_time']} of {r['repeats']} |")
    print(f"| a one-file command's round trip (median) | {r['trip_s'] * 1000:.0f} ms |")
    print(f"| settling the sandbox's events before closing (median) | {r['settle_s'] * 1000:.1f} ms |")
    print("| the pause it replaces (before #31) | 300 ms, plus up to 500 ms to the gateway's next poll |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
