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
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypedDict, TypeVar, Unpack

from paddock.core.errors import PaddockError
from paddock.core.paths import runtime_dir
from paddock.egress import EgressGateway, SessionToken, TokenAuthority
from paddock.guest import ExecEvent, ExecStarted, GuestClient, GuestUnavailable
from paddock.policy import EffectivePolicy, FolderDecision, PolicyError
from paddock.policy import load as load_policy
from paddock.remote import RemoteMachine, SyncReport
from paddock.sandbox.guarded import Progress, SandboxFailed, reason_for, unless_failed
from paddock.sandbox.keys import secrets_for as _secrets_for
from paddock.sandbox.local import BootTimings, _boot_here
from paddock.sandbox.remote import Machine, boot_remote, choose_host
from paddock.sandbox.warm import WarmPool
from paddock.vm import Guard, GuestImage, Keeper, VirtualMachine, VMState

log = logging.getLogger(__name__)
EGRESS_PORT = 3128  # the guest agent's local end of the egress tunnel
WATCHDOG_INTERVAL_S = 5.0
WATCHDOG_TIMEOUT_S = float(os.environ.get("PADDOCK_WATCHDOG_TIMEOUT", "30"))
T = TypeVar("T")


class BootOptions(TypedDict, total=False):
    """How to boot a sandbox (every key optional)."""

    image: GuestImage | None  # default: the installed image
    profile: Path | None  # default: the person's agent profile
    on_progress: Progress | None  # plain-words progress
    memory_mib: int  # guest memory (1024)
    policy: EffectivePolicy | None  # default: loaded here
    decision: FolderDecision | None  # the folder as the session composer decided it with ``policy``
    secrets: dict[str, str] | None  # the real keys grants attach (default: from the keychain)
    # Start the egress gateway even with no grants (where policy allows asking), so a refused
    # request can become a question to the person.
    egress_asking: bool
    # Commands run as the guest's root (the fence tests' attacker who escalated inside the
    # guest); always a cold boot.
    guest_root: bool
    # Asked before the guest's folder-sharing daemon changes a file in the folder (the undo
    # store, which keeps what a restore point needs first): ``paddock.vm.guard``. Local only: on
    # a sandbox host the folder changes here only when the sync brings files back.
    keeper: Keeper | None
    # Where a sandbox woken ahead of time may be waiting (the window's): taken, never returned.
    warm: WarmPool | None
    host: str | None  # a sandbox host policy names (default: the least loaded one policy assigns, else here)


