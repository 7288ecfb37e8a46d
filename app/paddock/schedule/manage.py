"""Adding, listing and removing schedules, and starting runs: what ``paddock schedule`` and the
window's schedule view do. A run always happens in its own process (``paddock schedule run ID``),
as the timer's service does, so the window never holds a run's sandbox."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from paddock.core.errors import PaddockError
from paddock.schedule import units
from paddock.schedule.store import Run, Schedule, ScheduleStore
from paddock.schedule.when import check_with_systemd, parse_when
from paddock.session.runner import decide

log = logging.getLogger(__name__)
WINDOW_ONLY = (
    "This computer cannot run tasks in the background for you, so schedules run only while the Paddock "
    "window is open (it runs any that are due, including ones missed while it was closed)."
)


@dataclass(frozen=True)
class Added:
    schedule: Schedule
    timer_live: bool  # a systemd user manager took the timer now
    linger: bool | None = None  # timers run while logged out (``loginctl enable-linger``); None: unknown

    @property
    def message(self) -> str:
        s = self.schedule
        where = (
            f"systemd runs it ({units.PREFIX}{s.id}.timer), also when the window is closed; a run missed while "
            "the computer was off happens when it is next on"
            if self.timer_live
            else WINDOW_ONLY
        )
        linger = f"\n{units.LINGER_OFF}" if self.timer_live and self.linger is False else ""
        return f"Schedule {s.id} added: {s.when}, on {s.folder}.\n{where.rstrip('.')}.{linger}"


@dataclass(frozen=True)
class ScheduleRow:
    """A schedule as a list shows it."""

    schedule: Schedule
    last: Run | None
    running: bool
    next_due: datetime


class Schedules:
    def __init__(self, store: ScheduleStore | None = None, unit_dir: Path | None = None) -> None:
        self.store = store or ScheduleStore()
        self.unit_dir = unit_dir
        self._children: dict[str, asyncio.subprocess.Process] = {}

    def add(self, folder: Path, when: str, task: str, *, model: str = "", timeout_min: int = 60) -> Added:
        """Check and keep a schedule, then hand it to systemd. A folder policy denies now, a time
        outside the grammar or an empty task is refused before anything is written."""
        parsed = parse_when(when)
        check_with_systemd(parsed.on_calendar)
        if not task.strip():
            raise PaddockError("Say what the assistant should do each time (the task is empty).")
        folder = folder.expanduser()
        if not folder.is_dir():
            raise PaddockError(f"{folder} is not a folder.")
        decided = decide(folder)
        if not decided.decision.allowed:
            raise PaddockError(f"This folder cannot be scheduled: {decided.decision.reason}")
        schedule = self.store.add(
            folder=str(decided.folder), when=" ".join(when.split()), on_calendar=parsed.on_calendar,
            task=task.strip(), model=model, timeout_min=timeout_min,
        )  # fmt: skip
        try:
            live = units.install(schedule, where=self.unit_dir)
        except OSError:
            self.store.remove(schedule.id)
            raise
        return Added(schedule, live, units.linger_enabled() if live else None)

    def remove(self, schedule_id: str) -> Schedule:
        """Remove the schedule, its timer and service, and its history (the audit log keeps its runs)."""
        schedule = self.store.get(schedule_id)
        units.uninstall(schedule.id, where=self.unit_dir)
        return self.store.remove(schedule.id)

    def rows(self, folder: Path | None = None) -> list[ScheduleRow]:
        """Every schedule (or those of ``folder``), with its last run and when it is next due."""
        out = []
        want = str(folder.resolve()) if folder is not None else None
        for s in self.store.all():
            if want is not None and s.folder != want:
                continue
            runs = self.store.history(s.id)
            last_time = (runs[-1].started if runs else s.created).astimezone().replace(tzinfo=None)
            due = parse_when(s.when).next_after(last_time)
            out.append(ScheduleRow(s, runs[-1] if runs else None, self.store.is_running(s.id), due))
        return out

    def history(self, schedule_id: str) -> list[Run]:
        return self.store.history(self.store.get(schedule_id).id)

    @staticmethod
    def systemd_live() -> bool:
        return units.user_manager_running()

    # ------------------------------------------------------------------ runs from the window

    async def start(self, schedule_id: str) -> None:
        """Start a run now in its own process; its result arrives in the history."""
        schedule = self.store.get(schedule_id)
        child = self._children.get(schedule.id)
        if (child is not None and child.returncode is None) or self.store.is_running(schedule.id):
            raise PaddockError("This schedule is running now; it is never run twice at once.")
        self._children[schedule.id] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "paddock.cli", "schedule", "run", schedule.id,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        log.info("schedule %s: started a run (pid %s)", schedule.id, self._children[schedule.id].pid)

    async def run_due(self, now: datetime | None = None) -> list[str]:
        """Where there is no user systemd, the window calls this every minute: start every schedule
        that is due (one run for any number missed). Returns the ids started."""
        now = now or datetime.now()
        started = []
        for row in self.rows():
            if row.next_due <= now and not row.running:
                try:
                    await self.start(row.schedule.id)
                except PaddockError:
                    continue
                started.append(row.schedule.id)
        return started

    async def close(self) -> None:
        """Wait for nothing: runs go on in their own processes and record their own results."""
        for child in self._children.values():
            if child.returncode is None:
                log.info("schedule run pid %s goes on after the window closes", child.pid)
