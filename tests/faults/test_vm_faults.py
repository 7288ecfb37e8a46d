"""Faults: a VM part that dies mid-command is reported clearly and leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from paddock.guest import ExecStarted
from paddock.sandbox import SandboxFailed
from paddock.vm import GuestImage, VMState
from tests.conftest import Booted, live_processes

pytestmark = pytest.mark.vm


def _kill_mid_command(b: Booted, role: str) -> str:
    """Start a long command, SIGKILL one host process of the VM, return the error."""

    async def scenario() -> str:
        async def consume() -> None:
            async for ev in b.sandbox.exec(["sh", "-c", "echo before > kept.txt; sync; sleep 300"]):
                if isinstance(ev, ExecStarted):
                    started.set()

        started = asyncio.Event()
        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(started.wait(), 60)
        kept = b.workspace / "kept.txt"
        for _ in range(100):  # wait until the write reached the host, then break things
            if kept.exists() and kept.read_text() == "before\n":
                break
            await asyncio.sleep(0.1)
        os.kill(b.sandbox.vm.pids[role], signal.SIGKILL)
        try:
            await asyncio.wait_for(task, 30)
        except SandboxFailed as exc:
            return str(exc)
        raise AssertionError("the command did not fail when the VM died")

    return b.engine.run(scenario(), timeout=120)


@pytest.mark.parametrize(("role", "words"), [("qemu", "QEMU"), ("virtiofsd-workspace", "folder-sharing")])
def test_killing_a_vm_process_mid_command(fresh_sandbox: Booted, role: str, words: str) -> None:
    b = fresh_sandbox
    pids = dict(b.sandbox.vm.pids)
    message = _kill_mid_command(b, role)
    assert words in message and "killed by signal 9" in message
    assert b.sandbox.vm.state is VMState.FAILED
    # What was written before the fault is still there.
    assert (b.workspace / "kept.txt").read_text() == "before\n"
    # Nothing of this VM is left running on the host.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
        time.sleep(0.1)
    assert not [r for r, p in pids.items() if _alive(p)], "a VM process survived the failure"
    # The failed VM's own logs are kept for a support request (once its teardown is done).
    while time.monotonic() < deadline and b.sandbox.vm.kept_logs is None:
        time.sleep(0.1)
    kept = b.sandbox.vm.kept_logs
    assert kept is not None and {"qemu.log", "console.log", "virtiofsd-workspace.log"} <= {
        p.name for p in kept.iterdir()
    }


def test_a_restart_after_a_failure_works(fresh_sandbox: Booted, engine: object) -> None:
    from paddock.sandbox import Sandbox

    b = fresh_sandbox
    _kill_mid_command(b, "qemu")
    b.engine.run(b.sandbox.close())
    again = b.engine.run(Sandbox.boot(b.workspace, profile=b.profile), timeout=180)
    try:
        out, _, result = b.engine.run(again.guest.run(["cat", "kept.txt"]))
        assert out == b"before\n" and result.exit_code == 0
    finally:
        b.engine.run(again.close())
    assert not live_processes(), "processes left after close"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_corrupted_image_is_refused_before_boot(tmp_path: Path, guest_image: GuestImage) -> None:
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "image"
    shutil.copytree(guest_image.root, copy)
    rootfs = copy / "rootfs.squashfs"
    with open(rootfs, "r+b") as fh:  # flip one byte in the middle of the root file system
        fh.seek(rootfs.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PADDOCK_GUEST_IMAGE": str(copy)}
    proc = subprocess.run([sys.executable, "-m", "paddock.cli", "sandbox", "exec", "--folder", str(work), "--", "true"],
                          capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 125
    assert "damaged" in proc.stderr and "build_vm.sh --force" in proc.stderr and "Traceback" not in proc.stderr
    assert not live_processes()


AGENT_PID = "/opt/paddock/bin/busybox pidof paddock-agent"  # the native agent (guest_image/agent/)


@pytest.mark.guest_root  # only the guest's root may signal the agent
@pytest.mark.parametrize(("signal_name", "words"), [("KILL", "helper inside the VM"), ("STOP", "did not answer")])
def test_the_guest_agent_dying_or_hanging_mid_command(
    fresh_sandbox: Booted, monkeypatch: pytest.MonkeyPatch, signal_name: str, words: str
) -> None:
    import paddock.sandbox.sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "WATCHDOG_TIMEOUT_S", 6.0)
    b = fresh_sandbox
    pids = dict(b.sandbox.vm.pids)

    async def scenario() -> str:
        async def consume(argv: list[str]) -> None:
            async for ev in b.sandbox.exec(argv):
                if isinstance(ev, ExecStarted):
                    started.set()

        started = asyncio.Event()
        # The long command writes as the guest's user (its root may not create files in the folder).
        as_user = ["/usr/bin/setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "--"]
        long = asyncio.ensure_future(consume([*as_user, "sh", "-c", "echo before > kept.txt; sleep 300"]))
        await asyncio.wait_for(started.wait(), 60)
        killer = asyncio.ensure_future(consume(["sh", "-c", f"kill -{signal_name} $({AGENT_PID})"]))
        try:
            await asyncio.wait_for(long, 90)
        except SandboxFailed as exc:
            killer.cancel()
            return str(exc)
        raise AssertionError("the long command did not fail when its agent went away")

    message = b.engine.run(scenario(), timeout=180)
    assert words in message, message
    assert b.sandbox.vm.state is VMState.FAILED
    assert (b.workspace / "kept.txt").read_text() == "before\n"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
        time.sleep(0.1)
    assert not [r for r, p in pids.items() if _alive(p)], "a VM process survived the failure"
