"""``paddock doctor``: what the host has, in plain words, and what to fix."""

from __future__ import annotations

import resource
from dataclasses import dataclass

from paddock.core.errors import PaddockError
from paddock.credentials import backend_status
from paddock.egress import find_mitmdump
from paddock.policy import EffectivePolicy, PolicyError, credential_warnings, load
from paddock.vm import HostTools, SharingError, choose_accel, find_image, kvm_usable
from paddock.vm.jail import find_jail, jail_check

SLOW_HINT = "Software emulation works, only slower (a few seconds to start)."
KVM_HINT = (
    "Software emulation works, only slower. To start faster, ask your administrator to add your account "
    "to the kvm group, then log out and in again."
)


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
    # The jail is probed first, as the person: where the system forbids it (Ubuntu's AppArmor
    # restriction), everything that runs in it fails too, and only this says why and what to do.
    bwrap = find_jail()
    jail = jail_check(bwrap) if bwrap is not None else None
    blocked = None if jail is None or jail.ok else Check("Folder sharing (virtiofsd)", False, jail.detail, jail.fix)
    try:
        tools = HostTools.find()
        checks.append(Check("QEMU", True, tools.qemu_version()))
        checks.append(Check("Bubblewrap", True, str(tools.bwrap)))
        checks.append(blocked or Check("Folder sharing (virtiofsd)", True, f"{tools.sharing.label}: {tools.virtiofsd}"))
    except SharingError as exc:
        checks.append(blocked or Check("Host tools", False, exc.message, exc.hint))
    except PaddockError as exc:
        checks.append(Check("Host tools", False, exc.message, exc.hint))
        if blocked:
            checks.append(blocked)
    image = None
    try:
        image = find_image()
        sizes = sum(image.sizes.values()) / 1e6
        checks.append(Check("Sandbox image", True, f"{image.root} (kernel {image.kernel_version}, {sizes:.0f} MB)"))
    except PaddockError as exc:
        checks.append(Check("Sandbox image", False, exc.message, exc.hint))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 65536:
        checks.append(Check(
            "Open files", False,
            f"your account may keep at most {hard:,} files open; the folder-sharing helper needs one per file "
            "the assistant touches, so a session can work on only about that many files",
            "Ask your administrator to raise the open-files limit (DefaultLimitNOFILE, /etc/security/limits.conf).",
            required=False))  # fmt: skip
    try:
        checks.append(Check("Egress gateway (mitmproxy)", True, str(find_mitmdump()), required=False))
    except PaddockError as exc:
        checks.append(Check("Egress gateway (mitmproxy)", False, exc.message, exc.hint, required=False))
    checks.append(grants_check())
    ok, why = kvm_usable()
    if image is not None and tools is not None and probe:
        choice = await choose_accel(image, tools)
        checks.append(
            Check(
                "Accelerator",
                True,
                f"{choice.accel.label}: {choice.reason}",
                None if choice.accel.value == "kvm" else KVM_HINT if not ok else SLOW_HINT,
            )
        )
    else:
        detail = (
            f"not tested ({why}); `paddock doctor` without --no-probe test-boots under KVM"
            if ok
            else (f"software emulation ({why})")
        )
        checks.append(Check("Accelerator", True, detail, None if ok else KVM_HINT))
    try:
        kc = backend_status()
        checks.append(
            Check(
                "Keychain",
                kc.acceptable,
                kc.detail,  # the backend's class name is for support (paddock support), not for this line
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


def grants_check(policy: EffectivePolicy | None = None) -> Check:
    """Egress grants that attach a credential without checking what goes with it (``api: any``),
    in the policy in effect (or ``policy``)."""
    try:
        warnings = credential_warnings((policy or load()).grants)
    except PolicyError as exc:
        return Check("Egress grants", False, exc.message, exc.hint, required=False)
    fix = 'Ask your administrator to name the API of each such grant ("anthropic-messages" or "openai-chat").'
    if warnings:
        return Check("Egress grants", False, " ".join(warnings), fix, required=False)
    return Check("Egress grants", True, "every grant that attaches a key says which API it serves", required=False)


@dataclass(frozen=True)
class FirstRun:
    needs_key: bool
    checks: list[Check]

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and c.required]
