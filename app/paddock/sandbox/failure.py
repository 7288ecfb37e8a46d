"""Guest calls that end when the VM does: a VM failure becomes ``SandboxFailed`` with its reason."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

from paddock.core.errors import PaddockError
from paddock.guest import GuestError, GuestUnavailable
from paddock.sandbox.placement import Machine

T = TypeVar("T")
Progress = Callable[[str], None]
BOOT_TIMEOUT_S = float(os.environ.get("PADDOCK_BOOT_TIMEOUT", "60"))
RESTORE_TIMEOUT_S = 20.0


class SandboxFailed(PaddockError):
    """The sandbox could not start, or stopped while in use."""


async def unless_failed(vm: Machine, aw: Awaitable[T]) -> T:
    """Await ``aw`` unless the VM fails first; then raise SandboxFailed with the reason."""
    work = asyncio.ensure_future(aw)
    failed = asyncio.ensure_future(vm.failed())
    try:
        done, _ = await asyncio.wait({work, failed}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # cancelled: the work ends before we go on (a stream's next event, say,
        work.cancel()  # must be over before its stream can be closed)
        await asyncio.wait({work})
        raise
    finally:
        failed.cancel()
    if work in done:
        try:
            return work.result()
        except GuestUnavailable as exc:
            raise SandboxFailed(await reason_for(vm, exc)) from exc
        except GuestError as exc:
            if vm.failure:
                raise SandboxFailed(vm.failure) from exc
            raise
    work.cancel()
    with contextlib.suppress(BaseException):
        await work
    raise SandboxFailed(vm.failure or "The sandbox stopped unexpectedly.")


async def reason_for(vm: Machine, exc: PaddockError) -> str:
    """Why the guest stopped answering: the VM's own reason when it reports one.

    The broken channel can be noticed a moment before the process watcher
    sees QEMU or virtiofsd exit, so give the VM a short while to say.
    """
    with contextlib.suppress(asyncio.TimeoutError):
        return await asyncio.wait_for(vm.failed(), 3.0)
    # QEMU is still running but the agent is gone: fail closed, stop everything.
    await vm.fail("The sandbox's helper inside the VM stopped answering; the sandbox was stopped.")
    return vm.failure or exc.message
