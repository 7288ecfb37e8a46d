"""The gateway's channel to the host: typed gateway events pushed as they happen.

One unix socket pair, made by the host when it starts the gateway (``EgressGateway.start``); the
gateway process inherits its end (``--channel-fd``). Each message is one JSON object on one line,
with a ``type``:

    gateway -> host   ready     the proxy listens (its port)
                      decision  a request allowed or refused, with the grant that allowed it
                      question  the gateway holds something and asks the host (yes or no)
                      alert     something the host must hear about now (a tripwire, say)
                      pong      every event sent before the matching ping has been sent
    host -> gateway   answer    the answer to one question
                      ping      a barrier (``EgressGateway.settle``)

The gateway writes each decision before the request it decides goes on (a refusal's answer may
already be set): if the channel is broken or the host does not read it, the write fails and the
request is refused, and the gateway shuts down when the host's end closes. So a decision the host
never heard of is never a request that went out (fail closed). The host's audit trail is the
durable record of what arrives here.

Runs in the gateway's own environment too: the standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LINE = 64 * 1024  # a longer line is no gateway event
SEND_TIMEOUT_S = 5.0  # a host that reads nothing for this long is gone: the request is refused


class ChannelClosed(Exception):
    """The channel to the host is broken (or the host stopped reading)."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    grant: str | None
    method: str
    host: str
    path: str
    port: int = 0
    scheme: str = "https"
    no_grant: bool = False  # refused only because no grant covers the request (it may be asked about)
    time_unix: float = 0.0
    tripwire: str = ""  # the decoy secret this request carried, or that closed egress earlier
    closed: bool = False  # refused because a tripwire closed this session's egress before
    held: bool = False  # held after a sensitive read (``paddock.egress.taint``): asked about or refused
    taint: str = ""  # the id of the sensitive read that held it
    taint_path: str = ""  # that read's path inside the folder
    allowed_once: str = ""  # let through by the person's one-time yes (its id)
    severity: str = ""  # "high" on the request that tripped a decoy secret
    taint_mode: str = ""  # held: "ask" (the person may allow it once) or "refuse"


@dataclass(frozen=True)
class Question:
    """The gateway holds something and asks the host: yes or no (``EgressGateway.answer``). No
    answer before the gateway gives up, or a channel that breaks, is a no."""

    id: str
    kind: str  # what is held, e.g. "held-request"
    text: str  # the question in plain words, for a person
    method: str = ""
    host: str = ""
    port: int = 0
    path: str = ""
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    """Something the host must hear about at once (nothing to answer)."""

    kind: str
    message: str
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ready:
    port: int


@dataclass(frozen=True)
class Answer:
    id: str
    allow: bool


@dataclass(frozen=True)
class Ping:
    id: int


@dataclass(frozen=True)
class Pong:
    id: int


GatewayEvent = Ready | Decision | Question | Alert | Pong
HostMessage = Answer | Ping
_TYPES: dict[str, type[Any]] = {"ready": Ready, "decision": Decision, "question": Question, "alert": Alert,
                                "pong": Pong, "answer": Answer, "ping": Ping}  # fmt: skip
_NAMES = {cls: name for name, cls in _TYPES.items()}


class BadMessage(ValueError):
    pass


def encode(message: GatewayEvent | HostMessage) -> bytes:
    return (json.dumps({"type": _NAMES[type(message)], **asdict(message)}) + "\n").encode()


def decode(line: bytes) -> GatewayEvent | HostMessage:
    """One message from one line; ``BadMessage`` when it is none."""
    if len(line) > MAX_LINE:
        raise BadMessage("a line longer than a gateway event")
    try:
        raw = json.loads(line)
        cls = _TYPES[raw.pop("type")]
        message = cls(**raw)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadMessage(f"not a gateway event: {exc}") from exc
    return message  # type: ignore[no-any-return]


class GatewaySide:
    """The gateway process's end: ``send`` events, ``ask`` questions, answer pings. ``closed`` is
    called once when the host's end goes away (the gateway then stops)."""

    def __init__(self, sock: socket.socket, closed: Callable[[], None] | None = None) -> None:
        self._sock = sock
        self._sock.settimeout(SEND_TIMEOUT_S)
        self._closed_cb = closed
        self._buffer = b""
        self._pending: dict[str, asyncio.Future[bool]] = {}
        self.broken = False

    @classmethod
    def from_fd(cls, fd: int, closed: Callable[[], None] | None = None) -> GatewaySide:
        return cls(socket.socket(fileno=fd), closed)

    def send(self, event: GatewayEvent) -> None:
        if self.broken:
            raise ChannelClosed("the channel to Paddock is closed")
        try:
            self._sock.sendall(encode(event))
        except OSError as exc:  # a timeout too: a host that reads nothing is gone
            self._break()
            raise ChannelClosed(f"the channel to Paddock broke ({exc})") from exc

    def ask(self, question: Question) -> asyncio.Future[bool]:
        """Send ``question``; the future is its answer (False when the channel breaks first)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[question.id] = future
        try:
            self.send(question)
        except ChannelClosed:
            self._pending.pop(question.id, None)
            future.set_result(False)
        return future

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the host's messages on ``loop`` (the proxy's). The socket stays in timeout mode: a
        read happens only when it is readable, and a send waits at most ``SEND_TIMEOUT_S``."""
        loop.add_reader(self._sock.fileno(), self._readable, loop)

    def _readable(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            data = self._sock.recv(MAX_LINE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(self._sock.fileno())
            self._break()
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self._received(line)
        if len(self._buffer) > MAX_LINE:  # a host that sends nonsense is treated as gone
            loop.remove_reader(self._sock.fileno())
            self._break()

    def _received(self, line: bytes) -> None:
        try:
            message = decode(line)
        except BadMessage:
            return
        if isinstance(message, Ping):
            with contextlib.suppress(ChannelClosed):  # a broken channel is handled by _break
                self.send(Pong(message.id))
        elif isinstance(message, Answer):
            future = self._pending.pop(message.id, None)
            if future is not None and not future.done():
                future.set_result(message.allow is True)

    def _break(self) -> None:
        if self.broken:
            return
        self.broken = True
        for future in self._pending.values():
            if not future.done():
                future.set_result(False)
        self._pending.clear()
        if self._closed_cb is not None:
            self._closed_cb()
