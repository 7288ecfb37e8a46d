"""Folder sharing without privilege: how a virtiofsd is started as the person.

Two daemons can serve a share, and neither runs as root:

* the Rust ``virtiofsd`` (Debian 13, Ubuntu 24.04 and later), preferred where it is installed
  and runs;
* QEMU's own C ``virtiofsd`` (QEMU 7.2, Debian 12), which was written for root.

Both are started inside a bubblewrap user namespace in which the person's uid is
``GUEST_UID`` (the guest's ``agent`` user) and nothing else is mapped. So:

* what the guest creates as ``agent`` is owned by the person on the host;
* a file created or chowned to any other uid (guest root included) is refused by the kernel,
  because that uid does not exist in the namespace;
* device nodes cannot be made (a user namespace never may);
* the daemon sees a minimal root (``/usr`` read-only, a private ``/run``, its run folder and
  the one shared folder), never the person's home.

A seccomp filter, loaded by bubblewrap before the daemon runs, turns the C daemon's
``setgroups()`` into a no-op (the call it makes at start, which a user namespace forbids) and
refuses any mode with the setuid or setgid bit (``chmod``, ``open``/``mkdir``/``mknod`` with such
a mode), so the guest can never leave a set-id file in the folder.

Shared group folders: the jail keeps the person's supplementary groups (a user namespace cannot
drop them, and the host checks access with them), but maps none. In a folder whose group is not
the person's primary one, the guest sees the overflow group and runs its commands as it, and each
create would make the daemon switch to a group the namespace cannot name. The same filter skips
that one switch (``setresgid`` to the overflow group): the daemon creates as the person's primary
group, and the host kernel gives the file the folder's group when the folder is set-group-ID
(subfolders inherit the bit), the person's primary group otherwise, as for the person's own
programs. Never another group: no group is ever set by id.
"""

from __future__ import annotations

import enum
import errno
import functools
import os
import re
import resource
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pyseccomp

from paddock.core.errors import PaddockError

GUEST_UID = 1000  # the guest's `agent` user; the person's uid maps to it in the namespace
GUEST_GID = 1000
RUST_CANDIDATES = ("/usr/libexec/virtiofsd", "/usr/bin/virtiofsd", "/usr/lib/virtiofsd")
C_CANDIDATES = ("/usr/lib/qemu/virtiofsd",)
_RUST_VERSION = re.compile(r"^virtiofsd (\d+)\.(\d+)\.(\d+)")
_C_VERSION = re.compile(r"^virtiofsd version (\S+)")
SETID_BITS = (stat.S_ISUID, stat.S_ISGID)
# Calls that take a mode, and which argument holds it.
MODE_ARGS = {
    "chmod": 1,
    "fchmod": 1,
    "fchmodat": 2,
    "mkdir": 1,
    "mkdirat": 2,
    "mknod": 1,
    "mknodat": 2,
    "open": 2,
    "openat": 3,
    "creat": 1,
}


class SharingError(PaddockError):
    """Folder sharing is not available on this host."""


class Daemon(enum.Enum):
    RUST = "rust"
    QEMU_C = "qemu-c"


