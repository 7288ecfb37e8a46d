"""Typed signals: one way for a part to tell others that something happened.

    class Gateway:
        def __init__(self) -> None:
            self.decided: Signal[Decision] = Signal("egress decision")

    gateway.decided.connect(auditor.on_decision)
    gateway.decided.emit(decision)

Listeners run in the order they connected, on the emitter's thread, before ``emit`` returns. One
listener's failure is logged and does not stop the others (nor the emitter). The parameters are
checked by the type checker (``Signal[VMState, str | None]`` takes two).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVarTuple

log = logging.getLogger(__name__)
Ts = TypeVarTuple("Ts")


class Signal(Generic[*Ts]):
    """Listeners of one kind of event (see the module's docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[Callable[[*Ts], object]] = []

    def connect(self, listener: Callable[[*Ts], object]) -> Callable[[*Ts], object]:
        """Call ``listener`` on every later ``emit`` (returned, so it can serve as a decorator)."""
        self._listeners.append(listener)
        return listener

    def disconnect(self, listener: Callable[[*Ts], object]) -> None:
        """Stop calling ``listener`` (nothing happens when it was not connected)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, *args: *Ts) -> None:
        for listener in list(self._listeners):  # a listener may connect or disconnect others
            try:
                listener(*args)
            except Exception:  # one listener's bug must not lose the event for the rest
                log.exception("a listener of %s failed", self.name)

    def __len__(self) -> int:
        return len(self._listeners)
