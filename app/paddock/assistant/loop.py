"""The agent loop, as an explicit state machine.

    IDLE ─send()─► MODEL ─tool calls─► TOOLS ─results─► MODEL … ─final answer─► IDLE
                     │                   │
                     └── cancel ─────────┴──► CANCELLED (then IDLE again on the next send)
                     └── error ──────────┴──► FAILED (reason)

``send`` runs one user message to its final answer. Cancelling the task that
runs it stops the model call or kills the running guest process; the
conversation stays valid (a cancelled tool call gets a "cancelled" result).
Caps bound the number of model turns per message and the size of tool output.

The conversation is persisted per folder in the host's app-data folder, never
in the workspace, after every step, so a session resumes after a restart.
Events go to subscribers (the UI, the audit trail, the CLI's transcript).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paddock.assistant import labels, skills
from paddock.assistant.memory import MemoryStore
from paddock.assistant.tools import TOOL_SPECS, ToolBox, describe
from paddock.core.errors import PaddockError
from paddock.core.paths import data_dir
from paddock.core.signal import Signal
from paddock.llm import LLMError, ModelProvider, ModelReply, Usage
from paddock.sandbox import Sandbox, SandboxFailed

log = logging.getLogger(__name__)

MAX_TURNS = 40

SYSTEM_PROMPT = """\
You are Paddock's assistant. You help a person who is not a programmer get real work done on the \
files in the folder they chose. You work inside a sandbox: a small Linux virtual machine whose \
current folder, /workspace, is that folder. You have no network. Use the tools to look at files, \
run commands and write results; prefer finished files (reports, spreadsheets, documents) over long \
chat answers. Paths are relative to the workspace. The sandbox has Python 3 with openpyxl, python-docx, \
python-pptx, pandas, matplotlib, pypdf and reportlab, plus pandoc, pdftotext and md2pdf; use the \
read_document tool to read office files and PDFs. When you are done, say briefly in plain words \
what you did and which files you created or changed.

""" + labels.rule()


class AssistantState(enum.Enum):
    IDLE = "idle"
    MODEL = "model"
    TOOLS = "tools"
    CANCELLED = "cancelled"
    FAILED = "failed"


# ---------------------------------------------------------------------- events


@dataclass(frozen=True)
class TurnStarted:
    turn: int


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCalled:
    call_id: str
    name: str
    input: dict[str, Any]
    summary: str


@dataclass(frozen=True)
class ToolOutput:
    """A piece of a running command's output, as it comes (for the window's live tail)."""

    call_id: str
    text: str


@dataclass(frozen=True)
class ToolFinished:
    call_id: str
    name: str
    is_error: bool
    summary: str
    detail: str
    duration_s: float


@dataclass(frozen=True)
class Finished:
    text: str
    usage: Usage
    turns: int


@dataclass(frozen=True)
class Failed:
    message: str


@dataclass(frozen=True)
class Cancelled:
    pass


AssistantEvent = TurnStarted | TextDelta | ToolCalled | ToolOutput | ToolFinished | Finished | Failed | Cancelled


@dataclass
class TurnTiming:
    """Where one model turn's time went (for the per-turn overhead benchmark)."""

    wall_s: float = 0.0
    model_s: float = 0.0
    tools_s: float = 0.0


# ---------------------------------------------------------------------- store


class ConversationStore:
    """The conversation for one folder, as JSON in the app-data folder."""

    def __init__(self, folder: Path, root: Path | None = None) -> None:
        self.folder = folder.resolve()
        key = hashlib.sha256(str(self.folder).encode()).hexdigest()[:20]
        self.path = (root or data_dir() / "conversations") / f"{key}.json"

    def load(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise PaddockError(
                f"The saved conversation for this folder is unreadable: {exc}",
                hint=f"Move {self.path} away to start afresh.",
            ) from exc
        messages = data.get("messages")
        return list(messages) if isinstance(messages, list) else []

    def save(self, messages: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"folder": str(self.folder), "messages": messages}, ensure_ascii=False))
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------------- session


