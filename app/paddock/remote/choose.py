"""Which sandbox host a new session goes to: of the hosts policy assigns to this person, the
least loaded one that answers (and has room)."""

from __future__ import annotations

import asyncio
import getpass
import logging
from dataclasses import dataclass

from paddock.policy import EffectivePolicy, SandboxHost
from paddock.remote.ssh import Connection, RemoteError
from paddock.vm import HostTools, kvm_usable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Load:
    host: SandboxHost
    running: int | None  # None: did not answer
    why: str = ""


def can_virtualise() -> bool:
    """Whether this computer can run the sandbox well itself (QEMU present and KVM usable)."""
    try:
        HostTools.find()
    except Exception:  # noqa: BLE001 - any missing tool means no
        return False
    return kvm_usable()[0]


def assigned(policy: EffectivePolicy, *, user: str | None = None, virtualises: bool | None = None) -> list[SandboxHost]:
    """The hosts policy assigns to ``user`` on this computer (none: run here)."""
    if not policy.sandbox_hosts:
        return []
    user = user or getpass.getuser()
    local_ok = can_virtualise() if virtualises is None else virtualises
    return [h for h in policy.sandbox_hosts if h.serves(user, can_virtualise=local_ok)]


def named(policy: EffectivePolicy, name: str) -> SandboxHost:
    for h in policy.sandbox_hosts:
        if h.name == name:
            return h
    known = ", ".join(h.name for h in policy.sandbox_hosts) or "none"
    raise RemoteError(f"Policy names no sandbox host called {name!r} (named: {known}).")


def _load(host: SandboxHost, private_key: str | None) -> Load:
    try:
        conn = Connection.open(host, private_key)
    except RemoteError as exc:
        return Load(host, None, exc.message)
    try:
        result = conn.run("load")
        said = result.out.strip()
        if result.code != 0 or not said:  # an empty answer is no answer (not "the most room")
            return Load(host, None, "no answer")
        return Load(host, int(said)) if int(said) >= 0 else Load(host, None, "no answer")
    except (RemoteError, ValueError) as exc:
        return Load(host, None, str(exc))
    finally:
        conn.close()


async def least_loaded(hosts: list[SandboxHost], keys: dict[str, str | None]) -> SandboxHost:
    """The host with the most room left of those that answer; RemoteError saying why when none can."""
    if len(hosts) == 1:
        return hosts[0]
    loads = await asyncio.gather(*(asyncio.to_thread(_load, h, keys.get(h.name)) for h in hosts))
    usable = [ld for ld in loads if ld.running is not None and ld.running < ld.host.sessions]
    if not usable:
        why = "; ".join(f"{ld.host.name}: {ld.why or 'full'}" for ld in loads)
        raise RemoteError(f"No sandbox host can take a session now ({why}).")
    best = min(usable, key=lambda ld: ((ld.running or 0) / ld.host.sessions, ld.running))
    log.debug("sandbox host chosen: %s (%s of %s sessions)", best.host.name, best.running, best.host.sessions)
    return best.host
