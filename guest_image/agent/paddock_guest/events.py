"""Guest events (processes started and exited, files changed), fanned out to every Events stream."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any, TypeVar

import grpc

from paddock.guest.v1 import agent_pb2 as pb


class Runs:
    """Which Exec a process belongs to: each command runs in its own session (setsid), whose id is
    the pid the agent started. The last few ended runs are kept: their files may still be reported."""

    KEEP = 256

    def __init__(self) -> None:
        self._by_sid: dict[int, str] = {}
        self._by_pid: dict[int, str] = {}  # processes seen writing: known after they exit
        self._lock = threading.Lock()

    def started(self, sid: int, exec_id: str) -> None:
        with self._lock:
            self._by_sid.pop(sid, None)
            self._by_pid.pop(sid, None)
            self._by_sid[sid] = exec_id
            while len(self._by_sid) > self.KEEP:
                del self._by_sid[next(iter(self._by_sid))]

    def of(self, pid: int) -> str:
        with self._lock:
            found = self._by_sid.get(pid) or self._by_pid.get(pid)
        if found is not None:
            return found
        try:  # a process the command started: its session, while it still runs
            with open(f"/proc/{pid}/stat", "rb") as fh:
                sid = int(fh.read().rsplit(b")", 1)[1].split()[3])  # state, ppid, pgrp, session
        except (OSError, ValueError, IndexError):
            return ""
        with self._lock:
            found = self._by_sid.get(sid, "")
            if found:
                self._by_pid[pid] = found
                while len(self._by_pid) > 4 * self.KEEP:
                    del self._by_pid[next(iter(self._by_pid))]
            return found


RUNS = Runs()


class EventHub:
    """Fan-out of guest events to every open Events stream."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[pb.GuestEvent | None]] = []
        self._seq = 0

    def publish(self, **kind: Any) -> int:
        """Publish one event; its seq (events are numbered in the one order every stream sees)."""
        with self._lock:
            self._seq += 1
            event = pb.GuestEvent(time_unix=time.time(), seq=self._seq, **kind)
            for q in self._subscribers:
                q.put(event)
            return self._seq

    @property
    def seq(self) -> int:
        """The seq of the last event published (0: none yet)."""
        with self._lock:
            return self._seq

    def subscribe(self) -> queue.Queue[pb.GuestEvent | None]:
        """A queue of every event published from now on, led by a marker (a GuestEvent with no kind
        and the seq of the last event before it): the stream is open from there."""
        q: queue.Queue[pb.GuestEvent | None] = queue.Queue()
        with self._lock:
            q.put(pb.GuestEvent(time_unix=time.time(), seq=self._seq))
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue[pb.GuestEvent | None]) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)
        q.put(None)


T = TypeVar("T")


def drain(q: queue.Queue[T | None], context: grpc.ServicerContext, *, check_s: float | None = 1.0) -> Iterator[T]:
    """Yield what a queue receives until None arrives or the caller goes away (looked at every
    ``check_s``; None: never, for a queue whose owner always puts None when the caller goes, as
    ``EventHub.unsubscribe`` does from the stream's termination callback)."""
    while context.is_active():
        try:
            item = q.get(timeout=check_s)
        except queue.Empty:
            continue
        if item is None:
            return
        yield item
