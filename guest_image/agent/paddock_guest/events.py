"""Guest events (processes started and exited, files changed), fanned out to every Events stream."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any, TypeVar

import grpc

from paddock.guest.v1 import agent_pb2 as pb


class EventHub:
    """Fan-out of guest events to every open Events stream."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[pb.GuestEvent | None]] = []
        self._seq = 0

    def publish(self, **kind: Any) -> None:
        with self._lock:
            self._seq += 1
            event = pb.GuestEvent(time_unix=time.time(), seq=self._seq, **kind)
            for q in self._subscribers:
                q.put(event)

    def subscribe(self) -> queue.Queue[pb.GuestEvent | None]:
        q: queue.Queue[pb.GuestEvent | None] = queue.Queue()
        with self._lock:
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue[pb.GuestEvent | None]) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)
        q.put(None)


T = TypeVar("T")


def drain(q: queue.Queue[T | None], context: grpc.ServicerContext) -> Iterator[T]:
    """Yield what a queue receives until None arrives or the caller goes away."""
    while context.is_active():
        try:
            item = q.get(timeout=1.0)
        except queue.Empty:
            continue
        if item is None:
            return
        yield item
