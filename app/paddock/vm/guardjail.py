"""The launcher that puts virtiofsd under the change guard (``python -m paddock.vm.guardjail``).

Run as ``python -m paddock.vm.guardjail FILTER_FD SOCKET_FD -- bwrap …``: a single-threaded
process that loads the guard's seccomp filter (classic BPF read from ``FILTER_FD``) with
``SECCOMP_FILTER_FLAG_NEW_LISTENER``, sends the listener descriptor to Paddock over the inherited
``SOCKET_FD`` (``SCM_RIGHTS``), closes its own copy, then execs the rest of its arguments. The
filter holds for that command and everything it starts (bubblewrap, virtiofsd), and cannot be
removed by them. Nothing of the app's threads is involved (no ``preexec_fn``).
"""

from __future__ import annotations

# Loaded by hand (prctl and the seccomp system call through ctypes), not with pyseccomp: pyseccomp
# loads only a filter it builds in this process and does not hand out the listener descriptor
# (libseccomp's seccomp_notify_fd is not part of its API), while this launcher must load the
# classic BPF Paddock compiled (with pyseccomp, in paddock.vm.guard) and pass the listener on.
import ctypes
import os
import socket
import sys

SYS_SECCOMP = 317  # x86_64
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
PR_SET_NO_NEW_PRIVS = 38


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_listener(bpf: bytes) -> int:
    """Load ``bpf`` on this process (no new privileges first, as an unprivileged filter needs);
    the listener descriptor."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(
        ctypes.c_long(SYS_SECCOMP),
        ctypes.c_long(SECCOMP_SET_MODE_FILTER),
        ctypes.c_long(SECCOMP_FILTER_FLAG_NEW_LISTENER),
        ctypes.byref(prog),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp(NEW_LISTENER): {os.strerror(err)}")
    return int(fd)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: python -m paddock.vm.guardjail FILTER_FD SOCKET_FD -- COMMAND …", file=sys.stderr)
        return 2
    filter_fd, sock_fd = int(argv[0]), int(argv[1])
    command = argv[3:]
    bpf = b""
    while chunk := os.read(filter_fd, 65536):
        bpf += chunk
    os.close(filter_fd)
    sock = socket.socket(fileno=sock_fd)
    try:
        listener = load_listener(bpf)
    except OSError as exc:
        sock.sendall(f"error: {exc}".encode()[:200])  # Paddock says so and falls back
        return 3
    socket.send_fds(sock, [b"ok"], [listener])
    os.close(listener)  # Paddock holds the only copy: if it dies, guarded calls fail
    sock.close()
    os.execv(command[0], command)
    return 127  # pragma: no cover (execv does not return)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
