"""The guest kernel loads no modules: module loading is not built in (``CONFIG_MODULES`` off,
``guest_image/kernel/paddock.config``), so even the guest's root (an attacker who escalated
inside) cannot add code to the kernel that stands between commands and the agent. Real: a
booted sandbox whose commands run as the guest's root. Debian's generic kernel, booted before,
took modules (its initramfs loaded eight), so both checks failed there.
"""

from __future__ import annotations

import pytest

from tests.conftest import Booted

pytestmark = pytest.mark.vm

# init_module(2) and finit_module(2) on x86_64; a kernel without module support answers ENOSYS.
PROBE = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "for nr, args in ((175, (None, 0, b'')), (313, (os.open('/dev/null', os.O_RDONLY), b'', 0))):\n"
    "    ctypes.set_errno(0)\n"
    "    print(libc.syscall(nr, *args), ctypes.get_errno())\n"
)


def test_guest_root_cannot_load_a_kernel_module(booted_as_guest_root: Booted) -> None:
    out, err, code = booted_as_guest_root.sh("id -u; test -e /proc/modules && echo has-proc-modules; true")
    assert code == 0, err
    assert out.split() == ["0"], out  # really the guest's root, and no /proc/modules
    out, err, code = booted_as_guest_root.run(["python3", "-c", PROBE])
    assert code == 0, err
    assert out.split() == ["-1", "38", "-1", "38"], out  # ENOSYS for both system calls
