"""A booted sandbox: the VM with the folder shared and the guest agent claimed.

    async with Sandbox.open(folder) as sandbox:
        out, err, result = await sandbox.guest.run(["uname", "-r"])

Progress is reported through ``on_progress`` in plain words. A VM that fails
at any point (while booting or mid-command) surfaces as ``SandboxFailed``
with the VM's reason, never as a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from paddock.core.errors import PaddockError
from paddock.core.lifetime import Lifetime
from paddock.core.paths import runtime_dir
from paddock.core.signal import Signal
from paddock.egress import UNWATCHED, Decision, EgressGateway, SessionToken, TokenAuthority
from paddock.egress.tripwires import make_decoys
from paddock.guest import ExecEvent, ExecResult, ExecStarted, GuestClient, GuestError, GuestEvent, GuestUnavailable
from paddock.policy import EffectivePolicy, PolicyError
from paddock.policy import load as load_policy
from paddock.policy.sensitive import SensitiveMatcher
from paddock.remote import SyncReport
from paddock.sandbox.failure import Progress, SandboxFailed, reason_for, unless_failed
from paddock.sandbox.keys import secrets_for as _secrets_for
from paddock.sandbox.local import boot_here
from paddock.sandbox.placement import BootTimings, Machine, Placement
from paddock.sandbox.remote import boot_remote, choose_host
from paddock.sandbox.request import BootRequest
from paddock.sandbox.sensitive import SensitiveReads
from paddock.sandbox.tripwires import plant
from paddock.vm import Guard, VMState

log = logging.getLogger(__name__)
EGRESS_PORT = 3128  # the guest agent's local end of the egress tunnel
WATCHDOG_INTERVAL_S = 5.0
WATCHDOG_TIMEOUT_S = float(os.environ.get("PADDOCK_WATCHDOG_TIMEOUT", "30"))
EVENTS_TIMEOUT_S = 30.0  # the guest's event stream reaches a seq it named within this, or it is lagging
SETTLE_TIMEOUT_S = 5.0  # closing: what is on the wire has arrived within this (a hung guest is not waited on)
T = TypeVar("T")


class Sandbox:
    def __init__(self, placement: Placement, guest: GuestClient, folder: Path, timings: BootTimings) -> None:
        self.placement = placement
        self.vm: Machine = placement.machine
        self.guest = guest
        self.folder = folder
        self.timings = timings
        # A command is about to start (its id, which its guest events carry as exec_id).
        self.exec_started: Signal[str] = Signal("command started")
        # The guest's events (processes, files), one ordered stream for as long as the sandbox runs.
        self.guest_event: Signal[GuestEvent] = Signal("guest event")
        self.closing: Signal[()] = Signal("sandbox closing")  # once, before the gateway and the VM stop
        self.sync_done: Signal[SyncReport] = Signal("folder synced")  # a sandbox host's folder, synced back
        self.gateway: EgressGateway | None = None
        self.token: SessionToken | None = None
        self._tunnel: asyncio.Task[None] | None = None
        self._life: Lifetime | None = None  # the watchdog, the event stream, the egress tunnel
        self._seen = 0  # the seq of the last guest event handed on
        self._seen_changed = asyncio.Condition()
        self._events_open = asyncio.Event()
        self._events_done = False
        self._held = 0  # inside ``synced``
        self._sync_lock = asyncio.Lock()  # one sync (or synced block) at a time
        self.read_only = False  # a read-only folder is sent, never brought back
        self.sensitive: SensitiveReads | None = None  # sensitive reads seen by the change guard (local only)
        # On a sandbox host, where reads are not seen from here: tainted from the start (#32).
        self.reads_unwatched = False

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, folder: Path, *, on_progress: Progress | None = None, **fields: Any) -> AsyncIterator[Sandbox]:
        """``boot``, then ``close`` at the end of the block."""
        sandbox = await cls.boot(folder, on_progress=on_progress, **fields)
        try:
            yield sandbox
        finally:
            await sandbox.close()

    @classmethod
    async def boot(cls, folder: Path, *, on_progress: Progress | None = None, **fields: Any) -> Sandbox:
        """``start(BootRequest(folder, **fields))``: the fields are ``BootRequest``'s."""
        return await cls.start(BootRequest(folder, **fields), on_progress=on_progress)

    @classmethod
    async def start(cls, request: BootRequest, *, on_progress: Progress | None = None) -> Sandbox:
        """Boot a sandbox as ``request`` says, here or on a sandbox host. Policy decides first: a
        folder it denies, or a managed policy that is unsafe or malformed, stops here (fail closed)."""
        policy, decision = request.policy, request.decision
        say = on_progress or (lambda _msg: None)
        t0 = time.monotonic()
        if decision is None or policy is None:  # not decided by the session: decide here
            try:
                policy = policy or load_policy()
            except PolicyError as exc:
                raise SandboxFailed(f"No session can start: {exc.message}", hint=exc.hint) from exc
            decision = policy.check_folder(request.folder)
        if not decision.allowed or decision.folder is None:
            raise SandboxFailed(decision.reason)
        folder = decision.folder
        try:
            remote = await choose_host(policy, request.host) if policy.sandbox_hosts or request.host else None
            if remote is not None:
                on_host, guest, timings = await boot_remote(remote, policy, decision, say, t0)
                placement: Placement = on_host
        except PaddockError as exc:
            raise SandboxFailed(exc.message, hint=exc.hint) from exc
        watcher = None
        if remote is None:  # a sandbox host's folder is a copy there: reads are not seen from here
            if request.watch_reads:
                watcher = SensitiveReads(folder, SensitiveMatcher(policy.sensitive_paths))
            placement, guest, timings = await boot_here(request, decision, say, t0, reads=watcher)
        sandbox = cls(placement, guest, folder, timings)
        sandbox.sensitive = watcher
        sandbox.reads_unwatched = remote is not None and request.watch_reads
        sandbox.read_only = decision.read_only
        try:
            await sandbox._start_life()
        except BaseException:
            await sandbox.close()
            raise
        if policy.grants or (request.egress_asking and policy.allow_asking):
            say("Opening the network paths your organisation allows")
            try:
                await sandbox._open_egress(policy, request.secrets)
            except BaseException:
                await sandbox.close()
                raise
        say("Sandbox ready")
        log.debug("sandbox %s: ready on %s (%s, %.2f s, %s)", sandbox.vm.id, folder, timings.accel.accel.value,
                  timings.ready_s, timings.how)  # fmt: skip
        return sandbox

    async def _start_life(self) -> None:
        """The sandbox's background tasks, in one lifetime: the watchdog and the guest's event
        stream (returns once the stream is open, so no command's events can be missed)."""
        self._life = await Lifetime.start(f"sandbox {self.vm.id}")
        self._life.spawn(self._watch_agent(), name="watchdog")
        self._life.spawn(self._follow_events(), name="guest events")
        try:
            await asyncio.wait_for(self._events_open.wait(), EVENTS_TIMEOUT_S)
        except TimeoutError:
            log.warning("sandbox %s: the guest's event stream did not open", self.vm.id)

    async def _follow_events(self) -> None:
        def opened(seq: int) -> None:
            self._seen = max(self._seen, seq)
            self._events_open.set()

        try:
            async for ev in self.guest.events(opened=opened):
                self.guest_event.emit(ev)
                async with self._seen_changed:
                    self._seen = max(self._seen, ev.seq)
                    self._seen_changed.notify_all()
        except GuestError as exc:  # the VM stopped or failed: its own failure says so
            log.debug("sandbox %s: the guest's event stream ended: %s", self.vm.id, exc)
        finally:
            self._events_open.set()
            async with self._seen_changed:
                self._events_done = True
                self._seen_changed.notify_all()

    async def events_reached(self, seq: int, timeout_s: float = EVENTS_TIMEOUT_S) -> bool:
        """Wait until the guest's event stream has handed on event ``seq`` (True), or it ended or
        lagged ``timeout_s`` (False, logged)."""
        try:
            async with self._seen_changed:
                await asyncio.wait_for(
                    self._seen_changed.wait_for(lambda: self._seen >= seq or self._events_done), timeout_s
                )
        except TimeoutError:
            log.warning("sandbox %s: guest event %d did not arrive within %.0f s", self.vm.id, seq, timeout_s)
            return False
        return self._seen >= seq

    async def settle(self, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """Return once every guest event and egress decision made so far has been handed on (the
        guest's file watcher flushed too): a barrier, not a pause. A sandbox that is not running,
        or does not answer within ``timeout_s``, is not waited on."""
        if not self.alive:
            return
        try:
            async with asyncio.timeout(timeout_s):
                seq = await self.guest.sync()
                await self.events_reached(seq, timeout_s)
                if self.gateway is not None:
                    await self.gateway.settle()
        except (TimeoutError, GuestError) as exc:
            log.warning("sandbox %s: could not settle its events: %s", self.vm.id, exc)

    def change_guard(self) -> tuple[Guard | None, str]:
        """The folder's change guard (``paddock.vm.guard``) if it runs, else why not."""
        return self.placement.change_guard()

    async def _open_egress(self, policy: EffectivePolicy, secrets: Mapping[str, str] | None) -> None:
        """Start the gateway, mint this boot's token, tell the guest, open the tunnel."""
        grant_ids = [g.id for g in policy.grants]
        keys = _secrets_for(policy) if secrets is None else dict(secrets)
        planted = make_decoys()  # fresh tripwires for this session (``paddock.egress.tripwires``)
        self.gateway = EgressGateway(runtime_dir() / f"gw-{self.vm.id}", self.vm.id, policy.grants, keys,
                                     decoys=planted.decoys, taint_mode=policy.on_sensitive_send)  # fmt: skip
        if self.sensitive is not None:
            self.sensitive.attach(self.gateway)
        if self.reads_unwatched:  # before the gateway's first request: fail closed
            self.gateway.taint([dict(UNWATCHED)])
        try:
            await self.gateway.start()
        except PaddockError as exc:
            raise SandboxFailed(exc.message, hint=exc.hint) from exc
        self.token = TokenAuthority().mint(self.vm.id, grant_ids)
        proxy = f"http://paddock:{self.token.value}@127.0.0.1:{EGRESS_PORT}"
        ca = "/etc/ssl/certs/paddock-egress-ca.pem"
        env = {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy,
               "SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca, "CURL_CA_BUNDLE": ca, **planted.env}  # fmt: skip
        await self.unless_failed(self.guest.configure(env=env, ca_pem=self.gateway.ca_cert_pem))
        await self.unless_failed(plant(self.guest, planted))
        self.gateway.decided.connect(self._tripped)
        assert self._life is not None
        self._tunnel = self._life.spawn(self._carry_egress(self.gateway), name="egress tunnel")
        self.gateway.stopped.connect(self._gateway_stopped)

    async def _carry_egress(self, gateway: EgressGateway) -> None:
        try:
            await self.guest.egress_tunnel(gateway.port, gateway.alive)
        except GuestError as exc:  # the VM stopped or failed: its own failure says so
            log.debug("sandbox %s: the egress tunnel ended: %s", self.vm.id, exc)

    def _tripped(self, decision: Decision) -> None:
        """A decoy secret was sent out: the gateway has closed egress; the token dies too."""
        if decision.tripwire and not decision.closed and self.token is not None:
            log.warning("sandbox %s: a decoy secret (%s) was sent out; egress is closed", self.vm.id,
                        decision.tripwire)  # fmt: skip
            TokenAuthority().revoke(self.token.token_id)

    def _gateway_stopped(self, reason: str) -> None:
        """The gateway crashed: close the egress channel (its port may be anyone's now)."""
        log.warning("sandbox %s: %s", self.vm.id, reason)
        if self._tunnel is not None:
            self._tunnel.cancel()

    async def unless_failed(self, aw: Awaitable[T]) -> T:
        """Await a guest call, turning a VM failure into SandboxFailed with its reason."""
        return await unless_failed(self.vm, aw)

    async def exec(
        self, argv: list[str], *, cwd: str = "", timeout_s: float = 0.0, stdin: bytes = b""
    ) -> AsyncIterator[ExecEvent]:
        """Stream a command's events; a VM failure mid-command raises SandboxFailed. On a sandbox
        host, the folder is sent before and brought back after (see ``sync``)."""
        await self.sync(back=False, unless_held=True)
        command_id = secrets.token_hex(6)
        self.exec_started.emit(command_id)  # before any of its events can arrive
        events = self.guest.exec(argv, cwd=cwd, timeout_s=timeout_s, stdin=stdin, command_id=command_id).__aiter__()
        finished = False
        try:
            while True:
                try:
                    ev = await unless_failed(self.vm, events.__anext__())
                except StopAsyncIteration:
                    finished = True
                    break
                except GuestUnavailable as exc:
                    raise SandboxFailed(await reason_for(self.vm, exc)) from exc
                if isinstance(ev, ExecStarted) and ev.exec_id != command_id:  # an agent that chose its own
                    self.exec_started.emit(ev.exec_id)
                if isinstance(ev, ExecResult) and ev.seq:  # its events (files too) are handed on first
                    await self.events_reached(ev.seq)
                yield ev
        finally:
            with contextlib.suppress(GuestError):  # closing the call: the guest kills the command
                await events.aclose()  # type: ignore[attr-defined]
        if finished:
            await self.sync(back=True, unless_held=True)

    @contextlib.asynccontextmanager
    async def synced(self) -> AsyncIterator[None]:
        """Send the folder before the block and bring it back after (one tool call); the commands
        inside do not sync on their own."""
        async with self._sync_lock:
            await self._sync(back=False)
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
            await self._sync(back=True)

    async def sync(self, *, back: bool = True, unless_held: bool = False) -> SyncReport | None:
        """On a sandbox host: bring back what changed in its copy of the folder (``back``), or send
        the person's changes there; listeners hear of each change brought back (and of conflicts).
        Here (the folder is shared directly): nothing to do."""
        if self.placement.host_name is None or not self.alive or (unless_held and self._held):
            return None
        async with self._sync_lock:
            return await self._sync(back=back)

    async def _sync(self, *, back: bool) -> SyncReport | None:
        if not self.alive or (back and self.read_only):
            return None
        try:
            report = await unless_failed(self.vm, self.placement.bring_back() if back else self.placement.send())
        except PaddockError as exc:
            await self.vm.fail(exc.message)
            raise SandboxFailed(exc.message) from exc
        if report is None:  # the folder is shared directly
            return None
        self.sync_done.emit(report)
        return report

    async def _watch_agent(self) -> None:
        """Ping the agent; one that does not answer for WATCHDOG_TIMEOUT_S (hung, stopped) fails the VM,
        so every waiting call gets SandboxFailed instead of hanging."""
        while self.vm.state is VMState.READY:
            await asyncio.sleep(WATCHDOG_INTERVAL_S)
            if self.vm.paused:
                continue  # paused while it waits (``paused_when_idle``): nothing runs to hang
            try:
                await asyncio.wait_for(self.guest.health(), WATCHDOG_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - any failure to answer counts
                if self.vm.state is VMState.READY:
                    await self.vm.fail(
                        f"The sandbox's helper inside the VM did not answer for {WATCHDOG_TIMEOUT_S:.0f} s; "
                        "the sandbox was stopped."
                    )
                return

    async def close(self) -> None:
        log.debug("sandbox %s: closing (%s)", self.vm.id, self.vm.state.value)
        await self.guest.stop_pausing()  # first: no pause of the VM races its stop (#31)
        await self.settle()  # what is on the wire arrives first
        if self._life is not None:
            await self._life.close()  # the watchdog, the event stream and the tunnel end here
        if self.token is not None:
            TokenAuthority().revoke(self.token.token_id)  # the token dies with the session
        self.closing.emit()
        if self.gateway is not None:
            await self.gateway.stop()
        await self.guest.close()
        await self.vm.stop()
        if self.sensitive is not None:
            self.sensitive.close()

    @property
    def host_name(self) -> str | None:
        """The sandbox host this sandbox runs on (None: this computer)."""
        return self.placement.host_name

    @property
    def where(self) -> str:
        """Where and how it runs, in plain words (the window's status)."""
        label = self.timings.accel.accel.label
        return f"on {self.host_name}, {label}" if self.host_name else label

    @property
    def alive(self) -> bool:
        return self.vm.state is VMState.READY
