"""Where a sandbox runs: here (``Here``: the folder shared into a VM on this computer) or on a
sandbox host (``OnHost``: a copy of the folder sent there and brought back around each command).
``Sandbox`` asks its placement, never which kind of machine it holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from paddock.remote import RemoteMachine, SyncReport
from paddock.vm import AccelChoice, Guard, VirtualMachine, VMState


class Machine(Protocol):
    """What the sandbox needs of its VM, wherever it runs: its state, its failure, stopping it."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> VMState: ...
    @property
    def failure(self) -> str | None: ...
    @property
    def pids(self) -> dict[str, int]: ...  # its processes on this computer (none for a sandbox host's)
    @property
    def paused(self) -> bool: ...  # paused while it waits (``paused_when_idle``; never a sandbox host's)
    async def failed(self) -> str: ...
    async def fail(self, reason: str) -> None: ...
    async def stop(self) -> None: ...


@dataclass(frozen=True)
class BootTimings:
    accel: AccelChoice
    vm_started_s: float
    ready_s: float
    restored: bool = False  # woken from the saved sandbox rather than booted
    pooled: bool = False  # woken ahead of the folder (a ``WarmPool``'s) rather than after it
    stages: tuple[tuple[str, float], ...] = ()  # a wake's stages, in seconds, in order

    @property
    def how(self) -> str:
        """How the sandbox came to be, in the session's log: woken ahead, woken or cold."""
        return "woken ahead" if self.pooled else "woken" if self.restored else "cold"


class Placement(Protocol):
    """Where the sandbox runs, and what that means for the folder."""

    @property
    def machine(self) -> Machine: ...
    @property
    def host_name(self) -> str | None: ...  # the sandbox host (None: this computer)
    def change_guard(self) -> tuple[Guard | None, str]: ...  # the folder's change guard, else why none
    async def send(self) -> SyncReport | None: ...  # the person's changes to the sandbox's copy (None: no copy)
    async def bring_back(self) -> SyncReport | None: ...  # the copy's changes back to the folder (None: no copy)


class Here:
    """On this computer: the folder is shared into the VM directly (nothing to send or bring back),
    under the change guard."""

    def __init__(self, vm: VirtualMachine) -> None:
        self.vm = vm

    @property
    def machine(self) -> VirtualMachine:
        return self.vm

    host_name = None

    def change_guard(self) -> tuple[Guard | None, str]:
        guard = self.vm.guards.get("workspace")
        why = self.vm.guard_failures.get("workspace", "")
        return (guard, "") if guard is not None and guard.active else (None, why)

    async def send(self) -> SyncReport | None:
        return None

    async def bring_back(self) -> SyncReport | None:
        return None


class OnHost:
    """On a sandbox host (``paddock.remote``): the VM sees a copy of the folder there, sent before
    each command and brought back after; the folder changes here only when the copy comes back,
    so there is no change guard to ask."""

    def __init__(self, machine: RemoteMachine) -> None:
        self.remote = machine

    @property
    def machine(self) -> RemoteMachine:
        return self.remote

    @property
    def host_name(self) -> str | None:
        return self.remote.host.name

    def change_guard(self) -> tuple[Guard | None, str]:
        return None, "the sandbox runs on a sandbox host; files come back through the folder sync"

    async def send(self) -> SyncReport | None:
        return await self.remote.push()

    async def bring_back(self) -> SyncReport | None:
        return await self.remote.pull()
