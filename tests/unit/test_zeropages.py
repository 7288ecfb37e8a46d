"""Giving back a woken guest's all-zero RAM pages (``paddock.vm.zeropages``), on a real memfd:
the contents read back the same, and the zero pages no longer take host memory."""

from __future__ import annotations

import mmap
import os

from paddock.vm.zeropages import PAGE, _punch

SIZE = 256 * PAGE


def test_only_all_zero_pages_are_given_back_and_every_byte_reads_the_same() -> None:
    fd = os.memfd_create("guest-ram-test")
    try:
        os.ftruncate(fd, SIZE)
        with mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as mem:
            mem[:] = bytes(SIZE)  # every page allocated, as after loading a saved state
            written = {3: b"\x01", 4: b"abc", 100: b"\xff" * PAGE, 255: b"z"}
            for page, data in written.items():
                mem[page * PAGE + PAGE - len(data) : page * PAGE + PAGE] = data  # the page's last bytes
            before = bytes(mem)
            allocated_before = os.fstat(fd).st_blocks * 512
            released = _punch(mem, SIZE)
            allocated_after = os.fstat(fd).st_blocks * 512  # before reading back (a read allocates)
            assert released == SIZE - len(written) * PAGE
            assert allocated_after <= allocated_before - released
            assert bytes(mem) == before, "a page that was not all zeros changed"
    finally:
        os.close(fd)
