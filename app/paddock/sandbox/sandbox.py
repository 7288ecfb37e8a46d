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
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, TypeVar, Unpack

from paddock.core.errors import PaddockError
from paddock.core.paths import profile_dir, runtime_dir
from paddock.credentials import Keychain, KeychainError
from paddock.egress import EgressGateway, SessionToken, TokenAuthority
from paddock.guest import ExecEvent, ExecStarted, GuestClient, GuestUnavailable
from paddock.policy import EffectivePolicy, FolderDecision, PolicyError
from paddock.policy import load as load_policy
from paddock.sandbox.guarded import BOOT_TIMEOUT_S, Progress, SandboxFailed, reason_for, unless_failed
from paddock.sandbox.warm import WarmPool, Woken, snapshot_path, snapshots_enabled, wake
from paddock.vm import (
    AccelChoice,
    GuestImage,
    HostTools,
    Share,
    VirtualMachine,
    VMConfig,
    VMState,
    choose_accel,
    find_image,
    share_handle_limit,
)

log = logging.getLogger(__name__)
EGRESS_PORT = 3128  # the guest agent's local end of the egress tunnel
WATCHDOG_INTERVAL_S = 5.0
WATCHDOG_TIMEOUT_S = float(os.environ.get("PADDOCK_WATCHDOG_TIMEOUT", "30"))
T = TypeVar("T")


@dataclass(frozen=True)
class BootTimings:
    accel: AccelChoice
    vm_started_s: float
    ready_s: float
    restored: bool = False  # woken from the saved sandbox rather than booted
    pooled: bool = False  # woken ahead of the folder (a ``WarmPool``'s) rather than after it
    stages: tuple[tuple[str, float], ...] = ()  # a wake's stages, in seconds, in order


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
    # Where a sandbox woken ahead of time may be waiting (the window's): taken, never returned.
    warm: WarmPool | None


class Sandbox:
    def __init__(self, vm: VirtualMachine, guest: GuestClient, folder: Path, timings: BootTimings) -> None:
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
        image, profile = options.get("image"), options.get("profile")
        on_progress, memory_mib = options.get("on_progress"), options.get("memory_mib", 1024)
        policy, decision = options.get("policy"), options.get("decision")
        secrets, egress_asking = options.get("secrets"), options.get("egress_asking", False)
        guest_root = options.get("guest_root", False)
        say = on_progress or (lambda _msg: None)
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
        try:
            image = image or find_image()
            tools = HostTools.find()
        except PaddockError as exc:
            raise SandboxFailed(exc.message, hint=exc.hint) from exc
        accel = await choose_accel(image, tools)
        shares = (
            Share("workspace", folder, read_only=decision.read_only),
            Share("profile", (profile or profile_dir()).resolve(), read_only=True),
        )
        woken, pooled = None, False
        if snapshots_enabled() and not guest_root:
            woken, pooled = await _woken(options.get("warm"), image, tools, accel, memory_mib=memory_mib, say=say)
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
            config = VMConfig(
                image=image, accel=accel.accel, shares=shares, tools=tools, memory_mib=memory_mib, guest_root=guest_root
            )
            vm, guest, started = await _cold_boot(config, say, t0)
        stages = tuple(woken.stages.items()) if woken is not None else ()
        timings = BootTimings(accel, started, time.monotonic() - t0, woken is not None, pooled, stages)
        sandbox = cls(vm, guest, folder, timings)
        sandbox._watchdog = asyncio.ensure_future(sandbox._watch_agent())
        if policy.grants or (egress_asking and policy.allow_asking):
            say("Opening the network paths your organisation allows")
            try:
                await sandbox._open_egress(policy, secrets)
            except BaseException:
                await sandbox.close()
                raise
        say("Sandbox ready")
        log.debug("sandbox %s: ready on %s (%s, %.2f s, %s)", vm.id, folder, accel.accel.value,
                  timings.ready_s, "woken" if timings.restored else "cold")  # fmt: skip
        return sandbox

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
        self._tunnel = asyncio.ensure_future(self.guest.egress_tunnel(self.gateway.port))

    async def guarded(self, aw: Awaitable[T]) -> T:
        """Await a guest call, turning a VM failure into SandboxFailed with its reason."""
        return await unless_failed(self.vm, aw)

    async def exec(
        self, argv: list[str], *, cwd: str = "", timeout_s: float = 0.0, stdin: bytes = b""
    ) -> AsyncIterator[ExecEvent]:
        """Stream a command's events; a VM failure mid-command raises SandboxFailed."""
        events = self.guest.exec(argv, cwd=cwd, timeout_s=timeout_s, stdin=stdin).__aiter__()
        try:
            while True:
                try:
                    ev = await unless_failed(self.vm, events.__anext__())
                except StopAsyncIteration:
                    return
                except GuestUnavailable as exc:
                    raise SandboxFailed(await reason_for(self.vm, exc)) from exc
                if isinstance(ev, ExecStarted):
                    for listener in self.exec_listeners:
                        listener(ev.exec_id)
                yield ev
        finally:
            with contextlib.suppress(BaseException):
                await events.aclose()  # type: ignore[attr-defined]

    async def _watch_agent(self) -> None:
        """Ping the agent; one that does not answer for WATCHDOG_TIMEOUT_S (hung, stopped) fails the VM,
        so every waiting call gets SandboxFailed instead of hanging."""
        while self.vm.state is VMState.READY:
            await asyncio.sleep(WATCHDOG_INTERVAL_S)
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
    def alive(self) -> bool:
        return self.vm.state is VMState.READY


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
        await unless_failed(vm, guest.wait_ready(BOOT_TIMEOUT_S))
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
    return vm, guest, started


def _secrets_for(policy: EffectivePolicy) -> dict[str, str]:
    """The real keys the grants name, from the keychain (they go to the gateway only)."""
    out: dict[str, str] = {}
    names = {g.credential for g in policy.grants if g.credential}
    if not names:
        return out
    chain = Keychain(allowed_fallback=policy.keychain_fallback)
    for name in names:
        try:
            value = chain.get(name)
        except KeychainError:
            continue  # the gateway then refuses that grant's requests, saying the credential is missing
        if value:
            out[name] = value
    return out
