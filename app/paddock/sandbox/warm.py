"""The saved sandbox, and waking it ahead of the folder.

``ensure_snapshot`` saves an idle, unclaimed guest once per image. ``wake`` restores it to a
``Woken`` sandbox: its agent answers, nobody has claimed it and it sees no folder. ``claim``
then attaches the folder's shares and claims the guest with a fresh key, the host's clock and
fresh randomness, exactly once. A ``WarmPool`` holds at most one woken sandbox ahead of time
(while the window waits for a folder), hands it out once and never takes it back. While it waits
there it is paused (its vCPU stopped: a waiting sandbox costs the host no CPU); ``claim`` lets it
run on first, and the Claim sets the guest's clock, which stood still while it was paused::

    pool = WarmPool(); pool.fill()            woken in the background, paused, unclaimed, no folder
    woken = await pool.take(image, memory)    handed out: the pool forgets it
    await woken.claim(shares)                 shares attached, fresh key, clock, randomness
    pool.fill()                               a new one for the next folder (after use)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from paddock.core.errors import PaddockError
from paddock.core.paths import cache_dir
from paddock.guest import GuestClient, IdleGate
from paddock.guest.idle import ClientInterceptor, idle_seconds
from paddock.sandbox.failure import BOOT_TIMEOUT_S, RESTORE_TIMEOUT_S, Progress, SandboxFailed, unless_failed
from paddock.vm import (
    Accel,
    AccelChoice,
    GuestImage,
    HostTools,
    Share,
    VirtualMachine,
    VMConfig,
    VMState,
    choose_accel,
    find_image,
    qemu_fingerprint,
    share_handle_limit,
)

log = logging.getLogger(__name__)
SNAPSHOT_ENV = "PADDOCK_SNAPSHOTS"  # "0": always boot cold (tests of the cold path, debugging)


def snapshots_enabled() -> bool:
    return os.environ.get(SNAPSHOT_ENV, "1") != "0"


def snapshot_path(image: GuestImage, accel: Accel, memory_mib: int) -> Path:
    """One saved, idle, unclaimed guest per image as built, accelerator, memory size and QEMU (a
    state saved by another QEMU version or machine type does not load: after an upgrade of the
    system, the next start saves a new one instead of failing to wake every time). The image is
    named by its files' digests too, not only its inputs' hash: a rebuild from the same inputs is
    a different squashfs, and a guest woken over another root than the one it was saved with
    reads garbage (I/O errors on every command)."""
    name = f"{image.hash}-{_built(image)}-{accel.value}-{memory_mib}m-{qemu_fingerprint()}.state"
    return cache_dir() / "snapshots" / name


def _built(image: GuestImage) -> str:
    """A short digest of the image's files as built (the manifest's sha256 of each) and of the
    optional layers attached over its root (a guest saved without the renderer, or with another
    one, must not wake over a different set of disks)."""
    files = "".join(f"{name}={digest};" for name, digest in sorted(image.sha256.items()))
    files += "".join(f"layer {layer.name}={layer.sha256};" for layer in image.layers)
    return hashlib.sha256(files.encode()).hexdigest()[:12]


async def ensure_snapshot(
    image: GuestImage | None = None, *, memory_mib: int = 1024, on_progress: Progress | None = None
) -> Path:
    """Make the saved sandbox that later sessions wake from, once per image (about as long as a
    cold boot). It holds no key, token or share: those are given after each restore."""
    image = image or find_image()
    tools = HostTools.find()
    accel = await choose_accel(image, tools)
    path = snapshot_path(image, accel.accel, memory_mib)
    if path.exists():
        return path
    if on_progress:
        on_progress("Preparing a sandbox to start quickly next time")
    vm = VirtualMachine(VMConfig(image=image, accel=accel.accel, tools=tools, memory_mib=memory_mib, hotplug=True))
    try:
        await vm.start()
        guest = GuestClient(vm.agent_socket)
        try:
            await unless_failed(vm, guest.wait_ready(BOOT_TIMEOUT_S))
        finally:
            await guest.close()
        await vm.save_snapshot(path)
    except PaddockError as exc:
        raise SandboxFailed(f"The quick-start sandbox could not be prepared: {exc.message}", hint=exc.hint) from exc
    finally:
        await vm.stop()
    return path


@dataclass
class Woken:
    """A sandbox woken from the saved state, not yet claimed and seeing no folder."""

    vm: VirtualMachine
    guest: GuestClient
    accel: AccelChoice
    image: GuestImage
    memory_mib: int
    stages: dict[str, float] = field(default_factory=dict)  # seconds: "qemu_restore", "agent_answers", ...
    _claimed: bool = False

    @property
    def alive(self) -> bool:
        return self.vm.state is VMState.BOOTING and not self._claimed

    async def claim(self, shares: tuple[Share, ...]) -> None:
        """Attach ``shares`` and claim the guest (fresh key, clock, randomness, the mounts). Once
        only; any failure stops the VM and raises."""
        if self._claimed:
            raise SandboxFailed("This sandbox was handed out already; it is never used twice.")
        self._claimed = True
        vm = self.vm
        try:
            tr, was_paused = time.monotonic(), vm.paused
            await unless_failed(vm, vm.resume())
            t0 = time.monotonic()
            if was_paused:
                self.stages["resumed"] = t0 - tr
            await unless_failed(vm, vm.attach_shares(shares))
            t1 = time.monotonic()
            tags = tuple(s.tag for s in shares)
            await unless_failed(vm, self.guest.claim(mount_tags=tags, share_handles=share_handle_limit()))
            self.stages.update(shares_attached=t1 - t0, claimed=time.monotonic() - t1)
            vm.mark_ready()
        except BaseException:
            await self.discard()
            raise

    async def pause(self) -> None:
        """Stop its CPU while it waits to be claimed (``claim`` resumes it)."""
        await unless_failed(self.vm, self.vm.pause())

    async def discard(self) -> None:
        await self.guest.close()
        await self.vm.stop()


async def wake(
    image: GuestImage | None = None,
    *,
    memory_mib: int = 1024,
    tools: HostTools | None = None,
    accel: AccelChoice | None = None,
    snapshot: Path | None = None,
) -> Woken:
    """Restore the saved sandbox (made first if missing) until its agent answers. Unclaimed."""
    image = image or find_image()
    tools = tools or HostTools.find()
    accel = accel or await choose_accel(image, tools)
    snapshot = snapshot or await ensure_snapshot(image, memory_mib=memory_mib)
    vm = VirtualMachine(VMConfig(image=image, accel=accel.accel, tools=tools, memory_mib=memory_mib, hotplug=True))
    t0 = time.monotonic()
    try:
        await vm.start(incoming=snapshot)
    except BaseException:
        await vm.stop()
        raise
    t1 = time.monotonic()
    guest = GuestClient(vm.agent_socket, interceptors=paused_when_idle(vm))
    try:
        await unless_failed(vm, guest.wait_ready(RESTORE_TIMEOUT_S))
    except BaseException:
        await guest.close()
        await vm.stop()
        raise
    stages = {"qemu_restore": t1 - t0, "agent_answers": time.monotonic() - t1}
    return Woken(vm, guest, accel, image, memory_mib, stages)


class WarmPool:
    """At most one woken, unclaimed sandbox, made ahead of the folder (while the window is open).

    ``take`` hands it out and forgets it: a sandbox handed out is never returned, so none is
    reused across folders or sessions. ``fill`` wakes the next one in the background (the
    owner calls it after use, when a session ends). Failing to wake costs only speed."""

    def __init__(self, image: GuestImage | None = None, memory_mib: int = 1024) -> None:
        self.image = image
        self.memory_mib = memory_mib
        self._waking: asyncio.Task[Woken] | None = None
        self._closed = False
        self.last_error: str | None = None  # why the last wake failed (it costs only speed)

    @property
    def holding(self) -> bool:
        """A sandbox is woken or waking here."""
        return self._waking is not None

    async def wait(self) -> bool:
        """Wait for a wake under way; whether a woken sandbox is held now (False once the pool
        was closed meanwhile)."""
        waking = self._waking
        if waking is None:
            return False
        await asyncio.wait({waking})  # its end, whatever it is: cancelling this waiter leaves it be
        if waking.cancelled():
            return False
        exc = waking.exception()
        if isinstance(exc, (PaddockError, OSError)):
            self.last_error = str(exc)
            return False
        if exc is not None:
            raise exc
        return waking.result().alive

    @property
    def pids(self) -> dict[str, int]:
        """Host processes of the held sandbox (for measuring what it holds while idle)."""
        waking = self._waking
        if waking is None or not waking.done() or waking.cancelled() or waking.exception() is not None:
            return {}
        return waking.result().vm.pids

    def fill(self) -> None:
        """Wake one in the background unless one is held (or snapshots are off)."""
        if self._closed or self._waking is not None or not snapshots_enabled():
            return
        self._waking = asyncio.ensure_future(_wake_paused(self.image, self.memory_mib))
        self._waking.add_done_callback(_quiet)

    async def take(self, image: GuestImage, memory_mib: int) -> Woken | None:
        """The held sandbox (waiting for a wake under way), or None when there is none that fits."""
        waking, self._waking = self._waking, None
        if waking is None:
            return None
        try:
            woken = await waking
        except (PaddockError, OSError) as exc:
            log.debug("warm pool: the woken sandbox could not be made: %s", exc)
            self.last_error = str(exc)
            return None
        same = (
            woken.image.hash == image.hash and woken.image.sha256 == image.sha256 and woken.image.layers == image.layers
        )
        if not woken.alive or not same or woken.memory_mib != memory_mib:
            await woken.discard()
            return None
        return woken

    async def close(self) -> None:
        """Stop the held sandbox, or the wake under way (it stops where it is and leaves nothing
        running: ``VirtualMachine.start`` and ``wake`` clean up when cancelled); the pool fills
        no more. Cancelling the caller does not stop the wake's own clean-up."""
        self._closed = True
        waking, self._waking = self._waking, None
        if waking is None:
            return
        waking.cancel()  # nothing when it has ended already
        await asyncio.wait({waking})
        if not waking.cancelled() and waking.exception() is None:
            await waking.result().discard()


