"""The guest's own kernel (``guest_image/kernel.py``, ``guest_image/kernel/paddock.config``): all it
needs built in, and no module loading at all. Real: the built image's own initrd and the final
``.config`` its kernel was built from (beside it in the image, its SHA-256 in the manifest), and
the build's own check of a ``.config`` against the fragment.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from paddock.vm import GuestImage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "guest_image"))
from kernel import FRAGMENT, config_values, fragment_options, unmet

# What the guest cannot run without (the boot, the root, the shares, the agent's port, commands'
# limits and file watch), and the hardening kept at the sandbox boundary.
MUST_HAVE = [
    "CONFIG_PVH", "CONFIG_ACPI", "CONFIG_HOTPLUG_PCI_PCIE", "CONFIG_VIRTIO_MMIO", "CONFIG_VIRTIO_PCI",
    "CONFIG_VIRTIO_BLK", "CONFIG_VIRTIO_CONSOLE", "CONFIG_SERIAL_8250_CONSOLE", "CONFIG_RTC_DRV_CMOS",
    "CONFIG_RTC_INTF_SYSFS",
    "CONFIG_BLK_DEV_INITRD", "CONFIG_DEVTMPFS", "CONFIG_SQUASHFS", "CONFIG_SQUASHFS_LZ4", "CONFIG_OVERLAY_FS",
    "CONFIG_TMPFS", "CONFIG_FUSE_FS", "CONFIG_VIRTIO_FS", "CONFIG_FANOTIFY", "CONFIG_INOTIFY_USER",
    "CONFIG_UNIX", "CONFIG_INET", "CONFIG_CGROUPS", "CONFIG_MEMCG", "CONFIG_CGROUP_PIDS",
    "CONFIG_FAIR_GROUP_SCHED", "CONFIG_SLUB_DEBUG", "CONFIG_FUTEX", "CONFIG_EPOLL", "CONFIG_SHMEM",
    "CONFIG_SYSVIPC", "CONFIG_POSIX_MQUEUE",
    "CONFIG_SECCOMP_FILTER", "CONFIG_NAMESPACES", "CONFIG_USER_NS", "CONFIG_PID_NS", "CONFIG_STRICT_KERNEL_RWX",
    "CONFIG_STACKPROTECTOR_STRONG", "CONFIG_VMAP_STACK", "CONFIG_HARDENED_USERCOPY", "CONFIG_FORTIFY_SOURCE",
    "CONFIG_PAGE_TABLE_ISOLATION", "CONFIG_RETPOLINE",
]  # fmt: skip
MUST_NOT = ["CONFIG_MODULES", "CONFIG_DEVMEM", "CONFIG_KEXEC", "CONFIG_BPF_SYSCALL", "CONFIG_HALTPOLL_CPUIDLE"]


def _cpio_files(data: bytes) -> dict[str, bytes]:
    """The files of a newc cpio archive, by name."""
    files: dict[str, bytes] = {}
    pos = 0
    while True:
        header = data[pos : pos + 110]
        assert header[:6] == b"070701", f"not a newc header at {pos}"
        size, namesize = int(header[54:62], 16), int(header[94:102], 16)
        name = data[pos + 110 : pos + 110 + namesize - 1].decode()
        start = (pos + 110 + namesize + 3) & ~3
        if name == "TRAILER!!!":
            return files
        files[name] = data[start : start + size]
        pos = (start + size + 3) & ~3


def test_the_initrd_loads_no_modules(guest_image: GuestImage) -> None:
    files = _cpio_files(guest_image.initrd.read_bytes())
    assert sorted(files) == [".", "bin", "bin/busybox", "init"], sorted(files)
    assert b"insmod" not in files["init"] and b"modules" not in files["init"]


def test_the_image_kernel_was_built_from_the_fragment_with_no_module_loading(guest_image: GuestImage) -> None:
    config = (guest_image.root / "kernel.config").read_text()
    manifest = json.loads((guest_image.root / "manifest.json").read_text())
    assert manifest["sha256"]["kernel.config"] == hashlib.sha256(config.encode()).hexdigest()
    assert manifest["kernel"]["config_fragment_sha256"] == hashlib.sha256(FRAGMENT.read_bytes()).hexdigest()
    assert guest_image.kernel_version.endswith("-paddock"), guest_image.kernel_version
    values = config_values(config)
    assert [name for name in MUST_HAVE if values.get(name) != "y"] == []
    assert [name for name in MUST_NOT if values.get(name, "n") != "n"] == []
    assert unmet(config) == []


def test_the_fragment_asks_for_every_must_have_and_no_modules() -> None:
    options = fragment_options()
    assert options["CONFIG_MODULES"] == "n"
    assert [name for name in MUST_HAVE if name not in options and name not in _DEFAULT_ON] == []


# On in any allnoconfig kernel whose expert options are hidden (their default is on): not asked.
_DEFAULT_ON = {"CONFIG_FUTEX", "CONFIG_EPOLL", "CONFIG_SHMEM"}


def test_the_build_refuses_a_config_that_did_not_take_the_fragment() -> None:
    config = "\n".join(f"{k}={v}" if v != "n" else f"# {k} is not set" for k, v in fragment_options().items())
    assert unmet(config) == []
    # A dependency missing: the option is simply absent from the final .config.
    lacking = config.replace("CONFIG_VIRTIO_FS=y", "")
    assert unmet(lacking) == ["CONFIG_VIRTIO_FS=y (got n)"]
    # Module loading back on: refused too.
    assert unmet(config.replace("# CONFIG_MODULES is not set", "CONFIG_MODULES=y")) == ["CONFIG_MODULES=n (got y)"]
