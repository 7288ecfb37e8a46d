"""Choose KVM or TCG: KVM only when a probe boot of the real guest shows it works.

On some hosts /dev/kvm exists but a stock guest kernel aborts or hangs on it
(nested paging here), so the presence of the device proves nothing. The probe
boots the guest image without shares under KVM and waits for the agent's
"ready" line on the console. The verdict is cached per host kernel, QEMU and
image, so the probe runs once.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
from dataclasses import dataclass

from paddock.core.paths import cache_dir
from paddock.vm.host import Accel, HostTools, kvm_usable
from paddock.vm.image import GuestImage

PROBE_TIMEOUT_S = 15.0
READY_MARKER = b"paddock-agent: ready"


@dataclass(frozen=True)
class AccelChoice:
    accel: Accel
    reason: str


async def choose_accel(image: GuestImage, tools: HostTools | None = None) -> AccelChoice:
    """``PADDOCK_ACCEL`` (kvm, tcg or auto) overrides the probe."""
    forced = os.environ.get("PADDOCK_ACCEL", "auto").lower()
    if forced in ("kvm", "tcg"):
        return AccelChoice(Accel(forced), f"set by PADDOCK_ACCEL={forced}")
    ok, why = kvm_usable()
    if not ok:
        return AccelChoice(Accel.TCG, f"{why}; using software emulation")
    tools = tools or HostTools.find()
    key = f"{platform.release()}|{tools.qemu_version()}|{image.hash}"
    cache = cache_dir() / "accel-probe.json"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return AccelChoice(Accel(cached["accel"]), str(cached["reason"]))
    except (OSError, ValueError, KeyError):
        pass
    works, detail = await probe_kvm(image, tools)
    choice = (
        AccelChoice(Accel.KVM, "KVM works (probe boot succeeded)")
        if works
        else AccelChoice(
            Accel.TCG, f"/dev/kvm is present but a guest does not boot on it ({detail}); using software emulation"
        )
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "accel": choice.accel.value, "reason": choice.reason}))
    return choice


async def probe_kvm(image: GuestImage, tools: HostTools) -> tuple[bool, str]:
    # Imported here: machine imports this module's siblings only.
    from paddock.vm.config import VMConfig
    from paddock.vm.machine import VirtualMachine

    vm = VirtualMachine(VMConfig(image=image, accel=Accel.KVM, shares=(), tools=tools, memory_mib=256))
    try:
        try:
            await vm.start()
        except Exception as exc:  # noqa: BLE001 - any failure means "no"
            return False, f"QEMU refused: {exc}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROBE_TIMEOUT_S
        while loop.time() < deadline:
            if vm.failure:
                return False, vm.failure
            try:
                if READY_MARKER in vm.console_log.read_bytes():
                    return True, "ready"
            except OSError:
                pass
            await asyncio.sleep(0.1)
        return False, f"no sign of life in {PROBE_TIMEOUT_S:.0f} s"
    finally:
        await vm.stop()