def paused_when_idle(vm: VirtualMachine) -> tuple[ClientInterceptor, ...]:
    """For a sandbox's channel to its agent: pause the VM once no call has been in flight for a
    moment (between turns), resume it before the next call (``paddock.guest.idle``). None when
    PADDOCK_IDLE_PAUSE_S is 0."""
    return IdleGate(vm.pause, vm.resume).interceptors() if idle_seconds() > 0 else ()


async def _wake_paused(image: GuestImage | None, memory_mib: int) -> Woken:
    """Wake one, and pause it once its agent answers: it waits for its folder costing no CPU."""
    woken = await wake(image, memory_mib=memory_mib)
    try:
        await woken.pause()
    except BaseException:
        await woken.discard()
        raise
    return woken


def wake_ahead(image: GuestImage | None = None, memory_mib: int = 1024) -> WarmPool:
    """A pool already waking one sandbox, for a headless path that knows it will need a sandbox
    soon (``paddock run`` before its first model call, a scheduled run ahead of its time,
    ``paddock mcp`` before its client's first tool call): pass it as ``warm=`` to
    ``Sandbox.boot`` and ``close()`` it when done. Costs nothing if the sandbox is never taken
    (paused while it waits) beyond its memory; failing to wake costs only speed."""
    pool = WarmPool(image, memory_mib)
    pool.fill()
    return pool


def _quiet(task: asyncio.Task[Woken]) -> None:
    """A background wake that failed is logged, never raised into the event loop's handler."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("warm pool: wake failed: %s", task.exception())
