"""Where the Qt loop and the engine loop meet. The only place they touch.

The window calls ``Bridge.call(coro, on_done, on_error)``: the coroutine runs on
the engine thread, and its result (or its ``PaddockError``) comes back on the Qt
thread through a queued signal. Events the ``Desk`` publishes on the engine
thread are re-emitted as ``Bridge.published`` on the Qt thread. An error goes to ``on_error`` in
plain words (``paddock.desk.problem``); when it was unexpected, ``Bridge.problem`` carries the
same words and the technical details, for the window's "Copy details".
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from paddock.core.engine import Engine
from paddock.desk import Desk, DeskEvent, problem

Done = Callable[[Any], None]
Err = Callable[[str], None]


class Bridge(QObject):
    published = Signal(object)  # a DeskEvent, on the Qt thread
    problem = Signal(object)  # a Problem with details (an unexpected error), on the Qt thread
    _finished = Signal(object, object)  # (callback, value), on the Qt thread

    def __init__(self, engine: Engine, desk: Desk) -> None:
        super().__init__()
        self.engine = engine
        self.desk = desk
        self._finished.connect(self._deliver)
        self.pending: set[concurrent.futures.Future[Any]] = set()
        desk.subscribe(self._from_engine)

    def _from_engine(self, ev: DeskEvent) -> None:
        self.published.emit(ev)  # emitted on the engine thread; Qt queues it to this object's thread

    @Slot(object, object)
    def _deliver(self, callback: Callable[[Any], None], value: Any) -> None:
        callback(value)

    def call(self, coro: Coroutine[Any, Any, Any], on_done: Done | None = None, on_error: Err | None = None) -> None:
        """Run ``coro`` on the engine; report back on the Qt thread. Errors go to ``on_error`` in
        plain words; an unexpected one is also published as ``problem`` with its details."""
        future = self.engine.submit(coro)
        self.pending.add(future)

        def done(f: concurrent.futures.Future[Any]) -> None:
            self.pending.discard(f)
            if f.cancelled():
                return
            exc = f.exception()
            if exc is None:
                if on_done is not None:
                    self._finished.emit(on_done, f.result())
            else:
                said = problem(exc)
                if on_error is not None:
                    self._finished.emit(on_error, said.message)
                if said.details:
                    self._finished.emit(self.problem.emit, said)

        future.add_done_callback(done)

    @property
    def idle(self) -> bool:
        return not self.pending
