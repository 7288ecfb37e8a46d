"""The local audit log: append-only JSON lines, chained with a keyed hash, rotated by size.

Each record carries ``seq``, ``prev`` (the hash of the record before it) and
``hash``: HMAC-SHA-256, under the person's audit key (kept in the OS
keychain, never in the log's folder), over the record's canonical JSON without
``hash``. Without the key nobody can write a record, or a whole new log, that
verifies. A ``head`` file beside the log holds the last seq and hash, so
cutting records off the end is detected as well as editing or deleting one in
the middle. When ``audit.jsonl`` passes the size limit it becomes
``audit.1.jsonl`` (older files shift up) and the chain continues in a new file.

What the key cannot stop is the key's owner rewriting the log; the anchor
against that is a copy of the hashes somewhere the person cannot write (the
admin's OTLP collector receives each record's seq and hash), checked with
``verify(anchors=...)``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddock.core.errors import PaddockError
from paddock.core.locks import file_lock
from paddock.core.paths import data_dir

GENESIS = "0" * 64
KEEP_FILES = 10
ALGORITHM = "hmac-sha256"


class AuditError(PaddockError):
    """The audit log could not be written or read."""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    problem: str = ""


def _digest(record: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


class AuditLog:
    def __init__(
        self, folder: Path | None = None, *, max_bytes: int = 50 * 1024 * 1024, key: bytes | None = None
    ) -> None:
        self.folder = folder or data_dir() / "audit"
        self.max_bytes = max_bytes
        self.current = self.folder / "audit.jsonl"
        self.head = self.folder / "head.json"
        self._lock_path = self.folder / ".lock"
        self._key = key  # reading needs no key; writing and verifying do

    def _need_key(self) -> bytes:
        if not self._key:
            raise AuditError("The audit key is not available, so the audit log can be neither written nor checked.")
        return self._key

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write one record (adds seq, time, prev, hash) and return it as written."""
        key = self._need_key()
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with file_lock(self._lock_path):
            self._set_aside_unkeyed()
            seq, prev = self._read_head()
            if self.current.exists() and self.current.stat().st_size >= self.max_bytes:
                self._rotate()
            full = {"seq": seq + 1, "time_unix": record.pop("time_unix", time.time()), **record, "prev": prev}
            full["hash"] = _digest(full, key)
            line = json.dumps(full, ensure_ascii=False, separators=(",", ":")) + "\n"
            fd = os.open(self.current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp = self.head.with_suffix(".tmp")
            tmp.write_text(json.dumps({"seq": full["seq"], "hash": full["hash"], "alg": ALGORITHM}))
            os.replace(tmp, self.head)
            return full

    def _read_head(self) -> tuple[int, str]:
        """The head: the last seq and hash, under this algorithm. A head without its algorithm (a
        field removed: a downgrade to "unkeyed") is damaged, not old: old logs are told apart by
        their records (``_set_aside_unkeyed``)."""
        try:
            head = json.loads(self.head.read_text())
            if head["alg"] != ALGORITHM:
                raise ValueError(f"algorithm {head['alg']!r}")
            return int(head["seq"]), str(head["hash"])
        except FileNotFoundError:
            return 0, GENESIS
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AuditError(
                f"The audit log's head file is damaged or was changed ({self.head}: {type(exc).__name__} {exc}); "
                "run `paddock audit verify`."
            ) from exc

    def _set_aside_unkeyed(self) -> None:
        """A log from before the chain was keyed cannot be continued: move it into
        ``unkeyed-<time>/`` (kept, readable, no longer verified) and start a keyed one. Whether a
        log is that old is read from its records, not from the head (a head anyone can edit): a
        log whose newest record verifies under the key is keyed, whatever its head says."""
        try:
            head = json.loads(self.head.read_text())
        except (OSError, ValueError):
            return
        if isinstance(head, dict) and head.get("alg") == ALGORITHM:
            return
        if self._newest_is_keyed():
            return  # a keyed log whose head was changed: left in place, so verify and append name it
        self._move_aside("unkeyed")

    def _newest_is_keyed(self) -> bool:
        key = self._need_key()
        for path in reversed(self.files()):
            lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
            for line in reversed(lines):
                try:
                    rec = json.loads(line)
                    if hmac.compare_digest(str(rec["hash"]), _digest(rec, key)):
                        return True
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
        return False

    def set_aside(self, why: str) -> Path | None:
        """Move the log into ``<why>-<time>/`` beside it (kept, readable, no longer verified)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with file_lock(self._lock_path):
            return self._move_aside(why)

    def _move_aside(self, why: str) -> Path | None:
        paths = [*self.files(), *([self.head] if self.head.exists() else [])]
        if not paths:
            return None
        aside = self.folder / f"{why}-{int(time.time())}"
        aside.mkdir(mode=0o700, exist_ok=True)
        for path in paths:
            shutil.move(str(path), aside / path.name)
        return aside

    def set_aside_folders(self) -> list[Path]:
        """Logs set aside earlier (from before the chain was keyed, or signed by a key that was lost)."""
        return sorted(p for p in self.folder.glob("*-*") if p.is_dir())

    def _rotate(self) -> None:
        oldest = self.folder / f"audit.{KEEP_FILES}.jsonl"
        oldest.unlink(missing_ok=True)
        for n in range(KEEP_FILES - 1, 0, -1):
            src = self.folder / f"audit.{n}.jsonl"
            if src.exists():
                os.replace(src, self.folder / f"audit.{n + 1}.jsonl")
        os.replace(self.current, self.folder / "audit.1.jsonl")

    def files(self) -> list[Path]:
        """Oldest first."""
        rotated = sorted(self.folder.glob("audit.*.jsonl"), key=lambda p: -int(p.name.split(".")[1]))
        return [*rotated, *([self.current] if self.current.exists() else [])]

    def records(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        for path in self.files():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    rec = json.loads(line)
                    if since is None or float(rec.get("time_unix", 0)) >= since:
                        yield rec

    def verify(self, anchors: dict[int, str] | None = None) -> VerifyResult:
        """Walk the chain under the key; name the first record that does not fit. ``anchors``
        (seq -> hash, as a collector received them) must each be in the log as they were sent."""
        key = self._need_key()
        if not self.files():
            return VerifyResult(not self.head.exists(), 0, "" if not self.head.exists() else "the log is missing")
        count, last, problem = self._walk(key, dict(anchors or {}))
        if problem:
            return VerifyResult(False, count, problem)
        try:
            head = self._read_head()
        except AuditError as exc:
            return VerifyResult(False, count, exc.message)
        if head != last:
            return VerifyResult(
                False,
                count,
                f"the log ends at record {last[0]}, but record {head[0]} was "
                "written: records were removed from the end",
            )
        return VerifyResult(True, count)

    def _walk(self, key: bytes, anchors: dict[int, str]) -> tuple[int, tuple[int, str], str]:
        """(records that fit, (seq, hash) of the last one, the first problem or "")."""
        count, last = 0, (0, "")
        for path in self.files():
            with open(path, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    where = f"{path.name} line {lineno}"
                    try:
                        rec = json.loads(line)
                        seq, prev, digest = int(rec["seq"]), str(rec["prev"]), str(rec["hash"])
                    except (ValueError, KeyError, TypeError):
                        return count, last, f"{where}: not a valid audit record"
                    if count == 0:  # anchors older than the oldest kept file were rotated away
                        anchors = {n: h for n, h in anchors.items() if n >= seq}
                    if digest != _digest(rec, key):
                        problem = "its content was changed"
                    elif count and (prev != last[1] or seq != last[0] + 1):
                        problem = "a record before it is missing or was changed"
                    elif seq in anchors and anchors.pop(seq) != digest:
                        problem = "it is not the record the collector received: the log was rewritten"
                    else:
                        count, last = count + 1, (seq, digest)
                        continue
                    return count, last, f"{where} (record {seq}): {problem}"
        if anchors:
            return count, last, f"record {min(anchors)}, which the collector received, is not in the log"
        return count, last, ""
