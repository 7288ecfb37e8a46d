"""Saving and loading a VM's whole state (QEMU migration to and from a file descriptor), and
pausing it in place (QMP ``stop``/``cont``)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient

from paddock.vm.config import MIGRATION_TIMEOUT_S, VMConfig, VMError, VMState, requires
from paddock.vm.zeropages import release_zero_pages

log = logging.getLogger(__name__)


class Migration:
    """Mixed into ``VirtualMachine``: the QMP side of snapshots."""

    config: VMConfig
    _attached: bool
    _qmp: QMPClient | None
    _qemu: asyncio.subprocess.Process | None
    _paused: bool
    _pause_lock: asyncio.Lock

    @property
    def state(self) -> VMState:
        raise NotImplementedError

    async def _execute(self, command: str, arguments: dict[str, Any] | None = None) -> object:
        raise NotImplementedError

    @property
    def paused(self) -> bool:
        """The guest was paused by ``pause()`` and not resumed since."""
        return self._paused

    @requires(VMState.BOOTING, VMState.READY)
    async def pause(self) -> None:
        """Stop the guest's CPU until ``resume()`` (a sandbox that only waits): QEMU then only waits
        on its sockets and costs the host next to nothing. A paused VM is supervised like a
        running one, and a call to its agent waits until it runs again. Its clock stands still:
        the guest's time lags the host's by the pause until the host sets it (the Claim does).
        Idempotent."""
        async with self._pause_lock:
            if not self._paused:
                # Marked first: a stop cancelled on its way may still have stopped the guest, and
                # ``resume`` must then send ``cont`` (harmless on a guest that runs).
                self._paused = True
                try:
                    await self._execute("stop")
                except VMError:
                    self._paused = False
                    raise

    @requires(VMState.BOOTING, VMState.READY)
    async def resume(self) -> None:
        """Let a paused guest run on from where it stopped. Idempotent."""
        async with self._pause_lock:
            if self._paused:
                await self._execute("cont")
                self._paused = False

    async def _mapped_ram(self) -> bool:
        """Whether this QEMU saves RAM at fixed offsets in the file (``mapped-ram``, QEMU 9.0 and
        later), asked of QEMU itself; switched on here when it does. A file saved that way holds
        no all-zero page, and loading it touches only the pages it holds."""
        caps = await self._execute("query-migrate-capabilities")
        names = {str(c.get("capability")) for c in caps if isinstance(c, dict)} if isinstance(caps, list) else set()
        if "mapped-ram" not in names:
            return False
        await self._execute("migrate-set-capabilities", {"capabilities": [{"capability": "mapped-ram", "state": True}]})
        return True

    async def _pass_fd(self, qmp: QMPClient, path: Path, flags: int, *, mapped_ram: bool) -> str:
        """Open ``path`` here and hand QEMU the descriptor (``-sandbox`` forbids ``exec:``
        migration, and QEMU opens no path of ours); returns the migration URI naming it: a
        ``file:`` URI on an fd set where mapped-ram needs a seekable file, else ``fd:``."""
        fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
        try:
            qmp.send_fd_scm(fd)
            if not mapped_ram:
                await self._execute("getfd", {"fdname": "snapshot"})
                return "fd:snapshot"
            added = await self._execute("add-fd", {"opaque": "paddock-snapshot"})
            fdset = added.get("fdset-id") if isinstance(added, dict) else None
            if not isinstance(fdset, int):
                raise VMError("QEMU did not take the saved sandbox's file.")
            return f"file:/dev/fdset/{fdset}"
        finally:
            os.close(fd)

    async def _load_snapshot(self, qmp: QMPClient, path: Path) -> None:
        """Feed the saved state to QEMU and let the guest run on from where it was saved."""
        mapped_ram = await self._mapped_ram()
        uri = await self._pass_fd(qmp, path, os.O_RDONLY, mapped_ram=mapped_ram)
        await self._execute("migrate-incoming", {"uri": uri})
        status = await self._wait_migration(qmp, incoming=True)
        if status != "paused":
            raise VMError(f"The saved sandbox could not be loaded (QEMU says {status}).")
        if self._qemu is not None and not mapped_ram:
            # Paused, no share daemon yet: give back the all-zero pages that loading a stream
            # wrote (a mapped-ram file holds none, so loading one never touched them).
            released = await asyncio.to_thread(release_zero_pages, self._qemu.pid)
            log.debug("guest RAM: %d MB of zero pages given back after loading", released >> 20)
        await self._execute("cont")

    async def _wait_migration(self, qmp: QMPClient, *, incoming: bool) -> str:
        deadline = asyncio.get_running_loop().time() + MIGRATION_TIMEOUT_S
        while asyncio.get_running_loop().time() < deadline:
            if incoming:
                info = await self._execute("query-status")
                status = str(info.get("status", "")) if isinstance(info, dict) else ""
                if status != "inmigrate":
                    return status
            else:
                info = await self._execute("query-migrate")
                status = str(info.get("status", "")) if isinstance(info, dict) else ""
                if status in ("completed", "failed", "cancelled"):
                    return status
            await asyncio.sleep(0.02)
        return "timed out"

    @requires(VMState.BOOTING, VMState.READY)
    async def save_snapshot(self, path: Path) -> None:
        """Pause the guest and save its whole state to ``path`` (written atomically). Hot-plug
        mode only, before any share is attached. The VM stays paused; stop it afterwards."""
        if not self.config.hotplug or self._attached:
            raise VMError("only a hot-plug VM with no shares attached can be saved")
        qmp = self._qmp
        assert qmp is not None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        await self._execute("stop")
        mapped_ram = await self._mapped_ram()
        uri = await self._pass_fd(qmp, tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mapped_ram=mapped_ram)
        await self._execute("migrate", {"uri": uri})
        status = await self._wait_migration(qmp, incoming=False)
        if status != "completed":
            tmp.unlink(missing_ok=True)
            raise VMError(f"The sandbox could not be saved (QEMU says {status}).")
        os.replace(tmp, path)
