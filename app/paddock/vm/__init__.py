"""The sandbox VM: QEMU and virtiofsd, started and supervised. The only user of qemu.qmp."""

from paddock.vm.accel import AccelChoice, choose_accel
from paddock.vm.host import Accel, HostError, HostTools, kvm_usable
from paddock.vm.image import GuestImage, ImageError, find_image
from paddock.vm.machine import Share, StateError, VirtualMachine, VMConfig, VMError, VMState

__all__ = [
    "Accel",
    "AccelChoice",
    "GuestImage",
    "HostError",
    "HostTools",
    "ImageError",
    "Share",
    "StateError",
    "VMConfig",
    "VMError",
    "VMState",
    "VirtualMachine",
    "choose_accel",
    "find_image",
    "kvm_usable",
]
