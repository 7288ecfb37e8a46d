"""Boot and claim: the host's first call after a boot or a snapshot restore, and the boot key
that every later call must carry."""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
import time
from _operator import _compare_digest as compare_digest  # constant time, without hmac loading OpenSSL
from typing import Any

import grpc

from paddock.guest.v1 import agent_pb2 as pb
from paddock_guest.config import BOOT_KEY_METADATA, BUSYBOX, MOUNT_WAIT_S, SHARE_MOUNTS, log, uptime
from paddock_guest.handles import KEEPER


def mount_share(tag: str) -> str | None:
    """Mount a hot-plugged virtiofs share at its fixed place; wait for the device to appear.
    Returns None when mounted, else why not."""
    path, read_only = SHARE_MOUNTS[tag]
    options = "ro,nosuid,nodev" if read_only else "nosuid,nodev"
    deadline = time.monotonic() + MOUNT_WAIT_S
    last = ""
    while time.monotonic() < deadline:
        with open("/proc/mounts") as fh:
            if any(line.split()[:3] == [tag, path, "virtiofs"] for line in fh):
                return None
        proc = subprocess.run(
            [BUSYBOX, "mount", "-t", "virtiofs", "-o", options, tag, path],
            capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode == 0:
            log(f"mounted {tag} at {path} (guest uptime {uptime():.2f} s)")
            return None
        last = proc.stderr.strip()
        time.sleep(0.05)
    return f"the {tag} share did not appear within {MOUNT_WAIT_S:.0f} s ({last})"


def virtiofs_mounts() -> list[pb.Mount]:
    """The shares mounted now, as Info reports them."""
    mounts = []
    with open("/proc/mounts") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 4 and parts[2] == "virtiofs":
                mounts.append(pb.Mount(tag=parts[0], path=parts[1], read_only="ro" in parts[3].split(",")))
    return mounts


RNDRESEEDCRNG = 0x5207  # _IO('R', 0x07)


def reseed_random(entropy: bytes) -> None:
    """Mix the host's bytes into the pool and reseed the kernel's CRNG at once. Every guest woken
    from one snapshot starts with the same CRNG state; a plain write to /dev/urandom only feeds the
    input pool, and the CRNG would keep producing the same bytes until its periodic reseed."""
    fd = os.open("/dev/urandom", os.O_WRONLY)
    try:
        os.write(fd, entropy)
        fcntl.ioctl(fd, RNDRESEEDCRNG)
    finally:
        os.close(fd)


class KeyBox:
    def __init__(self) -> None:
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def set_once(self, key: bytes) -> bool:
        with self._lock:
            if self._key is not None:
                return False
            self._key = bytes(key)
            return True

    def check(self, presented: str | None) -> bool:
        key = self._key
        if key is None or presented is None:
            return False
        return compare_digest(key.hex().encode(), presented.encode())

    @property
    def claimed(self) -> bool:
        return self._key is not None


def claim(request: pb.ClaimRequest, context: grpc.ServicerContext, key_box: KeyBox) -> pb.ClaimResponse:
    """Take this boot's key (once), set the clock, reseed the random pool, mount the shares."""
    if len(request.boot_key) < 16:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "boot key too short")
    if not key_box.set_once(request.boot_key):
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "this boot is already claimed")
    if request.unix_time_ns > 0:
        try:
            time.clock_settime(time.CLOCK_REALTIME, request.unix_time_ns / 1e9)
        except OSError as exc:
            log(f"could not set the clock: {exc}")
    if request.entropy:
        try:
            reseed_random(request.entropy[:4096])
        except OSError as exc:  # fail closed: no guest with a shared random state
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"could not reseed the random pool: {exc}")
    KEEPER.configure(request.share_handles)
    for tag in request.mount_tags:
        if tag not in SHARE_MOUNTS:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown share {tag!r}")
        problem = mount_share(tag)
        if problem:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, problem)
    return pb.ClaimResponse()


class BootKeyInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc ships no types
    """Every call but Claim and Health must carry this boot's key."""

    OPEN = frozenset({"/paddock.guest.v1.GuestAgent/Claim", "/paddock.guest.v1.GuestAgent/Health"})

    def __init__(self, key_box: KeyBox) -> None:
        self.key_box = key_box

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong boot key")

        self._deny_unary = grpc.unary_unary_rpc_method_handler(deny)
        self._deny_stream = grpc.unary_stream_rpc_method_handler(deny)
        self._deny_bidi = grpc.stream_stream_rpc_method_handler(deny)

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        method = handler_call_details.method
        if method in self.OPEN:
            return continuation(handler_call_details)
        presented = dict(handler_call_details.invocation_metadata or ()).get(BOOT_KEY_METADATA)
        if self.key_box.check(presented):
            return continuation(handler_call_details)
        if method.endswith(("/Exec", "/Events")):
            return self._deny_stream
        if method.endswith("/Egress"):
            return self._deny_bidi
        return self._deny_unary
