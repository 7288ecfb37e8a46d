"""The assistant's tools, each one object in one registry (``TOOLS``).

A ``Tool`` holds everything about a tool: its name and JSON schema (what the model and MCP
clients see), a description for the model, what it does in plain words for people, where it
runs (in the guest, through the guest agent, or on the host), whether it makes sense outside
the app (the MCP server exposes those), and its handler. The assistant loop, the MCP server
and the window all read the registry; nothing else lists tools.

Paths are workspace-relative; anything else comes back to the model as an error, never as a
crash. Everything a tool returns (command output, file contents, listings) is wrapped and
labelled as untrusted data before it enters the model's context.
"""

from __future__ import annotations

import codecs
import enum
import secrets
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from paddock.assistant import skills
from paddock.assistant.labels import untrusted
from paddock.assistant.memory import MemoryStore
from paddock.core.errors import PaddockError
from paddock.guest import ExecOutput, ExecResult, ExitReason, FileType, GuestError, Stream
from paddock.llm import ToolSpec
from paddock.sandbox import Sandbox, SandboxFailed

DEFAULT_TIMEOUT_S = 120.0
MAX_TIMEOUT_S = 600.0
OUTPUT_CAP = 30_000
READ_CAP = 200_000
EXTRACTOR = "/opt/paddock/tools/extract.py"  # in the guest image (guest_image/rootfs)


class Where(enum.Enum):
    GUEST = "guest"  # executes in the sandbox, through the guest agent
    HOST = "host"  # runs on the host on purpose (Paddock's own profile: skills, memory)


@dataclass(frozen=True)
class ToolOutcome:
    content: str  # what the model sees (already wrapped as untrusted where it carries data)
    is_error: bool
    summary: str  # plain words for people: what was done
    detail: str  # the raw output, for an expanded card
    duration_s: float


class Done(Protocol):
    def __call__(self, content: str, detail: str, *, error: bool = False) -> ToolOutcome: ...


Handler = Callable[["ToolBox", dict[str, Any], Done], Awaitable[ToolOutcome]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str  # for the model (and MCP clients)
    schema: dict[str, Any]
    where: Where
    says: Callable[[dict[str, Any]], str]  # what a call does, in plain words for people
    handler: Handler
    outside_app: bool = True  # offered by `paddock mcp`

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.schema)


TOOLS: dict[str, Tool] = {}


def tool(
    name: str,
    description: str,
    schema: dict[str, Any],
    says: Callable[[dict[str, Any]], str],
    *,
    where: Where = Where.GUEST,
    outside_app: bool = True,
) -> Callable[[Handler], Handler]:
    """Register the decorated handler as a tool."""

    def register(handler: Handler) -> Handler:
        TOOLS[name] = Tool(name, description, schema, where, says, handler, outside_app)
        return handler

    return register


