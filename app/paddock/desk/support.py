""" "Copy details for support" (no Qt): one text file a person can send to whoever looks after
Paddock — the versions, what ``paddock doctor`` finds, the policy in effect (in its own words), and
the last session's log — with no file contents and no keys.

What keeps it so:

- It reads only Paddock's own log (``<data>/logs/session-*.log``, the newest), never a folder the
  assistant worked on, a conversation, a note or the audit log (those hold what files said).
- Every line is scrubbed twice: the log's own shapes of secrets (``paddock.core.logs.scrub``) and
  every key Paddock can find (each model endpoint's keychain entry, the key variables in the
  environment), replaced wherever it appears, whatever its shape.
- The log's tail only (``LOG_LINES``), each line cut to ``LINE_CHARS``.

``paddock support`` writes the same file (``paddock.cli.admin``).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from contextlib import suppress
from importlib import metadata
from pathlib import Path

from paddock import __version__
from paddock.core.logs import MASK, logs_dir, scrub
from paddock.core.paths import data_dir
from paddock.credentials import KeychainError, backend_status
from paddock.policy import PolicyError, load
from paddock.session import model_choice
from paddock.session.doctor import run_checks

LOG_LINES = 2000  # of the last session's log
LINE_CHARS = 600
KEY_VARIABLES = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
PACKAGES = ("anthropic", "openai", "PySide6-Essentials", "grpcio", "mcp", "keyring", "qtawesome")


def known_keys() -> list[str]:
    """Every key Paddock could use now: the endpoints' keychain entries and the key variables."""
    found = [v for v in (os.environ.get(k, "") for k in KEY_VARIABLES) if len(v) >= 6]
    try:
        policy = load()
    except PolicyError:
        return found
    for e in policy.model_endpoints:
        if e.key is None:
            continue
        with suppress(KeychainError, PolicyError):
            secret = model_choice.keychain(policy).get(e.key)
            if secret and len(secret) >= 6:
                found.append(secret)
    return found


def redacted(text: str, keys: list[str]) -> str:
    for key in sorted(set(keys), key=len, reverse=True):
        text = text.replace(key, MASK)
    return scrub(text)


def last_session_log() -> Path | None:
    logs = [p for p in logs_dir().glob("session-*.log") if p.is_file() and not p.is_symlink()]
    return max(logs, key=lambda p: p.stat().st_mtime, default=None)


def _versions() -> list[str]:
    lines = [f"Paddock {__version__}", f"Python {platform.python_version()} ({sys.executable})"]
    with suppress(OSError):
        release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        lines.append(f"System: {release.get('PRETTY_NAME', '?').strip(chr(34))}, kernel {platform.release()}")
    for name in PACKAGES:
        with suppress(metadata.PackageNotFoundError):
            lines.append(f"{name} {metadata.version(name)}")
    return lines


async def _doctor() -> list[str]:
    lines = []
    try:
        for c in await run_checks(probe=False):
            mark = "ok" if c.ok else ("FAILED" if c.required else "missing (optional)")
            lines.append(f"{mark}: {c.name}: {c.detail}" + (f" -> {c.fix}" if c.fix else ""))
    except Exception as exc:  # noqa: BLE001 - the bundle says what it could not check
        lines.append(f"the checks did not run: {type(exc).__name__}: {exc}")
    with suppress(Exception):
        lines.append(f"keychain backend: {backend_status().name}")
    return lines


def _policy() -> list[str]:
    try:
        policy = load()
    except PolicyError as exc:
        return [f"the policy could not be read: {exc.message}"]
    tiers = ", ".join(f"{t.name} ({t.path})" for t in policy.tiers) or "none (built-in defaults)"
    return [f"tiers: {tiers}", *(f"{key}: {value} [{tier}]" for key, value, tier in policy.describe())]


def _log() -> list[str]:
    path = last_session_log()
    if path is None:
        return ["(no session has run yet)"]
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    cut = len(lines) - LOG_LINES
    head = [f"{path.name}, {len(lines)} lines" + (f"; the first {cut} left out" if cut > 0 else "")]
    return head + [line[:LINE_CHARS] for line in lines[-LOG_LINES:]]


async def bundle() -> str:
    """The support details, as one redacted text."""
    sections = {
        "Versions": _versions(),
        "What `paddock doctor` finds": await _doctor(),
        "The policy in effect": _policy(),
        "The last session's log": _log(),
    }
    made = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    parts = [
        f"Paddock support details, made {made}.",
        "This file holds no file contents and no keys: keys are replaced by [redacted].",
    ]
    for title, lines in sections.items():
        parts.append(f"\n== {title} ==\n" + "\n".join(lines))
    return redacted("\n".join(parts) + "\n", known_keys())


async def write_bundle(folder: Path | None = None) -> Path:
    """Write the support details to a new file in ``folder`` (default: Paddock's ``support`` folder),
    readable by the person only; returns its path."""
    text = await bundle()
    folder = folder or data_dir() / "support"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / time.strftime("paddock-support-%Y%m%d-%H%M%S.txt")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path
