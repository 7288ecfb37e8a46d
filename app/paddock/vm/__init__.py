"""The sandbox VM: QEMU and virtiofsd, started and supervised. The only user of qemu.qmp."""

from paddock.vm.accel import AccelChoice, choose_accel
from paddock.vm.config import Share, StateError, VMConfig, VMError, VMState, qemu_fingerprint
from paddock.vm.guard import Guard, Keeper, ReadWatcher
from paddock.vm.host import Accel, HostError, HostTools, kvm_usable
from paddock.vm.image import GuestImage, ImageError, Layer, find_image
from paddock.vm.launch import Launcher
from paddock.vm.machine import VirtualMachine
from paddock.vm.sharing import Daemon, FolderSharing, SharingError, share_handle_limit, user_namespaces_work

__all__ = [
    "Accel",
    "AccelChoice",
    "Daemon",
    "FolderSharing",
    "Guard",
    "GuestImage",
    "HostError",
    "HostTools",
    "ImageError",
    "Keeper",
    "Launcher",
    "Layer",
    "ReadWatcher",
    "Share",
    "SharingError",
    "StateError",
    "VMConfig",
    "VMError",
    "VMState",
    "VirtualMachine",
    "choose_accel",
    "find_image",
    "kvm_usable",
    "qemu_fingerprint",
    "share_handle_limit",
    "user_namespaces_work",
]
