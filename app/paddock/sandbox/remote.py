"""Booting the sandbox on a sandbox host (``paddock.remote``): which host, its key, the claim.

The guest is claimed from here, over the SSH channel, with a key made here: the server never
holds it, nor the session token or any real key (the gateway stays on this machine)."""

from __future__ import annotations

import time
from collections.abc import Callable

from paddock.credentials import Keychain, KeychainError
from paddock.guest import GuestClient
from paddock.policy import EffectivePolicy, FolderDecision, SandboxHost
from paddock.remote import RemoteError, RemoteMachine, assigned, least_loaded, named
from paddock.sandbox.placement import BootTimings, OnHost
from paddock.vm import Accel, AccelChoice

REMOTE_READY_TIMEOUT_S = 120.0


def private_key(host: SandboxHost, policy: EffectivePolicy) -> str | None:
    """The SSH key policy names for ``host`` from the keychain (None: use the ssh-agent)."""
    if host.key is None:
        return None
    try:
        value = Keychain(allowed_fallback=policy.keychain_fallback).get(host.key)
    except KeychainError as exc:
        raise RemoteError(f"The SSH key for the sandbox host {host.name!r} could not be read: {exc.message}") from exc
    if not value:
        raise RemoteError(
            f"The keychain has no SSH key called {host.key!r} for the sandbox host {host.name!r}.",
            hint=f"Store it with: paddock keys set {host.key}",
        )
    return value


async def choose_host(policy: EffectivePolicy, name: str | None) -> SandboxHost | None:
    """``name``'s host; else the least loaded of the hosts policy assigns (None: run here)."""
    if name is not None:
        return named(policy, name)
    hosts = assigned(policy)
    if not hosts:
        return None
    keys = {h.name: private_key(h, policy) for h in hosts}
    return await least_loaded(hosts, keys)


async def boot_remote(
    host: SandboxHost, policy: EffectivePolicy, decision: FolderDecision, say: Callable[[str], None], t0: float
) -> tuple[OnHost, GuestClient, BootTimings]:
    """Start the sandbox on ``host`` with a copy of the decided folder and claim its guest through
    the SSH channel."""
    assert decision.folder is not None
    say(f"Starting the sandbox on {host.name}")
    machine = await RemoteMachine.start(host, private_key(host, policy), decision.folder, read_only=decision.read_only)
    started = time.monotonic() - t0
    say(f"Waiting for the sandbox on {host.name} to be ready")
    guest = GuestClient(machine.agent_socket)
    try:
        await guest.wait_ready(REMOTE_READY_TIMEOUT_S)
        await guest.claim(share_handles=machine.share_handles)
        machine.mark_ready()
        try:
            how = Accel(machine.accel)
        except ValueError as exc:
            raise RemoteError(
                f"The sandbox host {host.name!r} named an unknown accelerator {machine.accel!r}."
            ) from exc
    except BaseException:
        await guest.close()
        await machine.stop()
        raise
    accel = AccelChoice(how, f"on the sandbox host {host.name}")
    return OnHost(machine), guest, BootTimings(accel, started, time.monotonic() - t0)
