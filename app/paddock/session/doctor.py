"""``paddock doctor``: what the host has, in plain words, and what to fix."""

from __future__ import annotations

import os
from dataclasses import dataclass

from paddock.core.errors import PaddockError
from paddock.credentials import backend_status
from paddock.egress import find_mitmdump
from paddock.vm import HostTools, choose_accel, find_image, kvm_usable


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    required: bool = True


async def run_checks(*, probe: bool = True) -> list[Check]:
    checks: list[Check] = []
    tools: HostTools | None = None
    try:
        tools = HostTools.find()
        checks.append(Check("QEMU", True, tools.qemu_version()))
        checks.append(Check("Folder sharing (virtiofsd)", True, str(tools.virtiofsd)))
        checks.append(Check("Bubblewrap", True, str(tools.bwrap)))
    except PaddockError as exc:
        checks.append(Check("Host tools", False, exc.message, exc.hint))
    image = None
    try:
        image = find_image()
        sizes = sum(image.sizes.values()) / 1e6
        checks.append(Check("Sandbox image", True, f"{image.root} (kernel {image.kernel_version}, {sizes:.0f} MB)"))
    except PaddockError as exc:
        checks.append(Check("Sandbox image", False, exc.message, exc.hint))
    if os.geteuid() != 0:
        checks.append(Check(
            "Permissions", False,
            "this build shares folders with the C virtiofsd of QEMU 7.2, which needs root",
            "Run Paddock as root for now; an unprivileged virtiofsd is planned."))  # fmt: skip
    try:
        checks.append(Check("Egress gateway (mitmproxy)", True, str(find_mitmdump()), required=False))
    except PaddockError as exc:
        checks.append(Check("Egress gateway (mitmproxy)", False, exc.message, exc.hint, required=False))
    ok, why = kvm_usable()
    if image is not None and tools is not None and probe:
        choice = await choose_accel(image, tools)
        checks.append(
            Check(
                "Accelerator",
                True,
                f"{choice.accel.label}: {choice.reason}",
                None
                if choice.accel.value == "kvm"
                else "Software emulation works, only slower (a few seconds to start).",
            )
        )
    else:
        detail = (
            f"not tested ({why}); `paddock doctor` without --no-probe test-boots under KVM"
            if ok
            else (f"software emulation ({why})")
        )
        checks.append(Check("Accelerator", True, detail))
    try:
        kc = backend_status()
        checks.append(
            Check(
                "Keychain",
                kc.acceptable,
                f"{kc.name}: {kc.detail}",
                None
                if kc.acceptable
                else "Start your desktop's keyring (GNOME Keyring or KWallet), or set "
                "ANTHROPIC_API_KEY for headless use.",
                required=False,
            )
        )
    except Exception as exc:  # noqa: BLE001 - a broken keyring must not break doctor
        checks.append(Check("Keychain", False, f"the keychain could not be checked: {exc}", required=False))
    return checks
