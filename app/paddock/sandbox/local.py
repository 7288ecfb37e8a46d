"""The sandbox on this computer: woken from the saved one (the snapshot) or booted cold, and the
guard that turns a VM failure into ``SandboxFailed`` with its reason."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from paddock.core.errors import PaddockError
from paddock.core.paths import cache_dir, profile_dir
from paddock.guest import GuestClient, GuestError, GuestUnavailable
from paddock.policy import FolderDecision
from paddock.sandbox.remote import Machine
from paddock.vm import (
    Accel,
    AccelChoice,
    GuestImage,
    HostTools,
    Share,
    VirtualMachine,
    VMConfig,
    choose_accel,
    find_image,
    share_handle_limit,
)

if TYPE_CHECKING:
    from paddock.sandbox.sandbox import BootOptions

BOOT_TIMEOUT_S = float(os.environ.get("PADDOCK_BOOT_TIMEOUT", "60"))
RESTORE_TIMEOUT_S = 20.0
SNAPSHOT_ENV = "PADDOCK_SNAPSHOTS"  # "0": always boot cold (tests of the cold path, debugging)
T = TypeVar("T")
Progress = Callable[[str], None]


class SandboxFailed(PaddockError):
    """The sandbox could not start, or stopped while in use."""


@dataclass(frozen=True)
class BootTimings:
    accel: AccelChoice
    vm_started_s: float
    ready_s: float
    restored: bool = False  # woken from the saved sandbox rather than booted


async def _boot_here(
    folder: Path, decision: FolderDecision, options: BootOptions, say: Progress, t0: float
) -> tuple[VirtualMachine, GuestClient, BootTimings]:
    """The sandbox on this computer: woken from the saved one where possible, else booted."""
    image, profile, memory_mib = options.get("image"), options.get("profile"), options.get("memory_mib", 1024)
    guest_root = options.get("guest_root", False)
    try:
        image = image or find_image()
        tools = HostTools.find()
    except PaddockError as exc:
        raise SandboxFailed(exc.message, hint=exc.hint) from exc
    accel = await choose_accel(image, tools)
    shares = (
        Share("workspace", folder, read_only=decision.read_only, keeper=options.get("keeper")),
        Share("profile", (profile or profile_dir()).resolve(), read_only=True),
    )
    snapshot = snapshot_path(image, accel.accel, memory_mib)
    restored: tuple[VirtualMachine, GuestClient] | None = None
    if snapshots_enabled() and not guest_root and snapshot.exists():
        say(f"Waking the sandbox ({accel.accel.label})")
        try:
            config = VMConfig(
                image=image, accel=accel.accel, shares=shares, tools=tools, memory_mib=memory_mib, hotplug=True
            )
            restored = await _restore(snapshot, config)
        except (PaddockError, OSError) as exc:
            say(f"Starting the sandbox afresh (the saved one could not be used: {exc})")
            snapshot.unlink(missing_ok=True)  # made again by the next ensure_snapshot
    if restored is not None:
        vm, guest = restored
        started = time.monotonic() - t0
    else:
        config = VMConfig(
            image=image, accel=accel.accel, shares=shares, tools=tools, memory_mib=memory_mib, guest_root=guest_root
        )
        vm, guest, started = await _cold_boot(config, say, t0)
    timings = BootTimings(accel, started, time.monotonic() - t0, restored=restored is not None)
    return vm, guest, timings


def snapshots_enabled() -> bool:
    return os.environ.get(SNAPSHOT_ENV, "1") != "0"


def snapshot_path(image: GuestImage, accel: Accel, memory_mib: int) -> Path:
    """One saved, idle, unclaimed guest per image, accelerator and memory size."""
    return cache_dir() / "snapshots" / f"{image.hash}-{accel.value}-{memory_mib}m.state"


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
            await _unless_failed(vm, guest.wait_ready(BOOT_TIMEOUT_S))
        finally:
            await guest.close()
        await vm.save_snapshot(path)
    except PaddockError as exc:
        raise SandboxFailed(f"The quick-start sandbox could not be prepared: {exc.message}", hint=exc.hint) from exc
    finally:
        await vm.stop()
    return path


async def _restore(snapshot: Path, config: VMConfig) -> tuple[VirtualMachine, GuestClient]:
    """Wake a saved guest, attach the shares, then claim it with a fresh key (and the clock,
    fresh randomness and the mounts). Any failure stops everything and raises."""
    vm = VirtualMachine(config)
    try:
        await vm.start(incoming=snapshot)
    except BaseException:
        await vm.stop()
        raise
    guest = GuestClient(vm.agent_socket)
    try:
        await _unless_failed(vm, guest.wait_ready(RESTORE_TIMEOUT_S))
        await _unless_failed(vm, vm.attach_shares())
        tags = tuple(s.tag for s in config.shares)
        await _unless_failed(vm, guest.claim(mount_tags=tags, share_handles=share_handle_limit()))
        vm.mark_ready()
    except BaseException:
        await guest.close()
        await vm.stop()
        raise
    return vm, guest


async def _cold_boot(config: VMConfig, say: Progress, t0: float) -> tuple[VirtualMachine, GuestClient, float]:
    say(f"Starting the sandbox ({config.accel.label})")
    vm = VirtualMachine(config)
    try:
        await vm.start()
    except PaddockError as exc:
        await vm.stop()
        raise SandboxFailed(f"The sandbox could not start: {exc.message}", hint=exc.hint) from exc
    started = time.monotonic() - t0
    say("Waiting for the sandbox to be ready")
    guest = GuestClient(vm.agent_socket)
    try:
        await _unless_failed(vm, guest.wait_ready(BOOT_TIMEOUT_S))
        await _unless_failed(vm, guest.claim(share_handles=share_handle_limit()))
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
    return vm, guest, started


async def _unless_failed(vm: Machine, aw: Awaitable[T]) -> T:
    """Await ``aw`` unless the VM fails first; then raise SandboxFailed with the reason."""
    work = asyncio.ensure_future(aw)
    failed = asyncio.ensure_future(vm.failed())
    try:
        done, _ = await asyncio.wait({work, failed}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        work.cancel()
        raise
    finally:
        failed.cancel()
    if work in done:
        try:
            return work.result()
        except GuestUnavailable as exc:
            raise SandboxFailed(await _reason(vm, exc)) from exc
        except GuestError as exc:
            if vm.failure:
                raise SandboxFailed(vm.failure) from exc
            raise
    work.cancel()
    with contextlib.suppress(BaseException):
        await work
    raise SandboxFailed(vm.failure or "The sandbox stopped unexpectedly.")


async def _reason(vm: Machine, exc: PaddockError) -> str:
    """Why the guest stopped answering: the VM's own reason when it reports one.

    The broken channel can be noticed a moment before the process watcher
    sees QEMU or virtiofsd exit, so give the VM a short while to say.
    """
    with contextlib.suppress(asyncio.TimeoutError):
        return await asyncio.wait_for(vm.failed(), 3.0)
    # QEMU is still running but the agent is gone: fail closed, stop everything.
    await vm.fail("The sandbox's helper inside the VM stopped answering; the sandbox was stopped.")
    return vm.failure or exc.message
