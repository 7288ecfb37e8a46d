"""A sandbox that waits is paused, and the next call finds it running with the host's clock.

Between turns nothing runs in the guest, yet under emulation a waiting guest costs a few per
cent of a core. The agent's channel pauses the VM (QMP ``stop``) once no call has been in
flight for ``PADDOCK_IDLE_PAUSE_S`` and resumes it before the next call. These tests check,
on a real VM, that the waiting sandbox is really paused (QEMU says so, the watchdog does not
wake it), that a command running longer than that keeps it running, and that the command after
a pause answers and sees the host's time, not the time the guest stood still at.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from paddock.core.engine import Engine
from paddock.sandbox import Sandbox
from paddock.vm import GuestImage, VirtualMachine
from tests.conftest import _make_dirs

pytestmark = pytest.mark.vm


async def _status(vm: VirtualMachine) -> str:
    return str((await vm.query_status())["status"])


async def _until(vm: VirtualMachine, status: str, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await _status(vm) == status:
            return True
        await asyncio.sleep(0.2)
    return False


def test_a_waiting_session_is_paused_and_its_next_command_sees_the_hosts_clock(
    engine: Engine, guest_image: GuestImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PADDOCK_IDLE_PAUSE_S", "1")
    workspace, profile, _ = _make_dirs(tmp_path)

    async def scenario() -> dict[str, object]:
        async with Sandbox.open(workspace, image=guest_image, profile=profile) as sandbox:
            vm = sandbox.vm
            assert isinstance(vm, VirtualMachine)
            seen: dict[str, object] = {}
            # A command longer than the idle delay keeps the guest running all along.
            running = asyncio.ensure_future(sandbox.guest.run(["sleep", "3"]))
            await asyncio.sleep(2.5)
            seen["during_command"] = await _status(vm)
            await running
            seen["paused_after"] = await _until(vm, "paused", 30)
            await asyncio.sleep(8)  # longer than the watchdog's interval: it must not wake it
            seen["still"] = await _status(vm)
            out, err, result = await sandbox.guest.run(["date", "+%s.%N"])
            assert result.exit_code == 0, err
            seen["skew"] = float(out) - time.time()
            seen["alive"] = sandbox.alive
            return seen

    seen = engine.run(scenario(), timeout=300)
    assert seen["during_command"] == "running", "the guest was paused while a command ran"
    assert seen["paused_after"], "a session with nothing to do was not paused"
    assert seen["still"] == "paused", "something woke the waiting sandbox"
    assert seen["alive"], "the paused sandbox was given up for dead"
    skew = seen["skew"]
    assert isinstance(skew, float) and abs(skew) < 2.5, f"after a pause the guest's clock is {skew:+.1f} s off"