@dataclass(frozen=True)
class FolderSharing:
    """The chosen virtiofsd and how it runs."""

    binary: Path
    daemon: Daemon
    version: str
    bwrap: Path

    @property
    def label(self) -> str:
        if self.daemon is Daemon.RUST:
            return f"virtiofsd {self.version} (Rust), in a user namespace, no root needed"
        return f"QEMU's virtiofsd {self.version} (C), in a user namespace, no root needed"

    def jail_argv(
        self, source: Path, mount_point: Path, run_dir: Path, *, read_only: bool, seccomp_fd: int
    ) -> list[str]:
        """The bubblewrap prefix the daemon runs in (tests run a shell in it to attack it)."""
        return [
            str(self.bwrap),
            "--unshare-user", "--uid", str(GUEST_UID), "--gid", str(GUEST_GID),
            "--cap-add", "ALL",  # capabilities inside the namespace only: the daemon drops them itself
            "--die-with-parent", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--seccomp", str(seccomp_fd),
            *_minimal_root(),
            "--bind", str(run_dir), str(run_dir),
            "--ro-bind" if read_only else "--bind", str(source), str(mount_point),
            "--",
        ]  # fmt: skip

    def argv(
        self, source: Path, mount_point: Path, run_dir: Path, socket: Path, *, read_only: bool, seccomp_fd: int
    ) -> list[str]:
        """The command that serves ``source`` on ``socket``. ``source`` is bind-mounted at the
        fixed ``mount_point`` (inside ``run_dir``), so no user text reaches the daemon's options;
        a read-only share is read-only for the daemon too, so not even guest root can write it."""
        argv = self.jail_argv(source, mount_point, run_dir, read_only=read_only, seccomp_fd=seccomp_fd)
        nofile = share_handle_limit()
        if self.daemon is Daemon.RUST:
            return [
                *argv, str(self.binary),
                f"--socket-path={socket}",
                f"--shared-dir={mount_point}",
                "--sandbox=namespace",
                "--announce-submounts",
                "--cache=auto",
                f"--rlimit-nofile={nofile}",
                "--log-level=warn",
            ]  # fmt: skip
        return [
            *argv, str(self.binary),
            f"--socket-path={socket}",
            "-o", f"source={mount_point}",
            "-o", "sandbox=namespace",
            "-o", "cache=auto",
            "-o", "no_posix_lock",
            "-o", "modcaps=-mknod:-setfcap",
            f"--rlimit-nofile={nofile}",
        ]  # fmt: skip


def seccomp_fd() -> int:
    """A descriptor holding the filter, positioned at its start, for bubblewrap to read."""
    fd = os.memfd_create("paddock-seccomp", 0)
    os.write(fd, seccomp_filter())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _minimal_root() -> list[str]:
    """What the daemon's namespace shows: /usr read-only, the merged-/usr links (or the real
    folders on hosts without merged /usr), /proc, a minimal /dev, an empty private /run."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "lib32", "bin", "sbin"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/run",
        "--symlink",
        "../run",
        "/var/run",
        "--tmpfs",
        "/tmp",
    ]
    return args


def share_handle_limit() -> int:
    """The daemon keeps a descriptor per inode the guest looks at: give it the hard limit (an
    unprivileged process may raise its soft limit that far, and no further)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return hard if hard != resource.RLIM_INFINITY else 1_048_576


@functools.lru_cache(maxsize=1)
def seccomp_filter() -> bytes:
    """The compiled filter (classic BPF, as bubblewrap's ``--seccomp`` takes it)."""
    flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    flt.add_rule(pyseccomp.ERRNO(0), "setgroups")
    # A request from the overflow group (the folder's own group, in a shared group folder: the
    # namespace cannot name it) is served as the person's own group: the daemons' switch to it
    # would fail ("Invalid argument") and is skipped, so the host's set-group-ID rule gives a new
    # file the folder's group, exactly as when the person creates it there.
    flt.add_rule(pyseccomp.ERRNO(0), "setresgid", pyseccomp.Arg(1, pyseccomp.MASKED_EQ, 0xFFFFFFFF, overflow_gid()))
    for call, index in MODE_ARGS.items():
        for bit in SETID_BITS:
            flt.add_rule(pyseccomp.ERRNO(errno.EPERM), call, pyseccomp.Arg(index, pyseccomp.MASKED_EQ, bit, bit))
    # Calls whose mode is out of the filter's reach: refused as "not implemented", so the C
    # library falls back to the calls above.
    for call in ("openat2", "fchmodat2"):
        try:
            flt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), call)
        except (ValueError, RuntimeError, OSError):
            pass  # a libseccomp too old to know the call: the kernel's own checks stand
    return compiled(flt, "paddock-seccomp")


def overflow_gid() -> int:
    """The group a user namespace shows for every group it does not map (65534 by default)."""
    try:
        return int(Path("/proc/sys/kernel/overflowgid").read_text())
    except (OSError, ValueError):
        return 65534


