"""What a VM is made of: its states, its configuration, and the QEMU command line built from
them. Nothing a user or the guest chose reaches an argument: paths have their commas escaped,
and shared folders appear only as sockets in the VM's private run folder."""

from __future__ import annotations

import enum
import functools
import hashlib
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, TypeVar

from paddock.core.errors import PaddockError
from paddock.vm.guard import Keeper, ReadWatcher
from paddock.vm.host import Accel, HostTools
from paddock.vm.image import GuestImage

AGENT_PORT_NAME = "paddock.agent"


class VMState(enum.Enum):
    STOPPED = "stopped"
    BOOTING = "booting"
    READY = "ready"
    STOPPING = "stopping"
    FAILED = "failed"


class VMError(PaddockError):
    """The sandbox VM could not do what was asked."""


class StateError(VMError):
    """A method was called in a state that does not allow it."""


@dataclass(frozen=True)
class Share:
    """A host folder shown to the guest under ``tag`` (mounted by the guest's init)."""

    tag: str
    host_path: Path
    read_only: bool
    # Asked before the guest's daemon changes a file (``paddock.vm.guard``); None: no guard.
    keeper: Keeper | None = field(default=None, compare=False)
    # Told of every file the guest's daemon opens to read (the sensitive-read watch, #32); None: not watched.
    reads: ReadWatcher | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.tag.isidentifier():
            raise ValueError(f"share tag must be a plain word: {self.tag!r}")


@dataclass(frozen=True)
class VMConfig:
    image: GuestImage
    accel: Accel
    shares: tuple[Share, ...] = ()
    memory_mib: int = 1024
    cpus: int = 1
    tools: HostTools = field(default_factory=HostTools.find)
    # Snapshot mode: a PCIe bus with hot-plug ports, no shares on the command line (a
    # vhost-user-fs device blocks migration); ``attach_shares`` adds them after a restore.
    hotplug: bool = False
    # Commands run as the guest's root instead of its ordinary user: the fence tests' attacker
    # who escalated inside the guest. Never a saved sandbox (its command line is fixed).
    guest_root: bool = False


HOTPLUG_PORTS = 2
MIGRATION_TIMEOUT_S = 60.0


def qemu_escape(value: str | os.PathLike[str]) -> str:
    """Escape a value for QEMU's comma-separated option syntax."""
    text = os.fspath(value)
    if "\n" in text or "\x00" in text:
        raise VMError(f"refusing a path with control characters: {text!r}")
    return text.replace(",", ",,")


DEFAULT_TSC_KHZ = 2_000_000


