"""How to boot a sandbox, as one value: ``BootRequest`` (what ``Sandbox.start`` is given; every
field but the folder has a default)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from paddock.policy import EffectivePolicy, FolderDecision
from paddock.sandbox.warm import WarmPool
from paddock.vm import GuestImage, Keeper


@dataclass(frozen=True)
class BootRequest:
    """One sandbox to boot on ``folder``."""

    folder: Path
    policy: EffectivePolicy | None = None  # default: loaded at boot
    decision: FolderDecision | None = None  # the folder as the session decided it with ``policy``
    image: GuestImage | None = None  # default: the installed image
    profile: Path | None = None  # default: the person's agent profile
    memory_mib: int = 1024  # guest memory
    secrets: Mapping[str, str] | None = None  # the real keys grants attach (default: from the keychain)
    # Start the egress gateway even with no grants (where policy allows asking), so a refused
    # request can become a question.
    egress_asking: bool = False
    # Commands run as the guest's root (the fence tests' attacker who escalated inside the guest);
    # always a cold boot.
    guest_root: bool = False
    # Asked before the guest's folder-sharing daemon changes a file in the folder (the undo store,
    # which keeps what a restore point needs first): ``paddock.vm.guard``. Here only: on a sandbox
    # host the folder changes here only when the sync brings files back.
    keeper: Keeper | None = None
    # False: the change guard does not see read opens (the benchmark that measures what seeing
    # them costs). True: sensitive reads in the folder are seen and taint the session (#32; here only).
    watch_reads: bool = True
    warm: WarmPool | None = None  # where a sandbox woken ahead of time may wait (the window's): taken, never returned
    host: str | None = None  # a sandbox host policy names (default: the least loaded one policy assigns, else here)