def compiled(flt: pyseccomp.SyscallFilter, name: str) -> bytes:
    """``flt`` as classic BPF bytes (libseccomp exports only to a descriptor: a memfd here)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        flt.export_bpf(_Fd(fd))
        size = os.lseek(fd, 0, os.SEEK_CUR)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class _Fd:
    """What libseccomp's export wants: something with a ``fileno()``."""

    fd: int

    def fileno(self) -> int:
        return self.fd


def _version(binary: str, bwrap: Path) -> tuple[Daemon, str] | None:
    """Which daemon ``binary`` is, asked the way it will run (the C one calls ``setgroups()``
    before anything else, even for ``--version``)."""
    fd = seccomp_fd()
    try:
        out = subprocess.run(
            [str(bwrap), "--unshare-user", "--uid", str(GUEST_UID), "--gid", str(GUEST_GID),
             "--seccomp", str(fd), "--ro-bind", "/", "/", "--", binary, "--version"],
            capture_output=True, text=True, timeout=10, pass_fds=(fd,),
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        os.close(fd)
    first = (out.stdout or out.stderr).strip().splitlines()[:1]
    if not first or out.returncode != 0:
        return None  # not runnable here (a build for a newer C library, for one)
    if m := _C_VERSION.match(first[0]):
        return Daemon.QEMU_C, m.group(1)
    if m := _RUST_VERSION.match(first[0]):
        return Daemon.RUST, ".".join(m.groups())
    return None


def find_sharing(bwrap: Path) -> FolderSharing:
    """The Rust virtiofsd where one is installed and runs, else QEMU's C one.
    ``PADDOCK_VIRTIOFSD`` names a binary to use instead (its kind is read from ``--version``).
    Not as root: the jail is made for an ordinary account (bubblewrap run by root covers parts
    of /proc, and virtiofsd then cannot mount its own), and Paddock never needs root."""
    if os.geteuid() == 0:
        raise SharingError(
            "Paddock runs as the person who uses it, not as root.",
            hint="Start it from your own account; root is needed only to install it.",
        )
    return _find_sharing(bwrap, os.environ.get("PADDOCK_VIRTIOFSD") or "")


@functools.lru_cache(maxsize=8)
def runnable(bwrap: Path, candidates: tuple[str, ...] = (*RUST_CANDIDATES, *C_CANDIDATES)) -> tuple[FolderSharing, ...]:
    """Every daemon among ``candidates`` that is installed and runs here, in that order (a tuple:
    the answer is cached and shared by every caller)."""
    found: list[FolderSharing] = []
    for cand in candidates:
        if not cand or not os.access(cand, os.X_OK):
            continue
        kind = _version(cand, bwrap)
        if kind is not None:
            found.append(FolderSharing(Path(cand), kind[0], kind[1], bwrap))
    return tuple(found)


@functools.lru_cache(maxsize=4)
def _find_sharing(bwrap: Path, forced: str) -> FolderSharing:
    found = runnable(bwrap, (forced,)) if forced else runnable(bwrap)
    if not found:
        raise SharingError(
            "virtiofsd (which shares your folder with the sandbox) is not installed or does not run here.",
            hint="Install it with: sudo apt-get install qemu-system-x86 (Debian 12) or virtiofsd (Debian 13).",
        )
    rust = [f for f in found if f.daemon is Daemon.RUST]
    return rust[0] if rust else found[0]


def user_namespaces_work(bwrap: Path) -> tuple[bool, str]:
    """Whether this user may make the user namespace the daemon runs in."""
    try:
        proc = subprocess.run(
            [str(bwrap), "--unshare-user", "--uid", str(GUEST_UID), "--ro-bind", "/", "/", "true"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"bubblewrap could not run: {exc}"
    if proc.returncode == 0:
        return True, "user namespaces are available"
    return False, proc.stderr.strip() or f"bubblewrap exited with code {proc.returncode}"
