"""What the host offers the VM layer: binaries, accelerator, with reasons."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from paddock.core.errors import PaddockError
from paddock.vm.jail import find_jail
from paddock.vm.sharing import FolderSharing, find_sharing


class HostError(PaddockError):
    """Something the host is missing."""


class Accel(Enum):
    KVM = "kvm"
    TCG = "tcg"

    @property
    def label(self) -> str:
        return "hardware virtualisation (KVM)" if self is Accel.KVM else "software emulation (TCG)"


@dataclass(frozen=True)
class HostTools:
    qemu: Path
    sharing: FolderSharing
    bwrap: Path

    @property
    def virtiofsd(self) -> Path:
        return self.sharing.binary

    @classmethod
    def find(cls) -> HostTools:
        qemu = os.environ.get("PADDOCK_QEMU") or shutil.which("qemu-system-x86_64")
        if not qemu:
            raise HostError("QEMU is not installed.", hint="Install it with: sudo apt-get install qemu-system-x86")
        bwrap = find_jail()  # Paddock's own copy when the package made one (see jail.py)
        if not bwrap:
            raise HostError(
                "bubblewrap (which confines the folder-sharing helper) is not installed.",
                hint="Install it with: sudo apt-get install bubblewrap",
            )
        return cls(qemu=Path(qemu), sharing=find_sharing(bwrap), bwrap=bwrap)

    def qemu_version(self) -> str:
        out = subprocess.run([str(self.qemu), "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.splitlines()[0] if out.stdout else "unknown"


def kvm_usable() -> tuple[bool, str]:
    """Whether /dev/kvm can be opened. Not proof that a guest boots on it (see accel.probe)."""
    if not os.path.exists("/dev/kvm"):
        return False, "/dev/kvm does not exist"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm exists but your account may not use it (it is not in the kvm group)"
    return True, "/dev/kvm is present"
