"""A start cancelled at any point leaves nothing behind.

Closing the window while its woken sandbox is still being started cancels the wake (the warm
pool's ``close``); Stop, a closed session or a timeout cancels a cold boot the same way. Whatever
point the start had reached (QEMU just spawned, its control channel being connected, the saved
state loading, the guest's agent being waited for, the folder being handed over), afterwards no
QEMU, virtiofsd or bubblewrap of that VM runs, no task it started is pending, nothing was reported
to the event loop's exception handler (a task destroyed while pending, an exception never
retrieved), and its run folder is kept or removed as ``PADDOCK_KEEP_RUN_DIR`` says.

Real VMs, real QMP, real gRPC. The only thing added is a hook that says when a start has reached
the point under test (a wrapper around the function that starts that step; it changes nothing).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from qemu.qmp import QMPClient

from paddock.core.engine import Engine
from paddock.guest import GuestClient
from paddock.sandbox import SNAPSHOT_ENV, Sandbox, WarmPool
from paddock.vm import GuestImage, VirtualMachine
from tests.conftest import _make_dirs, live_processes

pytestmark = pytest.mark.vm


@dataclass
class Reached:
    """Set when the start reaches the point under test; the run folders of the VMs it started."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    run_dirs: list[Path] = field(default_factory=list)


def _after(reached: Reached, fn: Callable[..., Awaitable[Any]], when: Callable[..., bool]) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await fn(*args, **kwargs)
        if when(*args, **kwargs):
            reached.event.set()
        return result

    return wrapper


