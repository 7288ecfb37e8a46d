"""Taint: after a sensitive read, requests that can carry data out are held (standard library
only; the gateway process imports this, and so does the host side that writes the state).

The host learns of a sensitive read from the change guard (``paddock.sandbox.sensitive``) and,
before the read goes on, writes ``taint.json`` into the gateway's run folder. The gateway reads
it on every request (by its modification time, as it reads the session grants). While the
session is tainted, a request that ``carries_data`` is held: refused with a decision marked
``held`` that names the read; the host then either asks the person ("Allow this once?") or, where
policy says ``refuse``, leaves it refused. A yes is one entry in ``taint-allow.json`` (method,
host, path) that lets exactly one matching request through.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# A sandbox host's folder is a copy there: no change guard here sees what its guest opens, so a
# session that watches reads starts tainted (fail closed), and says why.
UNWATCHED = {"id": "sandbox-host", "path": "files on a sandbox host"}
TAINT_FILE = "taint.json"
ALLOW_FILE = "taint-allow.json"
LONG_QUERY = 256  # a query longer than this can carry data out


def carries_data(grant: dict[str, Any], method: str, target: str, body_len: int) -> bool:
    """Whether a request under ``grant`` can carry data out: as the grant says (``sends_data``),
    else any body, a long query, or a method other than GET or HEAD."""
    marked = grant.get("sends_data")
    if marked is not None:
        return bool(marked)
    query = target.partition("?")[2]
    return body_len > 0 or len(query) > LONG_QUERY or method.upper() not in ("GET", "HEAD")


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` atomically (the gateway never reads half a file)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


class _Watched:
    """A JSON file re-read when its modification time changes; ``broken`` when unreadable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime = -1
        self.value: Any = None
        self.broken = False

    def read(self) -> Any:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self.value, self.broken, self._mtime = None, False, -1
            return None
        if mtime != self._mtime:
            try:
                self.value, self.broken = json.loads(self.path.read_text()), False
            except (OSError, ValueError):
                self.value, self.broken = None, True
            self._mtime = mtime
        return self.value


class TaintGate:
    """The gateway's view: whether the session is tainted, and the person's one-time yeses."""

    def __init__(self, run_dir: Path, mode: str) -> None:
        self.mode = mode  # ask | refuse
        self._taint = _Watched(run_dir / TAINT_FILE)
        self._allow = _Watched(run_dir / ALLOW_FILE)
        self._used: set[str] = set()

    def tainted_by(self) -> dict[str, Any] | None:
        """The first sensitive read of the session (``{"id", "path"}``), or None. A taint file
        that cannot be read counts as tainted (fail closed)."""
        value = self._taint.read()
        if self._taint.broken:
            return {"id": "unreadable", "path": "(the taint record could not be read)"}
        reads = value.get("reads") if isinstance(value, dict) else None
        return reads[0] if isinstance(reads, list) and reads and isinstance(reads[0], dict) else None

    def allowed_once(self, method: str, host: str, path: str) -> str | None:
        """The id of an unused yes for this request (now used), or None."""
        if self.mode != "ask":
            return None
        entries = self._allow.read()
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("id") in self._used:
                continue
            if (entry.get("method"), entry.get("host"), entry.get("path")) == (method, host, path):
                self._used.add(str(entry["id"]))
                return str(entry["id"])
        return None
