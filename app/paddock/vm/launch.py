"""Starting a VM, the one way: the image, the host's tools and the accelerator found once
(``Launcher.find``), then ``Launcher.start`` with the shares. The sandbox's cold boot
(``paddock.sandbox.local``) and a sandbox host's server (``paddock remote serve``,
``paddock.remote.server``) both start their VM here; a VM that fails to start is stopped."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paddock.vm.accel import AccelChoice, choose_accel
from paddock.vm.config import Share, VMConfig
from paddock.vm.host import HostTools
from paddock.vm.image import GuestImage, find_image
from paddock.vm.machine import VirtualMachine


@dataclass(frozen=True)
class Launcher:
    """What this computer boots a guest with."""

    image: GuestImage
    tools: HostTools
    accel: AccelChoice

    @classmethod
    async def find(cls, image: GuestImage | None = None) -> Launcher:
        """The installed image (or ``image``), QEMU and its helpers, and the accelerator that works."""
        image = image or find_image()
        tools = HostTools.find()
        return cls(image, tools, await choose_accel(image, tools))

    def config(
        self, shares: tuple[Share, ...] = (), *, memory_mib: int = 1024, guest_root: bool = False, hotplug: bool = False
    ) -> VMConfig:
        return VMConfig(
            image=self.image, accel=self.accel.accel, shares=shares, tools=self.tools, memory_mib=memory_mib,
            guest_root=guest_root, hotplug=hotplug,
        )  # fmt: skip

    async def start(self, config: VMConfig, *, incoming: Path | None = None) -> VirtualMachine:
        """Start a VM from ``config`` (from a saved state: ``incoming``); stopped again if it fails to."""
        vm = VirtualMachine(config)
        try:
            await vm.start(incoming)
        except BaseException:
            await vm.stop()
            raise
        return vm
