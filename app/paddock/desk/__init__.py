"""The session layer: the one way in (``runner``), the window's engine (``desk``), the audit of
a session, its change summary and the host checks. No Qt here.

This package's root is the window's front door: ``paddock.ui`` imports only from here (and
``paddock.core``), never from a module below, so what the window may touch is this list.
"""

from paddock.assistant.loop import Cancelled, Failed, Finished, TextDelta, ToolCalled, ToolFinished, ToolOutput
from paddock.llm import DEFAULT_MODEL
from paddock.session.activity import Activity
from paddock.session.cards import card_input, card_output, card_title, took
from paddock.session.desk import (
    Desk,
    DeskEvent,
    FolderCheck,
    Notice,
    SandboxState,
    SandboxStatus,
)
from paddock.session.desk_notes import NoteRow
from paddock.session.doctor import FirstRun
from paddock.session.egress_questions import EgressQuestion
from paddock.session.history import ConversationRow, Replayed, UserSaid
from paddock.session.notify import notify
from paddock.session.plain import (
    JARGON,
    PlainCheck,
    Problem,
    assistant_failure,
    jargon_in,
    plain_checks,
    problem,
    sandbox_failure,
    say,
)
from paddock.session.previews import Preview
from paddock.session.schedule import EXAMPLES as SCHEDULE_EXAMPLES
from paddock.session.schedule import WINDOW_ONLY, ScheduleRow, Schedules
from paddock.session.schedule import Run as ScheduleRun
from paddock.session.summary import Change, SessionSummary, revert, why_not_open

__all__ = [
    "DEFAULT_MODEL",
    "JARGON",
    "SCHEDULE_EXAMPLES",
    "WINDOW_ONLY",
    "Activity",
    "Cancelled",
    "Change",
    "ConversationRow",
    "Desk",
    "DeskEvent",
    "EgressQuestion",
    "Failed",
    "Finished",
    "FirstRun",
    "FolderCheck",
    "NoteRow",
    "Notice",
    "PlainCheck",
    "Preview",
    "Problem",
    "Replayed",
    "SandboxState",
    "SandboxStatus",
    "ScheduleRow",
    "ScheduleRun",
    "Schedules",
    "SessionSummary",
    "TextDelta",
    "ToolCalled",
    "ToolFinished",
    "ToolOutput",
    "UserSaid",
    "assistant_failure",
    "card_input",
    "card_output",
    "card_title",
    "jargon_in",
    "notify",
    "plain_checks",
    "problem",
    "revert",
    "sandbox_failure",
    "say",
    "took",
    "why_not_open",
]
