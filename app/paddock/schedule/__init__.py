"""Recurring tasks: a schedule is a folder, a task and when (``when``); it is kept in the data
folder (``store``), run by a systemd user timer (``units``) or, where there is no user systemd,
by the window while it is open (``Schedules.run_due``); each run is a headless session
(``run``)."""

from paddock.schedule.manage import WINDOW_ONLY, Added, ScheduleRow, Schedules
from paddock.schedule.run import run_schedule
from paddock.schedule.store import Run, Schedule, ScheduleStore
from paddock.schedule.when import EXAMPLES, BadWhen, When, parse_when

__all__ = [
    "EXAMPLES",
    "WINDOW_ONLY",
    "Added",
    "BadWhen",
    "Run",
    "Schedule",
    "ScheduleRow",
    "ScheduleStore",
    "Schedules",
    "When",
    "parse_when",
    "run_schedule",
]
