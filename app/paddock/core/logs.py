"""Paddock's own log: every module logs to ``logging.getLogger(__name__)`` (under ``paddock``),
with a debug line on every state change of the VM, the sandbox and the assistant.

Each session writes a log file of its own (``<data>/logs/session-<id>.log``, mode 0600) that
the person can attach to a support request. Nothing secret may reach it: values registered
with ``redact`` (the model key, session tokens) and anything shaped like a key or a
credential in a URL are replaced before a line is written. Only ``paddock.*`` loggers go to
the file: libraries' own debug output (HTTP clients, SDKs) is not collected.

``PADDOCK_LOG_LEVEL`` (DEBUG, INFO, …) also sends the log to stderr.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from pathlib import Path

from paddock.core.paths import data_dir

ROOT = "paddock"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "[redacted]"
# Shapes of secrets that must never be written whatever registered them.
PATTERNS = (
    (re.compile(r"sk-ant-[A-Za-z0-9_-]{8,}"), MASK),  # Anthropic keys
    (re.compile(r"sk-[A-Za-z0-9_-]{20,}"), MASK),  # OpenAI-style keys
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\g<1>" + MASK),
    (
        re.compile(r"(?i)((?:x-api-key|authorization|api[_-]?key|token|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]{6,}"),
        r"\g<1>" + MASK,
    ),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\g<1>" + MASK + "@"),  # user:secret@ in a URL (the proxy token)
)
_secrets: set[str] = set()
_lock = threading.Lock()


def redact(value: str | None) -> None:
    """Never write ``value`` to a log (a key or token that is in use)."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for value in known:
        text = text.replace(value, MASK)
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class _Scrubbing(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure() -> None:
    """The package logger: debug and up to the handlers; stderr when PADDOCK_LOG_LEVEL asks."""
    logger = logging.getLogger(ROOT)
    logger.setLevel(logging.DEBUG)
    level = os.environ.get("PADDOCK_LOG_LEVEL")
    if level and not any(getattr(h, "_paddock_stderr", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(level.upper())
        handler.setFormatter(_Scrubbing(FORMAT))
        handler._paddock_stderr = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def logs_dir() -> Path:
    path = data_dir() / "logs"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


class SessionLog:
    """A session's log file, attached while the session is open."""

    def __init__(self, session_id: str) -> None:
        configure()
        self.path = logs_dir() / f"session-{session_id}.log"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self._handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
        self._handler.setLevel(logging.DEBUG)
        self._handler.setFormatter(_Scrubbing(FORMAT))
        logging.getLogger(ROOT).addHandler(self._handler)

    def close(self) -> None:
        logging.getLogger(ROOT).removeHandler(self._handler)
        self._handler.close()
