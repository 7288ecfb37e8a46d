"""Closing a sandbox's channel while its pause-when-idle gate is about to pause, or is pausing,
the VM (#31: a close hung once under load, with the gate's timer firing at a VM being stopped).

A real gRPC channel (``GuestClient``) to a real gRPC server on a unix socket in the test's folder,
answering ``Health`` as the guest agent does; the VM's pause and resume are fakes (no VM), one of
which blocks as a QMP ``stop`` that QEMU does not answer: that is what makes the race happen every
time instead of once under load."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc.aio
import pytest

from paddock.guest import GuestClient, IdleGate
from paddock.guest.v1 import agent_pb2 as pb
from paddock.guest.v1 import agent_pb2_grpc as pb_grpc
from paddock.vm import VMState
from paddock.vm.migration import Migration

IDLE_S = 0.02  # the gate's idle time: tiny, so its timer fires at once after a call
WAIT_S = 5.0  # nothing here takes more than a moment: a step that does not end in this has hung


class _Agent(pb_grpc.GuestAgentServicer):  # type: ignore[misc]
    async def Health(self, request: Any, context: Any) -> Any:
        return pb.HealthResponse(ready=True)


@pytest.fixture
async def socket(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "agent.sock"
    server = grpc.aio.server()
    pb_grpc.add_GuestAgentServicer_to_server(_Agent(), server)
    server.add_insecure_port(f"unix:{path}")
    await server.start()
    yield path
    await server.stop(grace=None)


class _VM:
    """The VM's pause and resume as the gate sees them; ``stuck``: a pause never answered."""

    def __init__(self, *, stuck: bool = False) -> None:
        self.stuck = stuck
        self.pauses = 0
        self.resumes = 0
        self.pausing = asyncio.Event()
        self.pause_ended = asyncio.Event()

    async def pause(self) -> None:
        self.pauses += 1
        self.pausing.set()
        try:
            if self.stuck:
                await asyncio.Event().wait()
        finally:
            self.pause_ended.set()

    async def resume(self) -> None:
        self.resumes += 1


async def test_no_pause_reaches_a_vm_after_its_channel_closed(socket: Path) -> None:
    vm = _VM()
    gate = IdleGate(vm.pause, vm.resume, idle_s=IDLE_S)
    guest = GuestClient(socket, interceptors=gate.interceptors())
    assert await guest.health()  # the call ends: the gate's timer is set to pause in IDLE_S
    await asyncio.wait_for(guest.close(), WAIT_S)
    # Ten times the idle time: the timer would have fired (it did on the old code).
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(vm.pausing.wait(), 10 * IDLE_S)
    assert vm.pauses == 0 and gate.closed


async def test_closing_while_a_pause_is_under_way_ends_the_pause_and_the_close(socket: Path) -> None:
    vm = _VM(stuck=True)
    gate = IdleGate(vm.pause, vm.resume, idle_s=IDLE_S)
    guest = GuestClient(socket, interceptors=gate.interceptors())
    assert await guest.health()
    await asyncio.wait_for(vm.pausing.wait(), WAIT_S)  # the pause is on its way and never answered
    await asyncio.wait_for(guest.close(), WAIT_S)
    assert vm.pause_ended.is_set(), "a pause was left running after the close"


async def test_a_call_after_the_gate_stopped_pausing_is_not_held_by_a_stuck_pause(socket: Path) -> None:
    """What ``Sandbox.close`` does first (then it settles the guest's events: one more call)."""
    vm = _VM(stuck=True)
    gate = IdleGate(vm.pause, vm.resume, idle_s=IDLE_S)
    guest = GuestClient(socket, interceptors=gate.interceptors())
    try:
        assert await guest.health()
        await asyncio.wait_for(vm.pausing.wait(), WAIT_S)
        await asyncio.wait_for(guest.stop_pausing(), WAIT_S)
        assert vm.pause_ended.is_set()
        assert await asyncio.wait_for(guest.health(), WAIT_S)  # goes through, resumed if it was paused
        with pytest.raises(TimeoutError):  # and it pauses no more
            await asyncio.wait_for(asyncio.Event().wait(), 10 * IDLE_S)
        assert vm.pauses == 1
    finally:
        await guest.close()


class _Machine(Migration):
    """The pause and resume of ``VirtualMachine`` over a QMP whose ``stop`` is not answered."""

    def __init__(self) -> None:
        self._paused = False
        self._pause_lock = asyncio.Lock()
        self.sent: list[str] = []
        self.stopping = asyncio.Event()

    @property
    def state(self) -> VMState:
        return VMState.READY

    async def _execute(self, command: str, arguments: dict[str, Any] | None = None) -> object:
        self.sent.append(command)
        if command == "stop":
            self.stopping.set()
            await asyncio.Event().wait()
        return {}


async def test_a_pause_cancelled_on_its_way_is_resumed_all_the_same() -> None:
    """QEMU may have stopped the guest before a cancelled ``stop`` answered: ``resume`` must send
    ``cont`` then, or the next call waits on a guest that never runs again."""
    vm = _Machine()
    pausing = asyncio.ensure_future(vm.pause())
    await asyncio.wait_for(vm.stopping.wait(), WAIT_S)
    pausing.cancel()
    await asyncio.wait({pausing})
    await vm.resume()
    assert vm.sent == ["stop", "cont"] and not vm.paused
