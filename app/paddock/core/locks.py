"""A lock on a file that two processes write (``filelock``): one holder at a time, across processes.

The lock is ``flock`` on a lock file beside the data, made ``0600``; it is let go when the holder
closes it or dies. Never filelock's "soft" fallback (a marker file left behind by a process that
crashed would hold everyone out): where ``flock`` is missing, taking the lock fails.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["FileLock", "Timeout", "file_lock"]


def file_lock(path: Path, *, timeout: float = -1, on_acquired: Callable[[int], None] | None = None) -> FileLock:
    """The lock whose lock file is ``path``: ``with file_lock(p):`` waits for it (``timeout`` < 0),
    or raises ``Timeout`` after ``timeout`` seconds. ``on_acquired`` is given the lock file's
    descriptor each time the lock is taken (to write a mark in it)."""
    return FileLock(path, timeout=timeout, mode=0o600, fallback_to_soft=False, on_acquired=on_acquired)
