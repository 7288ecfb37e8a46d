"""Keep the host's share daemon under its open-files limit.

virtiofsd holds one open descriptor on the host for every file the guest kernel has looked
up and still caches. A command that creates or walks tens of thousands of files would run it
out of descriptors, and from then on the share answers "bad file descriptor" for the rest of
the session. While commands run, this watches the number of shared-folder inodes the guest
holds (the ``fuse_inode`` slab) and, past half the host's limit, drops the kernel's cached,
unused dentries and inodes: the guest forgets them, virtiofsd closes their descriptors, and a
later access simply looks the file up again. Nothing is lost; files still open stay open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from paddock_guest.config import log, read_small

DEFAULT_HANDLES = 8000  # when the host does not say (an older host)
POLL_S = 0.2  # near the limit
POLL_FAR_S = 1.0  # below a quarter of it: a long command is not woken five times a second


SLAB_OBJECTS = "/sys/kernel/slab/fuse_inode/objects"  # SLUB's count for the one cache: "19 N0=19"


def fuse_inodes() -> int:
    """Shared-folder inodes the guest kernel holds now (-1 when it cannot tell). Read from the
    cache's own counter where the kernel has one (about half the time of generating all of
    /proc/slabinfo under emulation, and this runs after every command)."""
    try:
        return int(read_small(SLAB_OBJECTS).split()[0])
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/proc/slabinfo") as fh:
            for line in fh:
                if line.startswith("fuse_inode "):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return -1


def drop_cached_inodes() -> None:
    with open("/proc/sys/vm/drop_caches", "w") as fh:
        fh.write("2\n")


class HandleKeeper:
    def __init__(self) -> None:
        self.reclaim_at = DEFAULT_HANDLES // 2
        self.reclaims = 0
        self._busy = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def configure(self, share_handles: int) -> None:
        if share_handles > 0:
            self.reclaim_at = max(64, share_handles // 2)

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Watch while a command runs, from POLL_FAR_S after it starts, and once when it ends: a
        short command (most of them) costs one look, at its end (the watching thread, asleep
        meanwhile, is woken at most once per POLL_FAR_S however many commands run)."""
        with self._lock:
            self._busy += 1
            first = self._busy == 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="handles", daemon=True)
                self._thread.start()
        if first:
            self._wake.set()
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
            self.check()

    def check(self) -> int:
        """Let go of cached files past the mark; returns how many the guest held."""
        held = fuse_inodes()
        if held >= self.reclaim_at:
            try:
                drop_cached_inodes()
                self.reclaims += 1
                log(f"shared folder: {held} files cached, past {self.reclaim_at}; let go of the unused ones")
            except OSError as exc:
                log(f"shared folder: could not drop cached files: {exc}")
        return held

    def _loop(self) -> None:
        while True:
            self._wake.wait()  # a command started while none ran
            self._wake.clear()
            interval = POLL_FAR_S
            while True:
                time.sleep(interval)
                with self._lock:
                    if self._busy == 0:
                        break
                held = self.check()
                interval = POLL_S if held >= self.reclaim_at // 2 else POLL_FAR_S


KEEPER = HandleKeeper()
