"""When a schedule runs: a small grammar in plain words, turned into a systemd ``OnCalendar``
expression (for the timer) and into the next time it is due (for the window, where there is no
user systemd). Anything outside the grammar is refused with examples, never guessed at.

    every hour                          hourly, on the hour
    every day 08:30                     every day at 08:30
    every monday 09:00                  one day of the week (monday … sunday, or mon … sun)
    every weekday 07:45                 Monday to Friday
    every month on the 1st 06:00        one day of the month, 1st to 28th (every month has it)

"at" before the time is allowed ("every day at 08:30"); times are 24-hour, local time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime

from dateutil.rrule import DAILY, FR, HOURLY, MO, MONTHLY, TH, TU, WE, WEEKLY, rrule

from paddock.core.errors import PaddockError

EXAMPLES = (
    '"every hour"',
    '"every day 08:30"',
    '"every monday 09:00"',
    '"every weekday 07:45"',
    '"every month on the 1st 06:00"',
)
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SYSTEMD_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_TIME = r"(?:at\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})"
_DAY_NAMES = "|".join([*DAYS, *(d[:3] for d in DAYS)])
_FORMS = (
    ("hour", re.compile(r"every\s+hour")),
    ("day", re.compile(rf"every\s+day\s+{_TIME}")),
    ("weekday", re.compile(rf"every\s+weekday\s+{_TIME}")),
    ("week", re.compile(rf"every\s+(?P<dow>{_DAY_NAMES})\s+{_TIME}")),
    ("month", re.compile(rf"every\s+month\s+on\s+the\s+(?P<dom>\d{{1,2}})(?:st|nd|rd|th)\s+{_TIME}")),
)


# A timer-started run starts this long before its time, wakes its sandbox and sends the task at the
# time (``paddock.schedule.run``): a wake takes ≈ 1.6 s under emulation, composing a session a little
# more; bounded below a minute (``When.ahead_calendar``), kept short so the early start is not seen.
WAKE_LEAD_S = 10


class BadWhen(PaddockError):
    """A ``--when`` that is not in the grammar."""


@dataclass(frozen=True)
class When:
    kind: str  # hour | day | weekday | week | month
    hour: int = 0
    minute: int = 0
    weekday: int = 0  # 0 = Monday (week)
    day: int = 1  # day of the month (month)

    @property
    def on_calendar(self) -> str:
        """The systemd ``OnCalendar=`` expression (systemd.time(7))."""
        at = f"{self.hour:02d}:{self.minute:02d}:00"
        if self.kind == "hour":
            return "*-*-* *:00:00"
        if self.kind == "day":
            return f"*-*-* {at}"
        if self.kind == "weekday":
            return f"Mon..Fri *-*-* {at}"
        if self.kind == "week":
            return f"{_SYSTEMD_DAYS[self.weekday]} *-*-* {at}"
        return f"*-*-{self.day:02d} {at}"

    def ahead_calendar(self, lead_s: int) -> str:
        """The ``OnCalendar=`` expression ``lead_s`` seconds (1 to 59) before each due time: the
        timer of a run that wakes its sandbox ahead of its time. Every due time is on a whole
        minute, so this is the minute before at second ``60 - lead_s``; at 00:00 that is the day
        before (the 1st of a month: the last day of the one before, systemd's ``~01``)."""
        if not 0 < lead_s < 60:
            raise ValueError(f"a lead of {lead_s} s is not 1 to 59 s")
        second = f"{60 - lead_s:02d}"
        if self.kind == "hour":
            return f"*-*-* *:59:{second}"
        minutes = self.hour * 60 + self.minute - 1
        at = f"{minutes // 60 % 24:02d}:{minutes % 60:02d}:{second}"
        if minutes >= 0:
            return self.on_calendar.rsplit(" ", 1)[0] + f" {at}"  # the same days, the minute before
        if self.kind == "day":
            return f"*-*-* {at}"
        if self.kind == "weekday":
            return f"Sun,Mon,Tue,Wed,Thu *-*-* {at}"
        if self.kind == "week":
            return f"{_SYSTEMD_DAYS[(self.weekday - 1) % 7]} *-*-* {at}"
        return f"*-*-{self.day - 1:02d} {at}" if self.day > 1 else f"*-*~01 {at}"

    def rule(self, after: datetime) -> rrule:
        """The times this schedule is due (the ``OnCalendar`` above as an RFC 5545 rule), from ``after`` on."""
        if self.kind == "hour":
            return rrule(HOURLY, dtstart=after, byminute=0, bysecond=0)
        weekdays = (MO, TU, WE, TH, FR) if self.kind == "weekday" else self.weekday if self.kind == "week" else None
        month_day = self.day if self.kind == "month" else None
        return rrule(
            MONTHLY if self.kind == "month" else WEEKLY if self.kind == "week" else DAILY,
            dtstart=after,
            byweekday=weekdays,
            bymonthday=month_day,
            byhour=self.hour,
            byminute=self.minute,
            bysecond=0,
        )

    def next_after(self, t: datetime) -> datetime:
        """The first time strictly after ``t`` (naive local time) this schedule is due."""
        due = self.rule(t).after(t)
        if due is None:  # every rule above repeats for ever
            raise AssertionError(f"{self} is never due after {t}")
        return due

    def due_soon(self, now: datetime, lead_s: float = WAKE_LEAD_S) -> datetime | None:
        """The due time a timer fired ahead of: the next one after ``now`` (naive local time) when it
        is at most ``lead_s`` (and a second's slack) away; None otherwise (a catch-up after the
        computer was off, or a timer that fired late: the run starts now)."""
        due = self.next_after(now)
        return due if (due - now).total_seconds() <= lead_s + 1 else None


def _refuse(text: str, why: str) -> BadWhen:
    return BadWhen(f"{why}: {text!r}.", hint="Say when like one of these: " + ", ".join(EXAMPLES) + ".")


def parse_when(text: str) -> When:
    """``text`` in the grammar above as a ``When``; anything else raises ``BadWhen``."""
    plain = " ".join(text.lower().split())
    for kind, form in _FORMS:
        m = form.fullmatch(plain)
        if m is None:
            continue
        groups = m.groupdict()
        hour, minute = int(groups.get("h") or 0), int(groups.get("m") or 0)
        if hour > 23 or minute > 59:
            raise _refuse(text, "That is not a time of day (use 24-hour time, 00:00 to 23:59)")
        weekday = next((i for i, d in enumerate(DAYS) if d.startswith(groups["dow"])), 0) if groups.get("dow") else 0
        day = int(groups.get("dom") or 1)
        if not 1 <= day <= 28:
            raise _refuse(text, "Choose a day of the month from the 1st to the 28th (every month has those)")
        return When(kind, hour, minute, weekday, day)
    raise _refuse(text, "Paddock does not understand when to run this")


def check_with_systemd(expression: str) -> None:
    """Have ``systemd-analyze calendar`` read the expression, where it is installed."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return
    proc = subprocess.run([tool, "calendar", expression], capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise BadWhen(f"systemd does not accept the time {expression!r}: {proc.stderr.strip()}")
