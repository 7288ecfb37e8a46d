"""The local audit log: append-only JSON lines, hash-chained, rotated by size.

Each record carries ``seq``, ``prev`` (the hash of the record before it) and
``hash`` (SHA-256 over the record's canonical JSON without ``hash``). A
``head`` file beside the log holds the last seq and hash, so cutting records
off the end is detected as well as editing or deleting one in the middle.
When ``audit.jsonl`` passes the size limit it becomes ``audit.1.jsonl`` (older
files shift up) and the chain continues in a new file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paddock.core.errors import PaddockError
from paddock.core.paths import data_dir

GENESIS = "0" * 64
KEEP_FILES = 10


class AuditError(PaddockError):
    """The audit log could not be written or read."""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    problem: str = ""


def _digest(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


class AuditLog:
    def __init__(self, folder: Path | None = None, *, max_bytes: int = 50 * 1024 * 1024) -> None:
        self.folder = folder or data_dir() / "audit"
        self.max_bytes = max_bytes
        self.current = self.folder / "audit.jsonl"
        self.head = self.folder / "head.json"
        self._lock_path = self.folder / ".lock"

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write one record (adds seq, time, prev, hash) and return it as written."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            seq, prev = self._read_head()
            if self.current.exists() and self.current.stat().st_size >= self.max_bytes:
                self._rotate()
            full = {"seq": seq + 1, "time_unix": record.pop("time_unix", time.time()), **record, "prev": prev}
            full["hash"] = _digest(full)
            line = json.dumps(full, ensure_ascii=False, separators=(",", ":")) + "\n"
            fd = os.open(self.current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp = self.head.with_suffix(".tmp")
            tmp.write_text(json.dumps({"seq": full["seq"], "hash": full["hash"]}))
            os.replace(tmp, self.head)
            return full

    def _read_head(self) -> tuple[int, str]:
        try:
            head = json.loads(self.head.read_text())
            return int(head["seq"]), str(head["hash"])
        except FileNotFoundError:
            return 0, GENESIS
        except (OSError, ValueError, KeyError) as exc:
            raise AuditError(
                f"The audit log's head file is damaged ({self.head}); run `paddock audit verify`."
            ) from exc

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

    def verify(self) -> VerifyResult:
        """Walk the chain; name the first record that does not fit."""
        files = self.files()
        if not files:
            return VerifyResult(not self.head.exists(), 0, "" if not self.head.exists() else "the log is missing")
        prev_hash: str | None = None
        prev_seq: int | None = None
        count = 0
        for path in files:
            with open(path, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    where = f"{path.name} line {lineno}"
                    try:
                        rec = json.loads(line)
                        seq, prev, digest = int(rec["seq"]), str(rec["prev"]), str(rec["hash"])
                    except (ValueError, KeyError, TypeError):
                        return VerifyResult(False, count, f"{where}: not a valid audit record")
                    if digest != _digest(rec):
                        return VerifyResult(False, count, f"{where} (record {seq}): its content was changed")
                    if prev_hash is not None and (prev != prev_hash or seq != (prev_seq or 0) + 1):
                        return VerifyResult(
                            False, count, f"{where} (record {seq}): a record before it is missing or was changed"
                        )
                    prev_hash, prev_seq = digest, seq
                    count += 1
        try:
            head_seq, head_hash = self._read_head()
        except AuditError as exc:
            return VerifyResult(False, count, exc.message)
        if (head_seq, head_hash) != (prev_seq, prev_hash):
            return VerifyResult(
                False,
                count,
                f"the log ends at record {prev_seq}, but record {head_seq} was written: "
                "records were removed from the end",
            )
        return VerifyResult(True, count)
