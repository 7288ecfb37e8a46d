"""The change guard against every call a folder-sharing daemon can use to alter or replace a file,
made the way the daemons make them (``paddock.vm.guard``; the audit is in docs/UNDO.md).

Both virtiofsd daemons (QEMU's C one and the Rust one) work through ``O_PATH`` descriptors and
``/proc/self/fd``: they reopen a file for writing with ``openat(proc_self_fd, "<fd number>",
O_RDWR)``, link with ``linkat(proc_self_fd, "<fd number>", dir, name, AT_SYMLINK_FOLLOW)``, chmod
and set times through ``fchmodat``/``utimensat`` on the same magic link, set extended attributes
after ``fchdir(proc_self_fd)``. Real: the guard's filter and listener on a real process (a Python
script instead of the daemon), the undo store on disk; no VM (``tests/security/test_change_guard.py``
runs both real daemons).
"""

from __future__ import annotations

import errno
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from paddock.undo.restore import restore
from paddock.undo.store import MB
from tests.unit.test_undo_lazy import Guarded

# The daemon's conventions, in Python: ``reopen(path, flags)`` is virtiofsd's
# ``reopen_fd_through_proc`` (an O_PATH handle, then openat on /proc/self/fd).
PRELUDE = r"""
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
PROC = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY)
def handle(path):
    return os.open(path, os.O_PATH | os.O_NOFOLLOW)
def reopen(path, flags):
    return os.open(str(handle(path)), flags, dir_fd=PROC)
"""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Guarded]:
    g = Guarded(tmp_path / "work", tmp_path / "undo")
    g.folder.mkdir()
    yield g
    g.close()


def _python(g: Guarded, body: str) -> tuple[int, str]:
    script = g.folder.parent / "daemon.py"
    script.write_text(PRELUDE + body)
    return g.run(f"{sys.executable} -I {script}")