def _before(reached: Reached, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        reached.event.set()
        return await fn(*args, **kwargs)

    return wrapper


# The point of a start the cancel lands at: what is wrapped, and whether the hook fires before it
# starts or once it has returned.
POINTS: dict[str, tuple[Any, str, str]] = {
    "qemu spawned": (VirtualMachine, "_spawn", "after qemu"),
    "a folder helper spawned": (VirtualMachine, "_spawn", "after virtiofsd"),
    "QMP connected, greeting": (QMPClient, "_do_accept", "after"),
    "saved state loading": (VirtualMachine, "_load_snapshot", "before"),
    "agent waited for": (GuestClient, "wait_ready", "before"),
    "folder handed over": (VirtualMachine, "attach_shares", "before"),
}


def _hook(monkeypatch: pytest.MonkeyPatch, point: str) -> Reached:
    reached = Reached()
    owner, name, how = POINTS[point]
    original_spawn = VirtualMachine._spawn

    async def spawn(self: VirtualMachine, proc_name: str, *args: Any, **kwargs: Any) -> Any:
        assert self.run_dir is not None
        if self.run_dir not in reached.run_dirs:
            reached.run_dirs.append(self.run_dir)
        return await original_spawn(self, proc_name, *args, **kwargs)

    monkeypatch.setattr(VirtualMachine, "_spawn", spawn)
    fn = getattr(owner, name)
    if how == "before":
        monkeypatch.setattr(owner, name, _before(reached, fn))
    elif how == "after":
        monkeypatch.setattr(owner, name, _after(reached, fn, lambda *a, **k: True))
    else:
        role = how.split()[1]
        monkeypatch.setattr(
            owner, name, _after(reached, fn, lambda _self, proc_name, *a, **k: proc_name.startswith(role))
        )
    return reached


@dataclass
class Leftovers:
    pending: list[str]
    reported: list[str]
    cancelled: bool


async def _cancel_at(
    reached: Reached, start: Callable[[], Awaitable[Any]], cancel: Callable[[asyncio.Task[Any]], Awaitable[None]]
) -> Leftovers:
    """Run ``start`` until it reaches the point, cancel it with ``cancel``, and say what is left."""
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    old_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(str(context.get("message"))))
    before = set(asyncio.all_tasks())
    try:
        task: asyncio.Task[Any] = asyncio.ensure_future(start())
        waiting = asyncio.ensure_future(reached.event.wait())
        await asyncio.wait({task, waiting}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        assert reached.event.is_set(), f"the start never reached the point: {task!r}"
        assert not task.done(), f"the start had already ended: {task!r}"
        await cancel(task)
        await asyncio.wait({task}, timeout=60)
        assert task.done(), "the cancelled start did not end within 60 s"
        cancelled = task.cancelled()
        for _ in range(20):  # whatever it left running gets a chance to finish on its own
            await asyncio.sleep(0.05)
        pending = [repr(t) for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
        del task
        gc.collect()  # a pending task nothing refers to any more is destroyed (and reported) here
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(old_handler)
    return Leftovers(pending, reported, cancelled)


def _check(left: Leftovers, reached: Reached) -> None:
    assert left.cancelled, "the start swallowed its cancellation"
    assert not left.pending, f"tasks left pending: {left.pending}"
    assert not left.reported, f"reported to the loop's exception handler: {left.reported}"
    assert reached.run_dirs, "no VM was started"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(live_processes(f"{d}/") for d in reached.run_dirs):
        time.sleep(0.1)
    for run_dir in reached.run_dirs:
        assert not live_processes(f"{run_dir}/"), f"left running: {live_processes(f'{run_dir}/')}"
        assert run_dir.exists() == bool(os.environ.get("PADDOCK_KEEP_RUN_DIR")), run_dir


async def _cancel_task(task: asyncio.Task[Any]) -> None:
    task.cancel()


@pytest.fixture(params=["kept", "removed"])
def run_dirs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The run folder of a stopped VM: kept (as the suite keeps it, for the logs) or removed."""
    if request.param == "removed":
        monkeypatch.delenv("PADDOCK_KEEP_RUN_DIR", raising=False)
    else:
        monkeypatch.setenv("PADDOCK_KEEP_RUN_DIR", "1")
    yield request.param


@pytest.mark.parametrize(
    "point", ["qemu spawned", "a folder helper spawned", "QMP connected, greeting", "agent waited for"]
)
def test_a_cold_boot_cancelled_leaves_nothing(
    engine: Engine, guest_image: GuestImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    monkeypatch.setenv(SNAPSHOT_ENV, "0")
    workspace, profile, _ = _make_dirs(tmp_path)
    reached = _hook(monkeypatch, point)
    left = engine.run(
        _cancel_at(reached, lambda: Sandbox.boot(workspace, image=guest_image, profile=profile), _cancel_task),
        timeout=240,
    )
    _check(left, reached)


@pytest.mark.parametrize(
    "point", ["qemu spawned", "QMP connected, greeting", "saved state loading", "agent waited for"]
)
def test_closing_the_window_mid_wake_leaves_nothing(
    engine: Engine, guest_image: GuestImage, monkeypatch: pytest.MonkeyPatch, run_dirs: str, point: str
) -> None:
    """The window's pool (``Desk.close`` → ``WarmPool.close``) closed while its sandbox wakes."""
    monkeypatch.setenv(SNAPSHOT_ENV, "1")
    reached = _hook(monkeypatch, point)
    pool = WarmPool(guest_image)

    async def fill() -> None:
        pool.fill()
        await pool.wait()

    async def close(_task: asyncio.Task[Any]) -> None:
        await pool.close()

    left = engine.run(_cancel_at(reached, fill, close), timeout=240)
    left.cancelled = True  # the pool's own task is the one cancelled; ``fill`` here only waits
    _check(left, reached)
    assert not pool.holding


def test_a_woken_sandbox_cancelled_while_its_folder_is_handed_over_leaves_nothing(
    engine: Engine, guest_image: GuestImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SNAPSHOT_ENV, "1")
    workspace, profile, _ = _make_dirs(tmp_path)
    reached = _hook(monkeypatch, "folder handed over")
    left = engine.run(
        _cancel_at(reached, lambda: Sandbox.boot(workspace, image=guest_image, profile=profile), _cancel_task),
        timeout=240,
    )
    _check(left, reached)
