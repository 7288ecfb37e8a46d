"""The window's engine and its words, without Qt: ``Desk`` (``desk``: first run, folder checks and
trust, open/send/stop/restart/finish, the ``DeskEvent``s it publishes) and its parts (``settings``,
``notes``, ``rewind``, ``recent``), the plain words (``plain``, ``cards``, ``activity``, ``history``)
the pictures of the files made (``previews``), Settings in sentences and the audit log as rows
(``words``), and the details for support (``support``).

This package's root is the window's one front door: ``paddock.ui`` imports only from here (and
``paddock.core``), never from a module below, so what the window may touch is this list.
"""

from paddock.assistant.loop import Cancelled, Failed, Finished, TextDelta, ToolCalled, ToolFinished, ToolOutput
from paddock.core.notify import notify
from paddock.desk.activity import Activity
from paddock.desk.cards import card_input, card_output, card_title, took
from paddock.desk.desk import (
    Desk,
    DeskEvent,
    FolderCheck,
    Notice,
    SandboxState,
    SandboxStatus,
)
from paddock.desk.history import ConversationRow, Replayed, UserSaid
from paddock.desk.notes import NoteRow
from paddock.desk.plain import (
    INTERNAL,
    JARGON,
    PlainCheck,
    Problem,
    assistant_failure,
    internal_in,
    jargon_in,
    plain_checks,
    problem,
    sandbox_failure,
    say,
)
from paddock.desk.previews import Preview
from paddock.desk.summary import SessionSummary
from paddock.desk.words import GROUPS as AUDIT_GROUPS
from paddock.desk.words import AuditRow
from paddock.desk.words import filter_rows as filter_audit
from paddock.llm import DEFAULT_MODEL
from paddock.schedule import EXAMPLES as SCHEDULE_EXAMPLES
from paddock.schedule import WINDOW_ONLY, ScheduleRow, Schedules
from paddock.schedule import Run as ScheduleRun
from paddock.session.doctor import FirstRun
from paddock.session.egress_questions import EgressQuestion
from paddock.undo.changes import Change, revert, why_not_open

__all__ = [
    "AUDIT_GROUPS",
    "DEFAULT_MODEL",
    "INTERNAL",
    "JARGON",
    "SCHEDULE_EXAMPLES",
    "WINDOW_ONLY",
    "Activity",
    "AuditRow",
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
    "filter_audit",
    "internal_in",
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
