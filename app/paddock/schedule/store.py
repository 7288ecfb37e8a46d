"""Schedules and their history, in the person's data folder (``paddock.core.paths.data_dir``)::

    schedules/schedules.json          every schedule (written whole, atomically, 0600)
    schedules/<id>/history.jsonl      one line per run: when, outcome, what changed, why it failed
    schedules/<id>/run.lock           held while a run is going (two runs never overlap)
    schedules/<id>/conversations/     the last run's conversation, apart from the folder's own

A file that cannot be read is an error that names it; nothing is replaced silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from paddock.core.errors import PaddockError
from paddock.core.locks import Timeout, file_lock
from paddock.core.paths import data_dir

MAX_HISTORY = 200  # runs kept per schedule
ID_PATTERN = r"[0-9a-f]{8}"


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    folder: str
    when: str  # as the person wrote it
    on_calendar: str  # systemd OnCalendar=
    task: str = Field(min_length=1)
    model: str = ""  # [ENDPOINT:]MODEL; "" is policy's default
    timeout_min: int = Field(default=60, ge=1, le=24 * 60)
    created: datetime


class Run(BaseModel):
    """One run of a schedule, as its history keeps it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    started: datetime
    finished: datetime
    outcome: str  # finished | failed | timed out | skipped
    summary: str = ""  # what changed in the folder, in a line
    why: str = ""  # why it failed or was skipped
    answer: str = ""  # the assistant's last words (shortened)
    questions: list[str] = Field(default_factory=list)  # hosts the assistant asked for, answered no
    session_id: str = ""
    changes: list[str] = Field(default_factory=list)  # "created report.xlsx", …

    @property
    def ok(self) -> bool:
        return self.outcome == "finished"

    def result(self) -> str:
        """The outcome and what changed (a question answered no too), or why it failed."""
        detail = "; ".join(p for p in (self.summary, self.why) if p) if self.ok else self.why
        return f"{self.outcome}: {detail}" if detail else self.outcome

    def line(self) -> str:
        """The run in one line, for a list."""
        return f"{self.started:%Y-%m-%d %H:%M} {self.result()}"


_SCHEDULES = TypeAdapter(list[Schedule])


def _write_private(path: Path, data: str) -> None:
    """Write ``path`` whole, or not at all, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class ScheduleStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or data_dir() / "schedules"
        self.file = self.root / "schedules.json"

    # ------------------------------------------------------------------ schedules

    def all(self) -> list[Schedule]:
        try:
            raw = self.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        try:
            return _SCHEDULES.validate_json(raw)
        except ValidationError as exc:
            raise PaddockError(
                f"The schedules file {self.file} cannot be read ({exc.error_count()} problems).",
                hint="Fix or move it away; Paddock does not replace it.",
            ) from exc

    def get(self, schedule_id: str) -> Schedule:
        for s in self.all():
            if s.id == schedule_id:
                return s
        raise PaddockError(f"There is no schedule {schedule_id!r}.", hint="`paddock schedule list` shows them.")

    @contextlib.contextmanager
    def _editing(self) -> Iterator[list[Schedule]]:
        """The list under an exclusive lock; saved when the block ends without an error."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with file_lock(self.root / ".edit.lock"):
            items = self.all()
            yield items
            _write_private(self.file, _SCHEDULES.dump_json(items, indent=2).decode() + "\n")

    def add(self, **fields: object) -> Schedule:
        with self._editing() as items:
            taken = {s.id for s in items}
            new_id = next(i for i in iter(lambda: secrets.token_hex(4), "") if i not in taken)
            schedule = Schedule.model_validate({"id": new_id, "created": datetime.now().astimezone(), **fields})
            items.append(schedule)
        return schedule

    def remove(self, schedule_id: str) -> Schedule:
        with self._editing() as items:
            found = self.get(schedule_id)
            items[:] = [s for s in items if s.id != schedule_id]
        shutil.rmtree(self.root / schedule_id, ignore_errors=True)
        return found

    # ------------------------------------------------------------------ runs

    def folder_of(self, schedule_id: str) -> Path:
        path = self.root / schedule_id
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def history(self, schedule_id: str) -> list[Run]:
        """The runs, oldest first (a line that cannot be read is left out)."""
        try:
            lines = (self.root / schedule_id / "history.jsonl").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        runs = []
        for line in lines:
            with contextlib.suppress(ValidationError):
                runs.append(Run.model_validate_json(line))
        return runs

    def record(self, schedule_id: str, run: Run) -> None:
        """Add a run to the history (the oldest go beyond ``MAX_HISTORY``)."""
        if all(s.id != schedule_id for s in self.all()):
            return  # removed while it ran
        path = self.folder_of(schedule_id) / "history.jsonl"
        with self._run_lock(schedule_id, "history.lock", wait=True):
            runs = [*self.history(schedule_id), run][-MAX_HISTORY:]
            _write_private(path, "".join(r.model_dump_json() + "\n" for r in runs))

    @contextlib.contextmanager
    def _run_lock(self, schedule_id: str, name: str, *, wait: bool, patience: float = 0.0) -> Iterator[bool]:
        lock = file_lock(self.folder_of(schedule_id) / name, timeout=-1 if wait else patience, on_acquired=_mark)
        try:
            lock.acquire()
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()  # so does the process dying

    def running(self, schedule_id: str) -> contextlib.AbstractContextManager[bool]:
        """Hold the schedule's run lock: yields False when another run holds it now. A look from
        ``is_running`` holds it for an instant; that is waited out, not taken for a run."""
        return self._run_lock(schedule_id, "run.lock", wait=False, patience=2.0)

    def is_running(self, schedule_id: str) -> bool:
        """Whether a run holds the lock now: a look that takes it for an instant and writes nothing."""
        try:
            with file_lock(self.folder_of(schedule_id) / "run.lock", timeout=0):
                return False
        except Timeout:
            return True

    def last_run_time(self, schedule: Schedule) -> datetime:
        runs = self.history(schedule.id)
        return runs[-1].started if runs else schedule.created


def _mark(fd: int) -> None:
    """Write who holds a run lock into its file (for a person looking; nothing reads it)."""
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())


def dumps(schedule: Schedule) -> str:
    return json.dumps(schedule.model_dump(mode="json"), indent=2)