def _obj(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _path(args: dict[str, Any]) -> str:
    return str(args.get("path") or "the workspace")


def cap(text: str, limit: int = OUTPUT_CAP) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… [{len(text) - limit} characters left out] …\n{text[-half:]}"


def describe(name: str, args: dict[str, Any]) -> str:
    """What a tool call does, in plain words (for people, not for the model)."""
    found = TOOLS.get(name)
    return found.says(args) if found else f"Use a tool called {name}"


def specs() -> tuple[ToolSpec, ...]:
    """Every tool, as the model API takes them."""
    return tuple(t.spec for t in TOOLS.values())


class ToolBox:
    """Calls tools on one sandbox (and the host's memory store), timing each call."""

    def __init__(self, sandbox: Sandbox, memory: MemoryStore | None = None, session_id: str = "") -> None:
        self.sandbox = sandbox
        self.memory = memory or MemoryStore()
        self.session_id = session_id or secrets.token_hex(6)
        self.on_output: Callable[[str], None] | None = None  # a running command's output, as it comes

    async def call(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        started = time.monotonic()
        summary = describe(name, args)

        def done(content: str, detail: str, *, error: bool = False) -> ToolOutcome:
            return ToolOutcome(content, error, summary, detail, time.monotonic() - started)

        found = TOOLS.get(name)
        if found is None:
            known = ", ".join(sorted(TOOLS))
            return done(f"There is no tool called {name!r}. The tools are: {known}.", "", error=True)
        try:
            if found.where is Where.GUEST:  # on a sandbox host: the folder there and back (here: nothing)
                async with self.sandbox.synced():
                    return await found.handler(self, args, done)
            return await found.handler(self, args, done)
        except (KeyError, TypeError, ValueError) as exc:
            return done(f"The arguments for {name} are not right: {exc}", "", error=True)
        except (GuestError, PaddockError) as exc:
            if isinstance(exc, SandboxFailed):
                raise
            return done(f"{name} failed: {exc.message}", exc.message, error=True)

    async def collect(self, argv: list[str], timeout_s: float) -> tuple[str, str, ExecResult | None]:
        """Run ``argv`` in the guest and gather its output. Each stream keeps its start and its
        end, never more than ``Bounded.LIMIT`` bytes on the host, and says what it left out."""
        out, err = Bounded(), Bounded()
        result: ExecResult | None = None
        # One decoder per stream: a character split across two chunks is decoded whole.
        live = {s: codecs.getincrementaldecoder("utf-8")(errors="replace") for s in Stream}
        async for ev in self.sandbox.exec(argv, timeout_s=timeout_s):
            if isinstance(ev, ExecOutput):
                (out if ev.stream is Stream.STDOUT else err).add(ev.data)
                if self.on_output is not None and (text := live[ev.stream].decode(ev.data)):
                    self.on_output(text)
            elif isinstance(ev, ExecResult):
                result = ev
        for decoder in live.values():
            if self.on_output is not None and (text := decoder.decode(b"", final=True)):
                self.on_output(text)
        return out.text(), err.text(), result


class Bounded:
    """A guest-fed output buffer of bounded size: the first ``HEAD`` bytes and the last ``TAIL``."""

    HEAD = OUTPUT_CAP // 2
    TAIL = OUTPUT_CAP // 2
    LIMIT = HEAD + TAIL

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.HEAD - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        excess = len(self.tail) - self.TAIL
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def text(self) -> str:
        if not self.dropped:
            return (self.head + self.tail).decode(errors="replace")
        cut = f"\n… [{self.dropped} bytes of output left out] …\n"
        return self.head.decode(errors="replace") + cut + self.tail.decode(errors="replace")


# ---------------------------------------------------------------------- the tools


@tool(
    "run_command",
    "Run a shell command (sh -c) in the sandbox, in the workspace folder (/workspace). "
    "Returns the exit status and the output. The sandbox has no network. "
    "Always say in `purpose` what the step does, for the person watching.",
    _obj(
        {
            "purpose": {
                "type": "string",
                "description": "what this step does, in one short sentence a person who is not a programmer "
                "understands, e.g. 'Add up the sales in the three monthly files' (no commands, no file paths "
                "beyond file names)",
            },
            "command": {"type": "string", "description": "the shell command"},
            "timeout_s": {"type": "number", "description": f"seconds before it is killed (max {MAX_TIMEOUT_S:g})"},
        },
        "command",
    ),
    lambda a: str(a.get("purpose") or "").strip()[:120] or f"Run a command: {str(a.get('command', ''))[:80]}",
)
async def _run_command(box: ToolBox, args: dict[str, Any], done: Done) -> ToolOutcome:
    command = str(args["command"])
    timeout = min(float(args.get("timeout_s") or DEFAULT_TIMEOUT_S), MAX_TIMEOUT_S)
    out, err, result = await box.collect(["sh", "-c", command], timeout)
    assert result is not None
    if result.reason is ExitReason.TIMED_OUT:
        status = f"timed out after {timeout:g} s and was stopped"
    elif result.reason is ExitReason.SIGNALED:
        status = f"was killed by signal {result.signal}"
    else:
        status = f"exit status {result.exit_code}"
    body = f"$ {command}\n[{status}]\n--- stdout ---\n{out}\n--- stderr ---\n{err}"  # each already bounded
    failed = result.reason is not ExitReason.EXITED or result.exit_code != 0
    return done(untrusted("command output", body), body, error=failed)


@tool(
    "read_file",
    "Read a text file from the workspace. Paths are relative to the workspace.",
    _obj({"path": {"type": "string"}, "offset": {"type": "integer", "minimum": 0}}, "path"),
    lambda a: f"Read {_path(a)}",
)
async def _read_file(box: ToolBox, args: dict[str, Any], done: Done) -> ToolOutcome:
    path = str(args["path"])
    data, size, eof = await box.sandbox.unless_failed(
        box.sandbox.guest.read_file(path, offset=int(args.get("offset") or 0), max_bytes=READ_CAP)
    )
    text = data.decode(errors="replace")
    more = "" if eof else f"\n[file continues: {size} bytes in all; read again with an offset]"
    return done(untrusted(f"file {path}", text + more), text)


@tool(
    "write_file",
    "Create or replace a file in the workspace with the given text (parent folders are created).",
    _obj({"path": {"type": "string"}, "content": {"type": "string"}}, "path", "content"),
    lambda a: f"Write {_path(a)}",
)
async def _write_file(box: ToolBox, args: dict[str, Any], done: Done) -> ToolOutcome:
    path, content = str(args["path"]), str(args["content"])
    n = await box.sandbox.unless_failed(box.sandbox.guest.write_file(path, content.encode()))
    return done(f"Wrote {n} bytes to {path}.", content)


@tool(
    "edit_file",
    "Replace one exact occurrence of old_text with new_text in a workspace file.",
    _obj(
        {"path": {"type": "string"}, "old_text": {"type": "string"}, "new_text": {"type": "string"}},
        "path",
        "old_text",
        "new_text",
    ),
    lambda a: f"Edit {_path(a)}",
)
async def _edit_file(box: ToolBox, args: dict[str, Any], done: Done) -> ToolOutcome:
    path, old, new = str(args["path"]), str(args["old_text"]), str(args["new_text"])
    data, _, eof = await box.sandbox.unless_failed(box.sandbox.guest.read_file(path))
    if not eof:
        return done(f"{path} is too large to edit this way.", "", error=True)
    text = data.decode()
    count = text.count(old)
    if count != 1:
        what = "does not occur" if count == 0 else f"occurs {count} times"
        return done(f"old_text {what} in {path}; give text that occurs exactly once.", "", error=True)
    await box.sandbox.unless_failed(box.sandbox.guest.write_file(path, text.replace(old, new, 1).encode()))
    return done(f"Edited {path}.", f"- {old}\n+ {new}")


@tool(
    "list_files",
    "List files and folders in the workspace (or in a folder inside it).",
    _obj({"path": {"type": "string"}, "recursive": {"type": "boolean"}}),
    lambda a: f"List the files in {_path(a)}",
)
async def _list_files(box: ToolBox, args: dict[str, Any], done: Done) -> ToolOutcome:
    path = str(args.get("path") or "")
    entries, truncated = await box.sandbox.unless_failed(
        box.sandbox.guest.list_dir(path, recursive=bool(args.get("recursive")), max_entries=2000)
    )
    lines = [f"{e.path}/" if e.type is FileType.DIRECTORY else f"{e.path}  ({e.size} bytes)" for e in entries]
    if truncated:
        lines.append("[more entries left out]")
    text = "\n".join(lines) or "(empty)"
    return done(untrusted("file listing", text), text)


@tool(
    "search_files",
    "Search the workspace's text files for a regular expression; returns matching lines.",
    _obj({"pattern": {"type": "string"}, "path": {"type": "string"}}, "pattern"),
    lambda a: f"Search for “{a.get('pattern', '')}” in {_path(a)}",
)
async def _search_files(box: ToolBox, args: dict[str, Any], done: Done) -> ToolOutcome:
    pattern, path = str(args["pattern"]), str(args.get("path") or ".")
    command = f"grep -rnIE --max-count=50 -e {shlex.quote(pattern)} -- {shlex.quote(path)} | head -n 500"
    out, _, _ = await box.collect(["sh", "-c", command], 60)
    text = cap(out) or "(no matches)"
    return done(untrusted("search results", text), text)


@tool(
    "read_document",
    "Read the text and structure of an office file or PDF in the workspace (.docx headings and "
    "tables, .xlsx sheets with values and formulas, .pptx slides, .pdf pages, .csv rows), bounded in size.",
    _obj(
        {"path": {"type": "string"}, "max_chars": {"type": "integer", "minimum": 1000, "maximum": OUTPUT_CAP}},
        "path",
    ),
    lambda a: f"Read the document {_path(a)}",
)
async def _read_document(box: ToolBox, args: dict[str, Any], done: Done) -> ToolOutcome:
    path = str(args["path"])
    limit = max(1000, min(int(args.get("max_chars") or OUTPUT_CAP), OUTPUT_CAP))
    if path.startswith("/") or ".." in path.replace("\\", "/").split("/"):
        return done(f"{path}: give a path inside the workspace, relative to it.", "", error=True)
    if path.startswith("-"):
        path = "./" + path
    out, err, result = await box.collect(["python3", EXTRACTOR, "--max-chars", str(limit), path], DEFAULT_TIMEOUT_S)
    text = cap(out, limit + 500)
    if result is None or result.reason is not ExitReason.EXITED or result.exit_code != 0:
        problem = err.strip()[-2000:] or "the document could not be read"
        return done(untrusted(f"document {path}", problem), problem, error=True)
    return done(untrusted(f"document {path}", text), text)


@tool(
    "load_skill",
    "Load the instructions of one skill (listed in the system prompt) before doing that kind of work.",
    _obj({"name": {"type": "string"}}, "name"),
    lambda a: f"Look up how to do this well ({a.get('name', '')})",
    where=Where.HOST,
)
async def _load_skill(box: ToolBox, args: dict[str, Any], done: Done) -> ToolOutcome:
    # On the host: skills live in the agent profile, which Paddock manages.
    text = skills.load(str(args["name"]))
    return done(untrusted(f"skill {args['name']}", text), text)


@tool(
    "remember",
    "Save a short note for future sessions (the person can review and delete it; it expires). "
    "Use it only for lasting preferences the person stated.",
    _obj({"note": {"type": "string"}}, "note"),
    lambda a: "Save a note for later sessions",
    where=Where.HOST,
    outside_app=False,  # Paddock's own assistant memory: not for other clients to plant notes in
)
async def _remember(box: ToolBox, args: dict[str, Any], done: Done) -> ToolOutcome:
    # Runs on the host on purpose: the profile is read-only in the guest, and a
    # note must carry where it came from and when it expires.
    memory = box.memory.add(str(args["note"]), session=box.session_id, folder=box.sandbox.folder)
    days = round((memory.expires - memory.created) / 86400)
    return done(f"Saved note {memory.id}; it expires in {days} days and the person can delete it.", memory.text)


TOOL_SPECS: tuple[ToolSpec, ...] = specs()
TOOL_NAMES = frozenset(TOOLS)