def host_tsc_khz(cpuinfo: Path = Path("/proc/cpuinfo")) -> int:
    """The rate of the host's time-stamp counter, in kHz: half its ``bogomips`` (x86 calibrates
    its delay loop from the TSC: bogomips = 2 × the TSC's MHz), readable by anyone, unlike the
    kernel's log. 2 GHz where it says nothing plausible (the guest's clock is then off by the
    ratio, as it always was before)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "bogomips":
                khz = round(float(value) * 500)
                return khz if 500_000 <= khz <= 10_000_000 else DEFAULT_TSC_KHZ
    except (OSError, ValueError):
        pass
    return DEFAULT_TSC_KHZ


def kernel_cmdline(config: VMConfig) -> str:
    # cryptomgr.notests: the kernel's self-tests of its crypto algorithms ran at every boot, about
    # a quarter of the kernel's time before init under emulation (docs/BENCHMARKS.md, #33).
    args = ["console=ttyS0", "panic=-1", "cryptomgr.notests"]
    if config.hotplug:
        args.append("pcie_ports=native")  # pciehp takes hot-plugged shares without ACPI _OSC
    if config.accel is Accel.TCG:
        # Under TCG the early TSC calibration fails now and then and the kernel hangs before
        # init; a fixed rate avoids it. The emulated TSC is the host's own counter, so the rate
        # given is the host's (with 2 GHz on a 2.6 GHz host the guest's clock ran 1.3× fast: its
        # uptimes, sleeps and time-outs), and the watchdog that would demote it to jiffies when
        # the host is busy is not needed.
        args += [f"tsc_early_khz={host_tsc_khz()}", "tsc=reliable"]
    if not os.environ.get("PADDOCK_GUEST_VERBOSE"):
        args += ["quiet", "loglevel=3"]
    if config.guest_root:
        args.append("paddock.exec_as_root")
    if config.image.layers:
        args.append("paddock.layer")  # the init waits for the layer's disk and lays it over the root
    return " ".join(args)


# No PIT: under QEMU 10 the guest kernel died early in about one cold boot in three with it
# (a divide error in start_kernel); QEMU 7.2 boots as well without it (docs/BENCHMARKS.md).
MACHINE = "microvm,memory-backend=mem,isa-serial=on,pit=off,pic=on,rtc=on"


@functools.lru_cache(maxsize=4)
def _fingerprint(qemu: Path) -> str:
    version = subprocess.run([str(qemu), "--version"], capture_output=True, text=True, timeout=10).stdout
    # The counter rate the guest was told (TCG): a guest saved with another keeps its clock's pace.
    return hashlib.sha256(f"{version}\n{MACHINE}\n{host_tsc_khz()}\n".encode()).hexdigest()[:8]


def qemu_fingerprint(tools: HostTools | None = None) -> str:
    """Which QEMU and machine a saved state belongs to: a short hash of QEMU's version line, the
    machine type (a state saved by one does not load in another) and the counter rate the guest
    is told (``kernel_cmdline``)."""
    return _fingerprint((tools or HostTools.find()).qemu)


def qemu_argv(config: VMConfig, vm_id: str, run_dir: Path) -> list[str]:
    cfg = config
    img = cfg.image
    e = qemu_escape
    mem = f"{cfg.memory_mib}M"
    machine = MACHINE
    if cfg.hotplug:
        machine = machine.replace("microvm,", "microvm,pcie=on,acpi=on,")
    argv = [
            str(cfg.tools.qemu),
            "-name", f"paddock-{vm_id}",
            "-machine", machine,
            "-accel", cfg.accel.value,
            "-cpu", "host" if cfg.accel is Accel.KVM else "max",
            "-m", mem,
            "-smp", str(cfg.cpus),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
            "-object", f"memory-backend-memfd,id=mem,size={mem},share=on",
            "-kernel", e(img.kernel),
            "-initrd", e(img.initrd),
            "-append", kernel_cmdline(config),
            "-global", "virtio-mmio.force-legacy=false",
            "-drive", f"if=none,id=root,file={e(img.rootfs)},format=raw,readonly=on",
            "-device", "virtio-blk-device,drive=root",
            *_layer_drives(img),
            "-device", "virtio-serial-device",
            "-chardev", f"socket,id=agent,path={e(run_dir / 'agent.sock')},server=on,wait=off",
            "-device", f"virtserialport,chardev=agent,name={AGENT_PORT_NAME}",
            "-chardev", f"file,id=con,path={e(run_dir / 'console.log')}",
            "-serial", "chardev:con",
            "-chardev", f"socket,id=qmp,path={e(run_dir / 'qmp.sock')}",
            "-mon", "chardev=qmp,mode=control",
        ]  # fmt: skip
    if cfg.hotplug:
        for i in range(HOTPLUG_PORTS):
            argv += ["-device", f"pcie-root-port,id=rp{i},bus=pcie.0,chassis={i + 1},slot={i + 1}"]
        return argv
    for share in cfg.shares:
        sock = run_dir / f"fs-{share.tag}.sock"
        argv += [
                "-chardev", f"socket,id=fs-{share.tag},path={e(sock)}",
                "-device", f"vhost-user-fs-device,chardev=fs-{share.tag},tag={share.tag}",
            ]  # fmt: skip
    return argv


def _layer_drives(img: GuestImage) -> list[str]:
    """The optional read-only layers (#34), each a disk the guest's init knows by its serial."""
    argv = []
    for i, layer in enumerate(img.layers):
        argv += [
                "-drive", f"if=none,id=layer{i},file={qemu_escape(layer.path)},format=raw,readonly=on",
                "-device", f"virtio-blk-device,drive=layer{i},serial=paddock-layer",
            ]  # fmt: skip
    return argv


P = ParamSpec("P")
R = TypeVar("R")


def requires(*states: VMState) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Guard a method by the states it accepts (after qemu.qmp's ``@require``)."""

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            state = getattr(args[0], "state")  # noqa: B009 - any object with a VM state
            if state not in states:
                allowed = ", ".join(s.value for s in states)
                raise StateError(f"{fn.__name__}() needs the VM to be {allowed}, but it is {state.value}")
            return fn(*args, **kwargs)

        return wrapper

    return decorator
