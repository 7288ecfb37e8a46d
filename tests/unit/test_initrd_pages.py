"""The guest's initrd is a whole number of pages (``guest_image/buildlib.py``).

QEMU 10's microvm (Debian 13) loads the initrd at the top of the guest's memory, just below its
ACPI tables; an initrd whose size ends part-way into a page reaches over the DSDT, and the
quick-start machine's guest then finds no disk at all (its init waits for the root until the host
stops it). Seen when the init grew by 1 KiB; a size of whole pages ends below the tables. Real:
the built image's own initrd.
"""

from __future__ import annotations

from paddock.vm import GuestImage


def test_the_initrd_is_whole_pages_and_ends_in_zeros_the_kernel_skips(guest_image: GuestImage) -> None:
    data = guest_image.initrd.read_bytes()
    assert len(data) % 4096 == 0, f"{len(data)} bytes: not whole pages"
    end = data.rindex(b"TRAILER!!!") + len(b"TRAILER!!!")
    assert not data[end:].strip(b"\0"), "only zeros may follow the archive's trailer"
