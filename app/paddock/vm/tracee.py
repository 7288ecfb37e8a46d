"""Looking at a process the change guard supervises (``paddock.vm.guard``): its memory, the
file a call of it names, its children. Nothing here writes to the process or opens a file for
writing."""

from __future__ import annotations

import contextlib
import os

AT_FDCWD = -100
PATH_MAX = 4096


def signed(value: int) -> int:
    """A descriptor argument (an int in a 64-bit register)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def read_string(pid: int, address: int) -> str | None:
    """A NUL-terminated path from the process's memory (None: unreadable)."""
    if address == 0:
        return None
    try:
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        out = b""
        while len(out) < PATH_MAX:
            want = 4096 - (address + len(out)) % 4096  # never across a page that may not be mapped
            chunk = os.pread(fd, want, address + len(out))
            if not chunk:
                return None
            nul = chunk.find(b"\0")
            if nul >= 0:
                return os.fsdecode(out + chunk[:nul])
            out += chunk
        return None
    except OSError:
        return None
    finally:
        os.close(fd)


def read_bytes(pid: int, address: int, size: int) -> bytes | None:
    """``size`` bytes of the process's memory (None: unreadable)."""
    try:
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        out = os.pread(fd, size, address)
        return out if len(out) == size else None
    except OSError:
        return None
    finally:
        os.close(fd)


def target(pid: int, dirfd: int, path: str | None, follow: bool) -> int:
    """An ``O_PATH`` descriptor of the file the call names, as the process sees it; the ``OSError``
    says why it could not be opened (ENOENT: no such file)."""
    if path is None or path == "":
        return os.open(f"/proc/{pid}/fd/{dirfd}", os.O_PATH | os.O_CLOEXEC)
    if path.startswith(("/proc/self/", "/proc/thread-self/")):  # the caller's own, not ours
        base, rel = f"/proc/{pid}", path.split("/", 3)[3]
    elif path.startswith("/"):
        base, rel = f"/proc/{pid}/root", path.lstrip("/") or "."
    elif dirfd == AT_FDCWD:
        base, rel = f"/proc/{pid}/cwd", path
    else:
        base, rel = f"/proc/{pid}/fd/{dirfd}", path
    bfd = os.open(base, os.O_PATH | os.O_CLOEXEC)
    try:
        flags = os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
        return os.open(rel, flags, dir_fd=bfd)
    finally:
        os.close(bfd)


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError), os.scandir(f"/proc/{p}/task") as tasks:
            for t in tasks:
                with contextlib.suppress(OSError, ValueError), open(f"{t.path}/children") as f:
                    todo += [int(c) for c in f.read().split()]
    return out
