"""What is happening in the sandbox now, for the window's activity panel (no Qt): the guest's
live event stream (the one the audit trail records) as plain, bounded ``Activity`` events.

The names come from the guest, so they are data: cut to a bounded length, shown as plain text.
Files are reported as the guest reports them: the file tools' writes and removals, and every
file any command writes in the folder (the guest agent's watcher), while it is being written and
when it is done.
"""

from __future__ import annotations

from dataclasses import dataclass

from paddock.core.text import shown
from paddock.guest import GuestEvent, ProcessExitedEvent, ProcessStartedEvent

MAX_SHOWN = 160


@dataclass(frozen=True)
class Activity:
    kind: str  # "started" | "finished" (a program) | "writing" | "written" | "removed" (a file)
    key: str  # the run's id (a program) or the path (a file)
    text: str  # what to show: the program and its arguments, or the file and its size
    time_unix: float


def _cut(text: str) -> str:
    text = shown(" ".join(text.split()))  # control and direction characters escaped
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    return f"{n / 1000:.0f} KB" if n < 1_000_000 else f"{n / 1_000_000:.1f} MB"


def activity(ev: GuestEvent) -> Activity:
    if isinstance(ev, ProcessStartedEvent):
        argv = list(ev.argv)
        if argv[:2] == ["sh", "-c"] and len(argv) > 2:
            argv = argv[2:]  # a command the assistant ran: show the command itself
        return Activity("started", ev.exec_id, _cut(" ".join(argv)), ev.time_unix)
    if isinstance(ev, ProcessExitedEvent):
        return Activity("finished", ev.exec_id, "", ev.time_unix)
    kind = "removed" if ev.removed else "writing" if ev.writing else "written"
    return Activity(kind, ev.path, _cut(ev.path) + ("" if ev.removed else f" ({_size(ev.size)})"), ev.time_unix)