class Sandbox:
    def __init__(self, vm: Machine, guest: GuestClient, folder: Path, timings: BootTimings) -> None:
        self.vm = vm
        self.guest = guest
        self.folder = folder
        self.timings = timings
        self.exec_listeners: list[Callable[[str], None]] = []
        self.gateway: EgressGateway | None = None
        self.token: SessionToken | None = None
        self._tunnel: asyncio.Task[None] | None = None
        self.close_listeners: list[Callable[[], None]] = []
        self._watchdog: asyncio.Task[None] | None = None
        self.sync_listeners: list[Callable[[SyncReport], None]] = []  # a sandbox host's folder, synced back
        self._held = 0  # inside ``synced``
        self._sync_lock = asyncio.Lock()  # one sync (or synced block) at a time
        self.read_only = False  # a read-only folder is sent, never brought back

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, folder: Path, **options: Unpack[BootOptions]) -> AsyncIterator[Sandbox]:
        """``boot``, then ``close`` at the end of the block."""
        sandbox = await cls.boot(folder, **options)
        try:
            yield sandbox
        finally:
            await sandbox.close()

    @classmethod
    async def boot(cls, folder: Path, **options: Unpack[BootOptions]) -> Sandbox:
        """Boot a sandbox on ``folder`` (see ``BootOptions``). Policy decides first: a folder it
        denies, or a managed policy that is unsafe or malformed, stops here (fail closed)."""
        policy, decision = options.get("policy"), options.get("decision")
        secrets, egress_asking = options.get("secrets"), options.get("egress_asking", False)
        say = options.get("on_progress") or (lambda _msg: None)
        t0 = time.monotonic()
        if decision is None or policy is None:  # not decided by the session composer: decide here
            try:
                policy = policy or load_policy()
            except PolicyError as exc:
                raise SandboxFailed(f"No session can start: {exc.message}", hint=exc.hint) from exc
            decision = policy.check_folder(folder)
        if not decision.allowed or decision.folder is None:
            raise SandboxFailed(decision.reason)
        folder = decision.folder
        host = options.get("host")
        try:
            remote = await choose_host(policy, host) if policy.sandbox_hosts or host else None
            if remote is not None:
                rvm, guest, accel, started = await boot_remote(remote, policy, folder, decision.read_only, say)
                vm: Machine = rvm
                timings = BootTimings(accel, started, time.monotonic() - t0)
        except PaddockError as exc:
            raise SandboxFailed(exc.message, hint=exc.hint) from exc
        if remote is None:
            vm, guest, timings = await _boot_here(folder, decision, options, say, t0)
        sandbox = cls(vm, guest, folder, timings)
        sandbox.read_only = decision.read_only
        sandbox._watchdog = asyncio.ensure_future(sandbox._watch_agent())
        if policy.grants or (egress_asking and policy.allow_asking):
            say("Opening the network paths your organisation allows")
            try:
                await sandbox._open_egress(policy, secrets)
            except BaseException:
                await sandbox.close()
                raise
        say("Sandbox ready")
        log.debug("sandbox %s: ready on %s (%s, %.2f s, %s)", vm.id, folder, timings.accel.accel.value,
                  timings.ready_s, "woken" if timings.restored else "cold")  # fmt: skip
        return sandbox

    def change_guard(self) -> tuple[Guard | None, str]:
        """The folder's change guard (``paddock.vm.guard``) if it runs, else why not."""
        if not isinstance(self.vm, VirtualMachine):
            return None, "the sandbox runs on a sandbox host; files come back through the folder sync"
        guard = self.vm.guards.get("workspace")
        why = self.vm.guard_failures.get("workspace", "")
        return (guard, "") if guard is not None and guard.active else (None, why)

    async def _open_egress(self, policy: EffectivePolicy, secrets: dict[str, str] | None) -> None:
        """Start the gateway, mint this boot's token, tell the guest, open the tunnel."""
        grant_ids = [g.id for g in policy.grants]
        if secrets is None:
            secrets = _secrets_for(policy)
        self.gateway = EgressGateway(runtime_dir() / f"gw-{self.vm.id}", self.vm.id, policy.grants, secrets)
        try:
            await self.gateway.start()
        except PaddockError as exc:
            raise SandboxFailed(exc.message, hint=exc.hint) from exc
        self.token = TokenAuthority().mint(self.vm.id, grant_ids)
        proxy = f"http://paddock:{self.token.value}@127.0.0.1:{EGRESS_PORT}"
        ca = "/etc/ssl/certs/paddock-egress-ca.pem"
        env = {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy,
               "SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca, "CURL_CA_BUNDLE": ca}  # fmt: skip
        await self.guarded(self.guest.configure(env=env, ca_pem=self.gateway.ca_cert_pem))
        self._tunnel = asyncio.ensure_future(self.guest.egress_tunnel(self.gateway.port, self.gateway.alive))
        self.gateway.exit_listeners.append(self._gateway_stopped)

    def _gateway_stopped(self, reason: str) -> None:
        """The gateway crashed: close the egress channel (its port may be anyone's now)."""
        log.warning("sandbox %s: %s", self.vm.id, reason)
        if self._tunnel is not None:
            self._tunnel.cancel()

    async def guarded(self, aw: Awaitable[T]) -> T:
        """Await a guest call, turning a VM failure into SandboxFailed with its reason."""
        return await unless_failed(self.vm, aw)

    async def exec(
        self, argv: list[str], *, cwd: str = "", timeout_s: float = 0.0, stdin: bytes = b""
    ) -> AsyncIterator[ExecEvent]:
        """Stream a command's events; a VM failure mid-command raises SandboxFailed. On a sandbox
        host, the folder is sent before and brought back after (see ``sync``)."""
        await self.sync(back=False, unless_held=True)
        events = self.guest.exec(argv, cwd=cwd, timeout_s=timeout_s, stdin=stdin).__aiter__()
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
                if isinstance(ev, ExecStarted):
                    for listener in self.exec_listeners:
                        listener(ev.exec_id)
                yield ev
        finally:
            with contextlib.suppress(BaseException):
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
        if not isinstance(self.vm, RemoteMachine) or not self.alive or (unless_held and self._held):
            return None
        async with self._sync_lock:
            return await self._sync(back=back)

    async def _sync(self, *, back: bool) -> SyncReport | None:
        if not isinstance(self.vm, RemoteMachine) or not self.alive or (back and self.read_only):
            return None
        try:
            report = await unless_failed(self.vm, self.vm.pull() if back else self.vm.push())
        except PaddockError as exc:
            await self.vm.fail(exc.message)
            raise SandboxFailed(exc.message) from exc
        for listener in self.sync_listeners:
            listener(report)
        return report

    async def _watch_agent(self) -> None:
        """Ping the agent; one that does not answer for WATCHDOG_TIMEOUT_S (hung, stopped) fails the VM,
        so every waiting call gets SandboxFailed instead of hanging."""
        while self.vm.state is VMState.READY:
            await asyncio.sleep(WATCHDOG_INTERVAL_S)
            if isinstance(self.vm, VirtualMachine) and self.vm.paused:
                continue  # paused while it waits (``paused_when_idle``): nothing runs to hang
            try:
                await asyncio.wait_for(self.guest.health(), WATCHDOG_TIMEOUT_S)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - any failure to answer counts
                if self.vm.state is VMState.READY:
                    await self.vm.fail(
                        f"The sandbox's helper inside the VM did not answer for {WATCHDOG_TIMEOUT_S:.0f} s; "
                        "the sandbox was stopped."
                    )
                return

    async def close(self) -> None:
        log.debug("sandbox %s: closing (%s)", self.vm.id, self.vm.state.value)
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(BaseException):
                await self._watchdog
        if self._tunnel is not None:
            self._tunnel.cancel()
            with contextlib.suppress(BaseException):
                await self._tunnel
        if self.token is not None:
            TokenAuthority().revoke(self.token.token_id)  # the token dies with the session
        for listener in self.close_listeners:
            listener()
        if self.gateway is not None:
            await self.gateway.stop()
        await self.guest.close()
        await self.vm.stop()

    @property
    def host_name(self) -> str | None:
        """The sandbox host this sandbox runs on (None: this computer)."""
        return self.vm.host.name if isinstance(self.vm, RemoteMachine) else None

    @property
    def where(self) -> str:
        """Where and how it runs, in plain words (the window's status)."""
        label = self.timings.accel.accel.label
        return f"on {self.host_name}, {label}" if self.host_name else label

    @property
    def alive(self) -> bool:
        return self.vm.state is VMState.READY
