"""Pause a sandbox that only waits, and let it run again before the next call to its agent.

A guest that waits between turns still costs the host a few per cent of a core under
emulation (its kernel's timers, the agent's and the watcher's wake-ups, each emulated). An
``IdleGate`` sits on the channel to the agent as a client interceptor: once no call has been
in flight for ``idle_s``, it calls ``pause`` (QMP ``stop`` on the VM); every call made after
that first awaits ``resume`` (QMP ``cont``, about a millisecond), so nothing a caller does
changes and no call sees a paused guest. Long-lived streams that only wait (the event stream,
the egress tunnel) do not keep the guest awake. The agent steps its clock to the host's before the
next command (a paused guest's clock stands still).

The gate is closed before its VM is (``aclose``, which ``GuestClient.close`` does first): its
timer is cancelled, a pause under way is cancelled and awaited, and it pauses no more; calls
made after that still resume a guest it left paused (a closing sandbox settles its events
first). A pause or resume that QEMU does not answer within ``QMP_TIMEOUT_S`` is given up
(logged): a call waiting on the gate is never held longer than that.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc.aio

log = logging.getLogger(__name__)
ClientInterceptor: TypeAlias = grpc.aio.ClientInterceptor  # what GuestClient(interceptors=...) takes
IDLE_ENV = "PADDOCK_IDLE_PAUSE_S"  # seconds with no call before pausing; "0": never pause
IDLE_S = 2.0
QMP_TIMEOUT_S = 10.0  # a pause or resume QEMU does not answer within this is given up
# Open all session long and only waiting: news from the guest, and the egress tunnel (whose
# connections only guest commands open, each under an Exec call that keeps the guest awake).
WAITING_STREAMS = ("/paddock.guest.v1.GuestAgent/Events", "/paddock.guest.v1.GuestAgent/Egress")


def idle_seconds() -> float:
    """How long a sandbox waits before it is paused (0: never), from PADDOCK_IDLE_PAUSE_S."""
    try:
        return max(0.0, float(os.environ.get(IDLE_ENV, IDLE_S)))
    except ValueError:
        return IDLE_S


class IdleGate:
    """The gate's state; ``interceptors()`` are what the channel takes (grpc.aio files each
    interceptor under the first kind of call it implements, so one object per kind)."""

    def __init__(
        self,
        pause: Callable[[], Awaitable[None]],
        resume: Callable[[], Awaitable[None]],
        idle_s: float | None = None,
    ) -> None:
        self._pause = pause
        self._resume = resume
        self.idle_s = idle_seconds() if idle_s is None else idle_s
        self._busy = 0
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._pausing: asyncio.Task[None] | None = None
        self._closed = False
        self.pauses = 0  # how often it paused the guest (for tests and benchmarks)

    async def _enter(self, method: str) -> None:
        if method not in WAITING_STREAMS:
            self._busy += 1  # before waiting: a pause not yet made sees the call and stands down
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        async with self._lock:
            try:
                async with asyncio.timeout(QMP_TIMEOUT_S):
                    await self._resume()
            except Exception as exc:  # noqa: BLE001 - the call itself then fails and says why
                log.debug("idle gate: could not resume: %s", exc)

    def _leave(self, method: str) -> None:
        if method in WAITING_STREAMS:
            return
        self._busy -= 1
        if self._busy == 0 and self.idle_s > 0 and not self._closed:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_later(self.idle_s, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if not self._closed and self._busy == 0 and (self._pausing is None or self._pausing.done()):
            self._pausing = asyncio.ensure_future(self._pause_now())

    async def _pause_now(self) -> None:
        async with self._lock:
            if self._busy or self._closed:
                return
            try:
                async with asyncio.timeout(QMP_TIMEOUT_S):
                    await self._pause()
                self.pauses += 1
            except Exception as exc:  # noqa: BLE001 - a VM stopping or failed: nothing to pause
                log.debug("idle gate: could not pause: %s", exc)

    async def _call(self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else str(details.method)
        await self._enter(method)
        try:
            call = await continuation(details, request)
        except BaseException:
            self._leave(method)
            raise
        call.add_done_callback(lambda _: self._leave(method))
        return call

    def interceptors(self) -> tuple[ClientInterceptor, ...]:
        return (_UnaryUnary(self), _UnaryStream(self), _StreamUnary(self), _StreamStream(self))

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Pause no more (the sandbox is closing), before its VM stops: the timer is cancelled and
        a pause under way is cancelled and waited for, so none reaches a VM being stopped and
        none holds the gate. Idempotent; cancelling the caller does not leave the pause running."""
        self._closed = True
        self.idle_s = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pausing, self._pausing = self._pausing, None
        if pausing is not None and not pausing.done():
            pausing.cancel()
            await asyncio.wait({pausing})


class _Gated:
    """An interceptor of one ``IdleGate`` (``GuestClient`` closes its gate first)."""

    def __init__(self, gate: IdleGate) -> None:
        self.gate = gate


# grpc ships no type hints: its interceptor bases are Any to mypy.
class _UnaryUnary(_Gated, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await self.gate._call(continuation, client_call_details, request)


class _UnaryStream(_Gated, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await self.gate._call(continuation, client_call_details, request)


class _StreamUnary(_Gated, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await self.gate._call(continuation, client_call_details, request_iterator)


class _StreamStream(_Gated, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await self.gate._call(continuation, client_call_details, request_iterator)
