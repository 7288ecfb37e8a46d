"""``paddock run``'s path to its first command: the sandbox woken ahead (what ``paddock run``, a
scheduled run and ``paddock mcp`` do now), woken after the session is decided (before), and cold.

    .venv/bin/python -m benchmarks.headless [--runs 3] [--files 400]

Each run composes a session the way ``paddock run`` does (``SessionPlan`` with the assistant, the
change summary, a throwaway key; the model is never called) on a folder of ``--files`` small
files, boots it and runs ``true`` in the guest: timed from ``compose`` to the command's answer,
which is what ``paddock run`` waits before it can run the first tool. The variants alternate in
each round, so load moves them alike. A throwaway data folder. Medians.

    .venv/bin/python -m benchmarks.headless --scheduled [--runs 3] [--files 400]

A scheduled run's path from its due time to its first command: composed and woken ``WAKE_LEAD_S``
ahead of its time, then booted at the time (``paddock.schedule.run.ready_at``, what a
timer-started run does now), against composed, woken ahead and booted at the due time (before).
Timed from the due time to the answer of ``true``; alternated in each round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from paddock.sandbox import SNAPSHOT_ENV, ensure_snapshot
from paddock.schedule.run import ready_at
from paddock.schedule.when import WAKE_LEAD_S
from paddock.session.composer import AnswerNo, SessionPlan, compose
from paddock.session.runner import EntryPoint

VARIANTS = {  # name: (wake ahead, saved sandbox)
    "ahead": (True, True),
    "woken": (False, True),
    "cold": (False, False),
}


def _folder(root: Path, files: int) -> Path:
    """A folder of documents: ``files`` small files in folders of 20."""
    folder = root / "work"
    for i in range(files):
        sub = folder / f"part-{i // 20:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"note-{i:04d}.txt").write_text(f"note {i}\n" * 20)
    return folder


async def _once(folder: Path, *, ahead: bool, saved: bool) -> tuple[float, str]:
    os.environ[SNAPSHOT_ENV] = "1" if saved else "0"
    plan = SessionPlan(EntryPoint.RUN, AnswerNo("benchmark"), assistant=True, summary=True, wake_ahead=ahead)
    t0 = time.monotonic()
    session = await compose(folder, plan)
    try:
        sandbox = await session.boot()
        await sandbox.guest.run(["true"])
        return time.monotonic() - t0, sandbox.timings.how
    finally:
        await session.close(outcome="finished")


async def _measure(folder: Path, runs: int) -> dict[str, list[float]]:
    os.environ[SNAPSHOT_ENV] = "1"
    await ensure_snapshot()
    await _once(folder, ahead=False, saved=True)  # first in the process: the image checked, the accelerator chosen
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(runs):
        for name, (ahead, saved) in VARIANTS.items():
            seconds, how = await _once(folder, ahead=ahead, saved=saved)
            expected = {"ahead": "woken ahead", "woken": "woken", "cold": "cold"}[name]
            if how != expected:
                raise RuntimeError(f"the {name} run's sandbox was {how}, not {expected}")
            times[name].append(seconds)
    return times


async def _scheduled_once(folder: Path, *, ahead: bool) -> tuple[float, str]:
    plan = SessionPlan(EntryPoint.SCHEDULE, AnswerNo("benchmark"), assistant=True, summary=True,
                       new_conversation=True, wake_ahead=True)  # fmt: skip
    due = (datetime.now() + timedelta(seconds=WAKE_LEAD_S if ahead else 0)).astimezone()
    session = await compose(folder, plan)
    try:
        await ready_at(session, due if ahead else None)
        sandbox = await session.boot()
        await sandbox.guest.run(["true"])
        return (datetime.now().astimezone() - due).total_seconds(), sandbox.timings.how
    finally:
        await session.close(outcome="finished")


async def _measure_scheduled(folder: Path, runs: int) -> dict[str, list[float]]:
    os.environ[SNAPSHOT_ENV] = "1"
    await ensure_snapshot()
    await _scheduled_once(folder, ahead=False)  # first in the process: the image checked, the accelerator chosen
    times: dict[str, list[float]] = {"ahead": [], "at_time": []}
    for _ in range(runs):
        for name in ("ahead", "at_time"):
            seconds, how = await _scheduled_once(folder, ahead=name == "ahead")
            # A wake ahead that failed (the session woke or booted its own): kept apart, counted.
            times.setdefault(name if how == "woken ahead" else f"{name}_{how.replace(' ', '_')}", []).append(seconds)
    return times


def _isolated(folder_files: int, work: Any) -> Any:
    """``work(folder)`` in a throwaway data folder, with a throwaway key (made into a provider, never sent)."""
    saved_env = {k: os.environ.get(k) for k in ("PADDOCK_DATA_DIR", "ANTHROPIC_API_KEY", SNAPSHOT_ENV)}
    with tempfile.TemporaryDirectory(prefix="paddock-bench-headless-") as tmp:
        os.environ["PADDOCK_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["ANTHROPIC_API_KEY"] = f"bench-{secrets.token_hex(8)}"
        try:
            return asyncio.run(work(_folder(Path(tmp), folder_files)))
        finally:
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def measure_scheduled(runs: int = 3, files: int = 400) -> dict[str, Any]:
    """A scheduled run's due time to its first command, woken ahead of its time vs at its time."""
    times = _isolated(files, lambda folder: _measure_scheduled(folder, runs))
    medians = {k: round(statistics.median(ts), 3) for k, ts in times.items() if ts}
    out: dict[str, Any] = {f"schedule_first_exec_{k}_s": m for k, m in medians.items()}
    out["raw_schedule_first_exec_s"] = {name: [round(t, 3) for t in ts] for name, ts in times.items()}
    out["schedule_wake_lead_s"] = WAKE_LEAD_S
    return out


def measure(runs: int = 3, files: int = 400) -> dict[str, Any]:
    times = _isolated(files, lambda folder: _measure(folder, runs))
    out: dict[str, Any] = {f"run_first_exec_{name}_s": round(statistics.median(ts), 3) for name, ts in times.items()}
    out["raw_run_first_exec_s"] = {name: [round(t, 3) for t in ts] for name, ts in times.items()}
    out["run_first_exec_files"] = files
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="rounds of the three variants (default 3)")
    parser.add_argument("--files", type=int, default=400, help="small files in the folder (default 400)")
    parser.add_argument("--scheduled", action="store_true", help="a scheduled run: due time to first command")
    ns = parser.parse_args()
    print(json.dumps((measure_scheduled if ns.scheduled else measure)(ns.runs, ns.files), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