def _files(g: Guarded, names: list[str]) -> dict[str, str]:
    for i, name in enumerate(names):
        (g.folder / name).write_bytes(os.urandom(MB // 4 + i))
    return {name: _sha(g.folder / name) for name in names}


def _restored(g: Guarded, point_id: int, before: dict[str, str]) -> None:
    point = g.store.point(point_id)
    done = restore(g.store, point)
    assert done.failed == [], done.failed
    assert {n: _sha(g.folder / n) for n in before} == before


def test_a_link_made_through_proc_self_fd_keeps_the_file_first(guarded: Guarded) -> None:
    """A link changes the file's ctime, so its version: the daemons link through /proc's magic
    link with AT_SYMLINK_FOLLOW. (Before: the guard did not follow it and kept nothing; the undo
    then named the file instead of putting it back.)"""
    before = _files(guarded, ["doc.txt"])
    point = guarded.point()
    code, out = _python(guarded, 'os.link(str(handle("doc.txt")), "copy.txt", src_dir_fd=PROC, follow_symlinks=True)\n')
    assert code == 0, out
    assert guarded.keeper.kept_files == 1
    _restored(guarded, point, before)
    assert not (guarded.folder / "copy.txt").exists()


def test_openat2_is_refused_so_the_daemon_opens_with_a_call_the_guard_reads(guarded: Guarded) -> None:
    """``openat2`` keeps its flags in a struct no seccomp filter can read: the guard reads them and
    refuses one that may write (virtiofsd then uses ``openat``); one that reads goes on (bubblewrap
    opens its mount sources so). (Before: an ``openat2`` with O_TRUNC emptied an unkept file.)"""
    before = _files(guarded, ["doc.txt"])
    point = guarded.point()
    code, out = _python(
        guarded,
        r"""
how = (ctypes.c_uint64 * 3)(os.O_WRONLY | os.O_TRUNC, 0, 0)  # struct open_how: flags, mode, resolve
fd = libc.syscall(437, -100, b"doc.txt", how, 24)
print("openat2", fd, ctypes.get_errno())
how = (ctypes.c_uint64 * 3)(os.O_RDONLY, 0, 0)
print("openat2 to read", libc.syscall(437, -100, b"doc.txt", how, 24) >= 0)  # bubblewrap's own
fd = os.open("doc.txt", os.O_WRONLY | os.O_TRUNC)  # the fallback: guarded
""",
    )
    assert code == 0, out
    assert f"openat2 -1 {errno.ENOSYS}" in out and "openat2 to read True" in out
    assert (guarded.folder / "doc.txt").stat().st_size == 0
    _restored(guarded, point, before)


def test_fchmodat2_is_guarded(guarded: Guarded) -> None:
    """The newer chmod call (Linux 6.6; glibc 2.39 uses it): kept first. (Before: not in the guard.)"""
    before = _files(guarded, ["doc.txt"])
    point = guarded.point()
    code, out = _python(
        guarded, 'r = libc.syscall(452, -100, b"doc.txt", 0o600, 0)\nsys.exit(0 if r == 0 else ctypes.get_errno())\n'
    )
    if code == errno.ENOSYS:
        pytest.skip("this kernel has no fchmodat2")
    assert code == 0, out
    assert guarded.keeper.kept_files == 1
    _restored(guarded, point, before)
    assert (guarded.folder / "doc.txt").stat().st_mode & 0o777 != 0o600


def test_io_uring_and_writable_handles_are_refused(guarded: Guarded) -> None:
    """io_uring opens and writes files with no system call the filter sees; ``open_by_handle_at``
    names no path. Neither daemon uses them unprivileged: refused outright."""
    code, out = _python(
        guarded,
        r"""
params = ctypes.create_string_buffer(120)
print("io_uring", libc.syscall(425, 4, params), ctypes.get_errno())
fh = ctypes.create_string_buffer(128)
print("by_handle", libc.syscall(304, -100, fh, os.O_RDWR), ctypes.get_errno())
""",
    )
    assert code == 0, out
    assert f"io_uring -1 {errno.ENOSYS}" in out
    assert f"by_handle -1 {errno.EPERM}" in out


def test_every_write_on_a_descriptor_comes_after_a_guarded_open(guarded: Guarded) -> None:
    """fallocate, ftruncate, copy_file_range and pwritev2 act on a descriptor open for writing,
    and the kernel refuses them on any other: so they are covered when the open that made the
    descriptor was guarded. Here each file is reopened for writing the daemons' way (through
    /proc/self/fd), then changed by one of those calls; every one is kept before the open returns."""
    names = ["alloc.bin", "trunc.bin", "copied.bin", "written.bin", "source.bin"]
    before = _files(guarded, names)
    point = guarded.point()
    code, out = _python(
        guarded,
        r"""
os.posix_fallocate(reopen("alloc.bin", os.O_RDWR), 0, 4 << 20)
os.ftruncate(reopen("trunc.bin", os.O_RDWR), 7)
src = os.open("source.bin", os.O_RDONLY)  # read only: not guarded, and nothing changes it
os.copy_file_range(src, reopen("copied.bin", os.O_WRONLY), 4096, 0, 0)
os.pwritev(reopen("written.bin", os.O_WRONLY), [b"CHANGED"], 10, os.RWF_DSYNC)
try:
    os.ftruncate(handle("source.bin"), 0)  # an O_PATH handle cannot be written through
except OSError as exc:
    print("ftruncate on O_PATH:", exc.errno)
try:
    os.ftruncate(src, 0)
except OSError as exc:
    print("ftruncate read-only:", exc.errno)
""",
    )
    assert code == 0, out
    assert f"ftruncate on O_PATH: {errno.EBADF}" in out and f"read-only: {errno.EINVAL}" in out
    assert guarded.keeper.kept_files == 4  # source.bin was only read
    assert {n: _sha(guarded.folder / n) for n in names} != before
    _restored(guarded, point, before)


def test_the_rust_daemons_other_conventions_are_kept(guarded: Guarded) -> None:
    """renameat2 with RENAME_EXCHANGE (both files), chmod and times through /proc/self/fd, chown
    with AT_EMPTY_PATH, extended attributes after ``fchdir(proc_self_fd)``."""
    names = ["a.txt", "b.txt", "mode.txt", "times.txt", "owner.txt", "attr.txt"]
    before = _files(guarded, names)
    point = guarded.point()
    code, out = _python(
        guarded,
        r"""
assert libc.syscall(316, -100, b"a.txt", -100, b"b.txt", 2) == 0, ctypes.get_errno()  # RENAME_EXCHANGE
os.chmod(str(handle("mode.txt")), 0o600, dir_fd=PROC)
os.utime(str(handle("times.txt")), (1, 1), dir_fd=PROC)
assert libc.fchownat(handle("owner.txt"), b"", -1, os.getgid(), 0x1100) == 0, ctypes.get_errno()  # AT_EMPTY_PATH
fd = os.open("attr.txt", os.O_RDONLY)
os.fchdir(PROC)  # the Rust daemon's way for a file it cannot open: setxattr("<fd number>")
try:
    os.setxattr(str(fd), "user.paddock", b"x")
    print("xattr set")
except OSError as exc:
    print("xattr", exc.errno)  # a filesystem without user attributes
""",
    )
    assert code == 0, out
    kept = 6 if "xattr set" in out else 5
    assert guarded.keeper.kept_files + guarded.keeper.linked_files == kept, out  # a, b: linked (renamed)
    _restored(guarded, point, before)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any process's memory: run as the ordinary user")
def test_a_change_the_guard_cannot_look_at_is_refused_and_the_file_kept(guarded: Guarded) -> None:
    """A daemon that made itself non-dumpable: the guard can read neither the name it writes nor
    its descriptors. Before: the guard let the write go on unkept, so the undo could not put the
    person's words back; now the call is refused and the file is as it was."""
    (guarded.folder / "keep.txt").write_text("the person's words\n")
    guarded.point()
    code, out = _python(
        guarded,
        "assert libc.prctl(4, 0, 0, 0, 0) == 0\n"  # PR_SET_DUMPABLE 0
        "try:\n"
        "    os.close(os.open('keep.txt', os.O_WRONLY | os.O_TRUNC))\n"
        "    print('written')\n"
        "except OSError as exc:\n"
        "    print('refused', errno.errorcode[exc.errno])\n",
    )
    assert code == 0 and "refused" in out, out
    assert (guarded.folder / "keep.txt").read_text() == "the person's words\n"