@dataclass
class AssistantSession:
    sandbox: Sandbox
    provider: ModelProvider
    store: ConversationStore
    max_turns: int = MAX_TURNS
    system_prompt: str = SYSTEM_PROMPT
    messages: list[dict[str, Any]] = field(default_factory=list)
    timings: list[TurnTiming] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    # Awaited with the message before anything of it runs (the session layer's restore point);
    # one that raises stops the message before the model sees it.
    before_send: list[Callable[[str], Awaitable[object]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._state = AssistantState.IDLE
        self.failure: str | None = None
        self.events: Signal[AssistantEvent] = Signal("assistant event")
        self.memory = MemoryStore()
        self.tools = ToolBox(self.sandbox, self.memory)
        self.messages = self.store.load()
        self.repair()
        skills.install_built_in()

    @property
    def state(self) -> AssistantState:
        return self._state

    def _set_state(self, state: AssistantState) -> None:
        if state is not self._state:
            log.debug("assistant: %s -> %s", self._state.value, state.value)
            self._state = state

    def subscribe(self, listener: Callable[[AssistantEvent], None]) -> None:
        self.events.connect(listener)

    def _emit(self, event: AssistantEvent) -> None:
        self.events.emit(event)

    def repair(self) -> None:
        """A conversation saved mid-tool (crash, kill) gets results for its open calls."""
        if self.messages and self.messages[-1].get("role") == "assistant":
            open_calls = [b for b in self.messages[-1].get("content", []) if b.get("type") == "tool_use"]
            if open_calls:
                self.messages.append(
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": b["id"],
                                "is_error": True,
                                "content": "This tool call was interrupted (the app stopped) and did not finish.",
                            }
                            for b in open_calls
                        ],
                    }
                )

    async def send(self, text: str) -> str:
        """Run one user message to the final answer; returns the answer's text."""
        if self._state in (AssistantState.MODEL, AssistantState.TOOLS):
            raise PaddockError("The assistant is still working on the previous message.")
        self._set_state(AssistantState.MODEL)
        self.failure = None
        try:
            for hook in self.before_send:
                await hook(text)
        except PaddockError as exc:
            self._set_state(AssistantState.FAILED)
            self.failure = str(exc)
            self._emit(Failed(str(exc)))
            raise
        except BaseException:
            self._set_state(AssistantState.IDLE)
            raise
        self.messages.append({"role": "user", "content": [{"type": "text", "text": text}]})
        self.store.save(self.messages)
        try:
            for turn in range(1, self.max_turns + 1):
                timing = TurnTiming()
                t0 = time.perf_counter()
                self._set_state(AssistantState.MODEL)
                self._emit(TurnStarted(turn))
                reply = await self._complete()
                timing.model_s = time.perf_counter() - t0
                self.usage.append(reply.usage)
                self.messages.append(reply.as_message())
                self.store.save(self.messages)
                if not reply.tool_uses:
                    timing.wall_s = time.perf_counter() - t0
                    self.timings.append(timing)
                    self._set_state(AssistantState.IDLE)
                    self._emit(Finished(reply.text, self._total_usage(), turn))
                    return reply.text
                self._set_state(AssistantState.TOOLS)
                results = await self._run_tools(reply, timing)
                self.messages.append({"role": "user", "content": results})
                self.store.save(self.messages)
                timing.wall_s = time.perf_counter() - t0
                self.timings.append(timing)
            raise PaddockError(f"The assistant stopped after {self.max_turns} steps without finishing.")
        except asyncio.CancelledError:
            self._close_pending("Cancelled: the person pressed Stop.")
            self._set_state(AssistantState.CANCELLED)
            self._emit(Cancelled())
            raise
        except (PaddockError, SandboxFailed, LLMError) as exc:
            self._close_pending(f"Failed: {exc}")
            self._set_state(AssistantState.FAILED)
            self.failure = str(exc)
            self._emit(Failed(str(exc)))
            raise

    async def _run_tools(self, reply: ModelReply, timing: TurnTiming) -> list[dict[str, Any]]:
        """Run the reply's tool calls in order; their results, as the next user message's content."""
        results: list[dict[str, Any]] = []
        for use in reply.tool_uses:
            outcome_start = time.perf_counter()
            self._emit(ToolCalled(use.id, use.name, use.input, describe(use.name, use.input)))
            self.tools.on_output = lambda data, cid=use.id: self._emit(ToolOutput(cid, data))
            try:
                outcome = await self.tools.call(use.name, use.input)
            finally:
                self.tools.on_output = None
            timing.tools_s += time.perf_counter() - outcome_start
            self._emit(
                ToolFinished(use.id, use.name, outcome.is_error, outcome.summary, outcome.detail, outcome.duration_s)
            )
            results.append(
                {"type": "tool_result", "tool_use_id": use.id, "content": outcome.content, "is_error": outcome.is_error}
            )
        return results

    async def _complete(self) -> ModelReply:
        def on_text(delta: str) -> None:
            self._emit(TextDelta(delta))

        return await self.provider.complete(
            system=self.system_prompt + skills.index() + self.memory.for_prompt(self.sandbox.folder),
            messages=self.messages,
            tools=TOOL_SPECS,
            on_text=on_text,
        )

    def _close_pending(self, why: str) -> None:
        """Give every unanswered tool call a result so the saved conversation stays valid."""
        last = self.messages[-1] if self.messages else {}
        if last.get("role") == "assistant" and any(b.get("type") == "tool_use" for b in last.get("content", [])):
            ids = [b["id"] for b in last["content"] if b.get("type") == "tool_use"]
            self.messages.append(
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": i, "is_error": True, "content": why} for i in ids
                    ],
                }
            )
        self.store.save(self.messages)

    def _total_usage(self) -> Usage:
        return Usage(sum(u.input_tokens for u in self.usage), sum(u.output_tokens for u in self.usage))
