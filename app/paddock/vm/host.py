"""What the host offers the VM layer: binaries, accelerator, with reasons."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from paddock.core.errors import PaddockError

VIRTIOFSD_CANDIDATES = ("/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd", "/usr/bin/virtiofsd")


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
    virtiofsd: Path
    bwrap: Path

    @classmethod
    def find(cls) -> HostTools:
        qemu = os.environ.get("PADDOCK_QEMU") or shutil.which("qemu-system-x86_64")
        if not qemu:
            raise HostError("QEMU is not installed.", hint="Install it with: sudo apt-get install qemu-system-x86")
        virtiofsd = os.environ.get("PADDOCK_VIRTIOFSD") or next(
            (c for c in VIRTIOFSD_CANDIDATES if os.access(c, os.X_OK)), None
        )
        if not virtiofsd:
            raise HostError(
                "virtiofsd (which shares your folder with the sandbox) is not installed.",
                hint="Install it with: sudo apt-get install qemu-system-x86",
            )
        bwrap = shutil.which("bwrap")
        if not bwrap:
            raise HostError(
                "bubblewrap (which confines the folder-sharing helper) is not installed.",
                hint="Install it with: sudo apt-get install bubblewrap",
            )
        return cls(qemu=Path(qemu), virtiofsd=Path(virtiofsd), bwrap=Path(bwrap))

    def qemu_version(self) -> str:
        out = subprocess.run([str(self.qemu), "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.splitlines()[0] if out.stdout else "unknown"


def kvm_usable() -> tuple[bool, str]:
    """Whether /dev/kvm can be opened. Not proof that a guest boots on it (see accel.probe)."""
    if not os.path.exists("/dev/kvm"):
        return False, "/dev/kvm does not exist"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm exists but this user cannot open it (add yourself to the kvm group)"
    return True, "/dev/kvm is present"
