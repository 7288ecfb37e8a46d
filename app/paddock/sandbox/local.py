"""The sandbox on this computer: taken from the warm pool, woken from the saved one (the
snapshot), or booted cold. The snapshot and the pool are ``paddock.sandbox.warm``; the race
that turns a VM failure into ``SandboxFailed`` is ``paddock.sandbox.failure``."""

from __future__ import annotations

import asyncio
import time

from paddock.core.errors import PaddockError
from paddock.core.paths import profile_dir
from paddock.guest import GuestClient
from paddock.policy import FolderDecision
from paddock.sandbox.failure import BOOT_TIMEOUT_S, Progress, SandboxFailed, unless_failed
from paddock.sandbox.placement import BootTimings, Here
from paddock.sandbox.request import BootRequest
from paddock.sandbox.warm import WarmPool, Woken, paused_when_idle, snapshot_path, snapshots_enabled, wake
from paddock.vm import (
    AccelChoice,
    GuestImage,
    HostTools,
    Launcher,
    ReadWatcher,
    Share,
    VirtualMachine,
    VMConfig,
    share_handle_limit,
)


async def boot_here(
    request: BootRequest, decision: FolderDecision, say: Progress, t0: float, *, reads: ReadWatcher | None = None
) -> tuple[Here, GuestClient, BootTimings]:
    """The sandbox on this computer: the pool's woken one, else woken from the saved one where
    possible, else booted. ``reads``: told of every file the guest opens to read in the folder
    (the sensitive-read watch, through the change guard)."""
    assert decision.folder is not None
    try:
        launcher = await Launcher.find(request.image)
    except PaddockError as exc:
        raise SandboxFailed(exc.message, hint=exc.hint) from exc
    image, tools, accel, memory_mib = launcher.image, launcher.tools, launcher.accel, request.memory_mib
    shares = (
        Share("workspace", decision.folder, read_only=decision.read_only, keeper=request.keeper, reads=reads),
        Share("profile", (request.profile or profile_dir()).resolve(), read_only=True),
    )
    woken, pooled = None, False
    if snapshots_enabled() and not request.guest_root:
        woken, pooled = await _woken(request.warm, image, tools, accel, memory_mib=memory_mib, say=say)
    if woken is not None:
        try:
            await woken.claim(shares)
        except (PaddockError, OSError) as exc:
            say(f"Starting the sandbox afresh (the woken one could not be used: {exc})")
            woken = None
    if woken is not None:
        vm, guest = woken.vm, woken.guest
        started = time.monotonic() - t0
    else:
        config = launcher.config(shares, memory_mib=memory_mib, guest_root=request.guest_root)
        vm, guest, started, cold_stages = await _cold_boot(launcher, config, say, t0)
    stages = tuple(woken.stages.items()) if woken is not None else cold_stages
    return Here(vm), guest, BootTimings(accel, started, time.monotonic() - t0, woken is not None, pooled, stages)


async def _woken(
    pool: WarmPool | None, image: GuestImage, tools: HostTools, accel: AccelChoice, *, memory_mib: int, say: Progress
) -> tuple[Woken | None, bool]:
    """The pool's woken sandbox, else one woken now from the saved sandbox (when there is one)."""
    if pool is not None:
        say("Handing the woken sandbox your folder")
        woken = await pool.take(image, memory_mib)
        if woken is not None:
            return woken, True
    snapshot = snapshot_path(image, accel.accel, memory_mib)
    if not snapshot.exists():
        return None, False
    say(f"Waking the sandbox ({accel.accel.label})")
    try:
        return await wake(image, memory_mib=memory_mib, tools=tools, accel=accel, snapshot=snapshot), False
    except (PaddockError, OSError) as exc:
        say(f"Starting the sandbox afresh (the saved one could not be used: {exc})")
        snapshot.unlink(missing_ok=True)  # made again by the next ensure_snapshot
        return None, False


async def _cold_boot(
    launcher: Launcher, config: VMConfig, say: Progress, t0: float
) -> tuple[VirtualMachine, GuestClient, float, tuple[tuple[str, float], ...]]:
    """Start the VM, wait for its agent, claim it; also the boot's stages (``_stages``)."""
    say(f"Starting the sandbox ({config.accel.label})")
    try:
        vm = await launcher.start(config)
    except PaddockError as exc:
        raise SandboxFailed(f"The sandbox could not start: {exc.message}", hint=exc.hint) from exc
    started = time.monotonic() - t0
    say("Waiting for the sandbox to be ready")
    guest = GuestClient(vm.agent_socket, interceptors=paused_when_idle(vm))
    try:
        await unless_failed(vm, guest.wait_ready(BOOT_TIMEOUT_S))
        answered = time.monotonic()
        await unless_failed(vm, guest.claim(share_handles=share_handle_limit()))
        vm.mark_ready()
    except BaseException as exc:
        tail = vm.console_tail(800)
        await guest.close()
        await vm.stop()
        if isinstance(exc, (SandboxFailed, asyncio.CancelledError, KeyboardInterrupt)):
            raise
        detail = exc.message if isinstance(exc, PaddockError) else str(exc)
        raise SandboxFailed(
            f"The sandbox did not start: {detail}",
            hint=f"Last lines from the sandbox console:\n{tail}" if tail else None,
        ) from exc
    marks = [*vm.start_marks, ("agent answers", answered), ("claimed", time.monotonic())]
    return vm, guest, started, _stages(t0, marks)


def _stages(t0: float, marks: list[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    """A cold boot's stages, in seconds: from each mark to the next, from ``t0`` (the boot asked
    for) to the VM's start (policy, image, accelerator: ``before the vm``), to the agent's answer."""
    out, last = [], t0
    for what, when in marks:
        out.append(("before the vm" if what == "start" else what, when - last))
        last = when
    return tuple(out)
