"""The session layer: the one way in (``runner``), the window's engine (``desk``), the audit of
a session, its change summary and the host checks. No Qt here.

This package's root is the window's front door: ``paddock.ui`` imports only from here (and
``paddock.core``), never from a module below, so what the window may touch is this list.
"""

from paddock.assistant.loop import Cancelled, Failed, Finished, TextDelta, ToolCalled, ToolFinished
from paddock.llm import DEFAULT_MODEL
from paddock.session.desk import (
    Desk,
    DeskEvent,
    FolderCheck,
    Notice,
    SandboxState,
    SandboxStatus,
)
from paddock.session.doctor import FirstRun
from paddock.session.egress_questions import EgressQuestion
from paddock.session.schedule import EXAMPLES as SCHEDULE_EXAMPLES
from paddock.session.schedule import WINDOW_ONLY, ScheduleRow, Schedules
from paddock.session.schedule import Run as ScheduleRun
from paddock.session.summary import Change, SessionSummary, revert, why_not_open

__all__ = [
    "DEFAULT_MODEL",
    "SCHEDULE_EXAMPLES",
    "WINDOW_ONLY",
    "Cancelled",
    "Change",
    "Desk",
    "DeskEvent",
    "EgressQuestion",
    "Failed",
    "Finished",
    "FirstRun",
    "FolderCheck",
    "Notice",
    "SandboxState",
    "SandboxStatus",
    "ScheduleRow",
    "ScheduleRun",
    "Schedules",
    "SessionSummary",
    "TextDelta",
    "ToolCalled",
    "ToolFinished",
    "revert",
    "why_not_open",
]
