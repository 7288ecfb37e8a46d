"""One sandbox VM: QEMU plus one virtiofsd per share, supervised.

States::

    STOPPED ──start()──► BOOTING ──mark_ready()──► READY ──stop()──► STOPPING ──► STOPPED
                            │                        │
                            └──── a process dies ────┴──► FAILED (reason) ──stop()──► STOPPED

A BOOTING or READY guest can be paused and resumed (``Migration.pause``): no state of its own.

Every method says which states it accepts (``@requires``). A QEMU or virtiofsd
that exits on its own moves the VM to FAILED at once and kills the rest, so a
caller waiting on the guest never hangs: it can await ``failed()``.

Nothing a user or the guest chose reaches a QEMU or virtiofsd argument: shared
folders are bind-mounted by bubblewrap onto fixed paths in the VM's private
run folder, and every path QEMU sees has its commas escaped. Nothing here needs
root: virtiofsd runs in a user namespace (see ``sharing``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient
from qemu.qmp.error import QMPError

from paddock.core.errors import PaddockError
from paddock.core.lifetime import Lifetime
from paddock.core.paths import runtime_dir
from paddock.core.processes import terminate
from paddock.core.signal import Signal
from paddock.vm.children import keep_logs, log_file, read_text, set_pdeathsig
from paddock.vm.config import (
    HOTPLUG_PORTS,
    Share,
    VMConfig,
    VMError,
    VMState,
    kernel_cmdline,
    qemu_argv,
    requires,
)
from paddock.vm.guard import NO_KEEPER, Guard, launch_guarded
from paddock.vm.migration import Migration
from paddock.vm.sharing import seccomp_fd

log = logging.getLogger(__name__)
QMP_ACCEPT_TIMEOUT_S = 30.0
STOP_GRACE_S = 3.0


class VirtualMachine(Migration):
    def __init__(self, config: VMConfig) -> None:
        self.config = config
        self.id = secrets.token_hex(4)
        self._state = VMState.STOPPED
        self.failure: str | None = None
        self.run_dir: Path | None = None
        self._qemu: asyncio.subprocess.Process | None = None
        self._virtiofsd: dict[str, asyncio.subprocess.Process] = {}
        self._qmp: QMPClient | None = None
        self._life: Lifetime | None = None  # the watchers of QEMU, each virtiofsd and QMP's events
        self._stopping: asyncio.Future[None] | None = None  # the one teardown of this run
        self._failed = asyncio.Event()
        self.state_changed: Signal[VMState, str | None] = Signal("VM state")
        self._attached = False
        self.kept_logs: Path | None = None  # where the logs of a failed run were kept
        self.guards: dict[str, Guard] = {}  # share tag → the change guard of its daemon
        self.guard_failures: dict[str, str] = {}  # share tag → why it is not guarded
        self._paused = False
        self._pause_lock = asyncio.Lock()
        # Where this run's start spent its time: (what, ``time.monotonic()`` when it was done), in
        # order; the sandbox reports them as a cold boot's stages (docs/BENCHMARKS.md).
        self.start_marks: list[tuple[str, float]] = []
        self._spawned: list[asyncio.subprocess.Process] = []  # every process this run started

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> VMState:
        return self._state

    def subscribe(self, listener: Callable[[VMState, str | None], None]) -> None:
        """Call ``listener(state, reason)`` on every state change."""
        self.state_changed.connect(listener)

    def _set_state(self, state: VMState, reason: str | None = None) -> None:
        if state is self._state:
            return
        log.debug("vm %s: %s -> %s%s", self.id, self._state.value, state.value, f" ({reason})" if reason else "")
        self._state = state
        self.state_changed.emit(state, reason)

    @property
    def agent_socket(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "agent.sock"

    @property
    def console_log(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "console.log"

    @property
    def pids(self) -> dict[str, int]:
        """Host processes of this VM, by role (``qemu``, ``virtiofsd-<tag>``)."""
        out = {f"virtiofsd-{tag}": p.pid for tag, p in self._virtiofsd.items()}
        if self._qemu is not None:
            out["qemu"] = self._qemu.pid
        return out

    async def failed(self) -> str:
        """Wait until the VM fails; returns the reason."""
        await self._failed.wait()
        return self.failure or "the sandbox stopped unexpectedly"

    # ------------------------------------------------------------------ start

    @requires(VMState.STOPPED)
    async def start(self, incoming: Path | None = None) -> None:
        """Start virtiofsd and QEMU; returns once QEMU runs (the guest is still booting).

        With ``incoming`` (hot-plug mode only), QEMU loads that snapshot instead of booting and
        the guest continues from where it was saved.

        Cancelled at any point, everything started so far is stopped before the cancellation goes
        on (no QEMU, no virtiofsd, no task left; the run folder as ``PADDOCK_KEEP_RUN_DIR`` says):
        STOPPED again, not FAILED. Any other error: FAILED with the reason, everything stopped."""
        if incoming is not None and not self.config.hotplug:
            raise VMError("a snapshot can only be restored into a VM in hot-plug mode")
        self._set_state(VMState.BOOTING)
        self.id = secrets.token_hex(4)
        self.failure = None
        self._failed.clear()
        self.run_dir = runtime_dir() / f"vm-{self.id}"
        self.run_dir.mkdir(mode=0o700)
        self._paused = False
        self._stopping = None
        self.start_marks = []
        self._mark("start")
        try:
            self._life = await Lifetime.start(f"vm {self.id}")
            if not self.config.hotplug:
                await self._start_daemons(self.config.shares)
            await self._start_qemu(incoming)
        except asyncio.CancelledError:
            self._set_state(VMState.STOPPING)
            await self._teardown()
            self._set_state(VMState.STOPPED)
            raise
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, PaddockError) else f"the sandbox could not start: {exc}"
            if self._state is not VMState.FAILED:  # else a watcher saw the first cause
                self.failure = reason
                self._set_state(VMState.FAILED, reason)
                self._failed.set()
            await self._teardown()
            if isinstance(exc, (PaddockError, KeyboardInterrupt)):
                raise
            raise VMError(reason) from exc

    def _mark(self, what: str) -> None:
        """Note that ``what`` is done now (``start_marks``, and the debug log with the time since start)."""
        now = time.monotonic()
        self.start_marks.append((what, now))
        log.debug("vm %s: %s at +%.3f s", self.id, what, now - self.start_marks[0][1])

    async def _spawn(self, name: str, argv: list[str], pass_fds: tuple[int, ...] = ()) -> asyncio.subprocess.Process:
        """Start ``argv``; every process started is stopped by the teardown (``_spawned``).

        A cancellation does not cut a start short: the start finishes, and the cancellation goes
        on. Cut short, asyncio would kill the process at once, and a bubblewrap killed between
        making its sandbox's process and that process asking to die with it leaves the daemon
        running (the share daemons start side by side, so a cancel can land in one's start)."""
        assert self.run_dir is not None
        log = log_file(self.run_dir / f"{name}.log")
        try:
            starting = asyncio.ensure_future(
                asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,  # a Ctrl-C in the terminal is ours to handle
                    preexec_fn=set_pdeathsig,
                    pass_fds=pass_fds,
                )
            )
            try:
                proc = await asyncio.shield(starting)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    self._spawned.append(await asyncio.shield(starting))
                raise
            self._spawned.append(proc)
            return proc
        finally:
            log.close()

    async def _start_daemons(self, shares: tuple[Share, ...]) -> None:
        """Start one virtiofsd per share, side by side (each in its own jail, under its own guard
        where it has one); returns once every one listens. QEMU starts only after this, so the
        guest never sees a share before its daemon is jailed and guarded. The first failure is the
        error (the others are cancelled: what they started is stopped by the caller's teardown)."""
        try:
            async with asyncio.TaskGroup() as group:
                for share in shares:
                    group.create_task(self._start_virtiofsd(share), name=f"vm {self.id}: virtiofsd-{share.tag}")
        except BaseExceptionGroup as errors:
            for other in errors.exceptions[1:]:
                log.debug("vm %s: a share daemon failed too: %s", self.id, other)
            raise errors.exceptions[0]  # noqa: B904 - the group is its context

    async def _start_virtiofsd(self, share: Share) -> None:
        assert self.run_dir is not None
        tools = self.config.tools
        if not share.host_path.is_dir():
            raise VMError(f"The folder to share does not exist: {share.host_path}")
        mount_point = self.run_dir / f"share-{share.tag}"
        mount_point.mkdir(mode=0o700)
        sock = self.run_dir / f"fs-{share.tag}.sock"
        fd = seccomp_fd()
        try:
            argv = tools.sharing.argv(
                share.host_path.resolve(), mount_point, self.run_dir, sock, read_only=share.read_only, seccomp_fd=fd
            )
            proc = None
            if (share.keeper is not None and not share.read_only) or share.reads is not None:  # docs/UNDO.md
                proc = await self._spawn_guarded(share, argv, fd)
            if proc is None:
                proc = await self._spawn(f"virtiofsd-{share.tag}", argv, pass_fds=(fd,))
        finally:
            os.close(fd)
        self._virtiofsd[share.tag] = proc
        self._mark(f"virtiofsd-{share.tag} started")
        for _ in range(500):
            if sock.exists():
                break
            if proc.returncode is not None:
                tail = self._log_tail(f"virtiofsd-{share.tag}")
                raise VMError(f"The folder-sharing helper for {share.tag} stopped at start: {tail}")
            await asyncio.sleep(0.01)
        else:
            raise VMError(f"The folder-sharing helper for {share.tag} did not start within 5 s")
        self._mark(f"virtiofsd-{share.tag} listening")
        self._supervise(self._watch(f"virtiofsd-{share.tag}", proc), f"virtiofsd-{share.tag}")

    async def _spawn_guarded(self, share: Share, argv: list[str], fd: int) -> asyncio.subprocess.Process | None:
        """The daemon under the change guard (``paddock.vm.guard``); None where the guard cannot
        be set up here (the caller starts it unguarded, and the undo store copies at each point)."""
        keeper = share.keeper if share.keeper is not None and not share.read_only else NO_KEEPER
        launched = await launch_guarded(self._spawn, f"virtiofsd-{share.tag}", argv, (fd,), keeper, reads=share.reads)
        if isinstance(launched, str):
            log.warning("folder changes are not guarded (restore points copy instead): %s", launched)
            self.guard_failures[share.tag] = launched
            return None
        proc, guard = launched
        self.guards[share.tag] = guard
        return proc

    async def _start_qemu(self, incoming: Path | None = None) -> None:
        assert self.run_dir is not None
        qmp = QMPClient(f"paddock-{self.id}")
        self._qmp = qmp
        await qmp.start_server(str(self.run_dir / "qmp.sock"))
        argv = qemu_argv(self.config, self.id, self.run_dir) + (["-incoming", "defer"] if incoming is not None else [])
        self._qemu = await self._spawn("qemu", argv)
        self._mark("qemu started")
        await self._accept(qmp, self._qemu)
        self._mark("qmp connected")
        self._supervise(self._watch("qemu", self._qemu), "qemu")
        self._supervise(self._watch_events(qmp), "QMP events")
        if incoming is not None:
            await self._load_snapshot(qmp, incoming)

    async def _accept(self, qmp: QMPClient, qemu: asyncio.subprocess.Process) -> None:
        """Wait for QEMU's QMP connection (its greeting and capabilities included). QEMU exiting
        first, hanging up or not answering within QMP_ACCEPT_TIMEOUT_S is a VMError that says
        why, from QEMU's own log. The wait and the watch on QEMU's exit run in one task group, so
        whichever way it ends (cancelled too), neither is left running."""
        try:
            async with asyncio.timeout(QMP_ACCEPT_TIMEOUT_S), asyncio.TaskGroup() as group:
                exit_watch = group.create_task(self._exits_at_start(qemu), name=f"vm {self.id}: QEMU at start")
                await qmp.accept()
                exit_watch.cancel()
        except TimeoutError as exc:
            raise VMError(f"QEMU did not answer within {QMP_ACCEPT_TIMEOUT_S:.0f} s") from exc
        except BaseExceptionGroup as errors:
            exited = next((e for e in errors.exceptions if isinstance(e, VMError)), None)
            others = [e for e in errors.exceptions if e is not exited]
            if exited is not None:  # QEMU's exit is the first cause (a hang-up follows from it)
                raise exited from (others[0] if others else None)
            if not isinstance(others[0], Exception):
                raise
            raise await self._hung_up(qemu, others[0]) from others[0]

    async def _exits_at_start(self, qemu: asyncio.subprocess.Process) -> None:
        code = await qemu.wait()
        raise VMError(f"QEMU stopped at start (code {code}): {self._log_tail('qemu')}")

    async def _hung_up(self, qemu: asyncio.subprocess.Process, exc: BaseException) -> VMError:
        """QEMU connected and hung up at once: say why, from its own log (and the share helpers')."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(qemu.wait(), 2.0)
        code = qemu.returncode
        status = f"stopped at start (code {code})" if code is not None else "closed its control channel"
        helpers = "".join(
            f"\nThe folder-sharing helper for {tag} stopped too: {self._log_tail(f'virtiofsd-{tag}')}"
            for tag, proc in self._virtiofsd.items()
            if proc.returncode is not None
        )
        return VMError(f"QEMU {status}: {self._log_tail('qemu') or exc}{helpers}")

    async def _execute(self, command: str, arguments: dict[str, Any] | None = None) -> object:
        """A QMP command whose failure is a VMError naming it (the caller falls back or reports)."""
        if self._qmp is None:
            raise VMError("the VM is not running")
        try:
            return await self._qmp.execute(command, arguments)
        except QMPError as exc:
            raise VMError(f"QEMU refused {command}: {exc}") from exc

    @requires(VMState.BOOTING)
    async def attach_shares(self, shares: tuple[Share, ...] | None = None) -> None:
        """Hot-plug mode: start one virtiofsd per share (``shares``, or the config's) and add it
        as a vhost-user-fs-pci device on its own PCIe port. The guest mounts them when asked (the
        agent's Claim). Once per VM: a woken sandbox gets its folder here, after the wake."""
        assert self.run_dir is not None and self._qmp is not None
        if self._attached:
            raise VMError("shares are attached once per VM")
        if shares is not None:
            self.config = dataclasses.replace(self.config, shares=shares)
        if len(self.config.shares) > HOTPLUG_PORTS:
            raise VMError(f"at most {HOTPLUG_PORTS} shares can be attached")
        for port, share in enumerate(self.config.shares):
            await self._start_virtiofsd(share)
            sock = self.run_dir / f"fs-{share.tag}.sock"
            chardev = {"type": "socket", "data": {"addr": {"type": "unix", "data": {"path": str(sock)}},
                                                   "server": False}}  # fmt: skip
            await self._chardev_add(f"fs-{share.tag}", chardev)
            await self._execute("device_add", {"driver": "vhost-user-fs-pci", "id": f"fs-{share.tag}",
                                                   "chardev": f"fs-{share.tag}", "tag": share.tag,
                                                   "bus": f"rp{port}"})  # fmt: skip
            self._attached = True

    async def _chardev_add(self, name: str, chardev: dict[str, Any]) -> None:
        """Connect QEMU to a share daemon's socket. The socket file appears when the daemon binds
        it, a moment before it listens: a refused connection is tried again for up to 2 s (not
        probed from here: the daemon serves the first connection it accepts)."""
        for _ in range(100):
            try:
                await self._execute("chardev-add", {"id": name, "backend": chardev})
                return
            except VMError as exc:
                if "Connection refused" not in str(exc):
                    raise
                last = exc
            await asyncio.sleep(0.02)
        raise last

    # ------------------------------------------------------------------ supervision

    def _supervise(self, watch: Coroutine[Any, Any, None], name: str) -> None:
        """Run a watcher for as long as this VM runs (its lifetime ends in ``_teardown``)."""
        assert self._life is not None
        self._life.spawn(watch, name=name)

    async def _watch(self, name: str, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if name != "qemu" and self._qemu is not None:
            # virtiofsd exits on its own when QEMU goes away: blame the first cause.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._qemu.wait(), 1.0)
                await asyncio.sleep(0)
        if self._state in (VMState.BOOTING, VMState.READY):
            label = "QEMU" if name == "qemu" else f"the folder-sharing helper ({name})"
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            await self._fail(f"The sandbox stopped: {label} {how}.")

    async def _watch_events(self, qmp: QMPClient) -> None:
        with (
            contextlib.suppress(QMPError),
            qmp.listener(("SHUTDOWN", "GUEST_PANICKED")) as listener,
        ):
            async for event in listener:
                if self._state in (VMState.BOOTING, VMState.READY):
                    what = "crashed" if event["event"] == "GUEST_PANICKED" else "shut down"
                    await self._fail(f"The sandbox {what} on its own.")
                    return

    async def _fail(self, reason: str) -> None:
        if self._state in (VMState.FAILED, VMState.STOPPING, VMState.STOPPED):
            return
        self.failure = reason
        self._set_state(VMState.FAILED, reason)
        self._failed.set()
        await self._teardown()

    async def fail(self, reason: str) -> None:
        """Give up on this VM (its agent stopped answering): FAILED, and everything stopped."""
        await self._fail(reason)

    @requires(VMState.BOOTING)
    def mark_ready(self) -> None:
        """Called by whoever checked that the guest agent answers."""
        self._set_state(VMState.READY)

    async def query_status(self) -> dict[str, Any]:
        """QEMU's own view (``query-status``)."""
        if self._qmp is None:
            raise VMError("the VM is not running")
        result = await self._qmp.execute("query-status")
        assert isinstance(result, dict)
        return result

    # ------------------------------------------------------------------ stop

    async def stop(self) -> None:
        """Stop everything this VM started. Safe in any state, and idempotent."""
        if self._state is VMState.STOPPED:
            return
        was_failed = self._state is VMState.FAILED
        self._set_state(VMState.STOPPING)
        await self._teardown()
        self._set_state(VMState.STOPPED, self.failure if was_failed else None)

    async def _teardown(self) -> None:
        """Stop everything this VM started, once: a second caller (``stop`` while a watcher is
        failing the VM) waits for the same teardown instead of cancelling it halfway, and a
        caller cancelled meanwhile does not stop it either."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop_everything())
        await asyncio.shield(self._stopping)

    async def _stop_everything(self) -> None:
        """Stop QEMU and every virtiofsd, close the change guards and QMP, end the watchers (one
        lifetime: cancelled and awaited together), keep the logs of a failure and remove the run
        folder (unless ``PADDOCK_KEEP_RUN_DIR``)."""
        qmp, self._qmp = self._qmp, None
        if qmp is not None and self._qemu is not None and self._qemu.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(qmp.execute("quit"), 1.0)
        started = [self._qemu, *self._virtiofsd.values(), *self._spawned]
        procs = list({id(p): p for p in started if p is not None}.values())
        self._spawned = []
        await terminate(procs, STOP_GRACE_S)
        for proc in procs:  # each leads its own process group (``start_new_session``)
            # What a stopped bubblewrap left behind: its sandbox's process, when bubblewrap was
            # stopped before that process asked to die with it (a start cancelled at once).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        guards, self.guards = self.guards, {}
        for guard in guards.values():
            await asyncio.to_thread(guard.close)
        if qmp is not None:
            with contextlib.suppress(Exception):
                await qmp.disconnect()
        life, self._life = self._life, None
        if life is not None:
            await life.close()
        if self.run_dir is not None and self.failure:
            self.kept_logs = keep_logs(self.run_dir, f"vm-{self.id}")
        if self.run_dir is not None and not os.environ.get("PADDOCK_KEEP_RUN_DIR"):
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _log_tail(self, name: str, limit: int = 600) -> str:
        return read_text(self.run_dir / f"{name}.log").strip()[-limit:] if self.run_dir is not None else ""

    def console_tail(self, limit: int = 2000) -> str:
        """The end of the guest's console, for error reports and failed tests."""
        return read_text(self.console_log)[-limit:] if self.run_dir is not None else ""

    def kernel_cmdline(self) -> str:
        return kernel_cmdline(self.config)

    def qemu_argv(self) -> list[str]:
        assert self.run_dir is not None
        return qemu_argv(self.config, self.id, self.run_dir)
