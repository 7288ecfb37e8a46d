"""The kernel modules in the guest's initrd carry no signature (``guest_image/buildlib.py``:
``unsigned``): the guest kernel would hash and verify each one in the emulated CPU at every boot
(#33), for what the host checks already (the image's SHA-256 before every boot). Real: the built
image's own initrd, and the build's own function on a module laid out as the kernel's
``sign-file`` lays it out.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from paddock.vm import GuestImage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "guest_image"))
from buildlib import SIG_MAGIC, BuildError, unsigned


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


def _elf_ends_with_its_section_table(module: bytes) -> bool:
    shoff = struct.unpack_from("<Q", module, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", module, 0x3A)
    return module[:4] == b"\x7fELF" and shoff + shentsize * shnum == len(module)


def test_the_initrd_modules_are_whole_and_unsigned(guest_image: GuestImage) -> None:
    files = _cpio_files(guest_image.initrd.read_bytes())
    modules = {name: body for name, body in files.items() if name.endswith(".ko")}
    assert len(modules) >= 8, sorted(files)
    for name, body in modules.items():
        assert not body.endswith(SIG_MAGIC), f"{name} is still signed"
        assert _elf_ends_with_its_section_table(body), f"{name} is not a whole ELF file"


def test_unsigned_takes_off_exactly_the_signature() -> None:
    elf = b"\x7fELF" + b"\x01" * 60
    signature = b"\x30" * 721
    info = bytes(8) + struct.pack(">I", len(signature))  # struct module_signature: sig_len last
    assert unsigned(elf + signature + info + SIG_MAGIC) == elf
    assert unsigned(elf) == elf  # an unsigned module is left as it is
    with pytest.raises(BuildError):
        unsigned(b"x" + bytes(8) + struct.pack(">I", 10_000) + SIG_MAGIC)
