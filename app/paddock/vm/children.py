"""The VM's child processes: their logs, and dying with the app."""

from __future__ import annotations

import ctypes
import logging
import shutil
import signal
from pathlib import Path
from typing import BinaryIO

from paddock.core.logs import logs_dir

log = logging.getLogger("paddock.vm.machine")


def keep_logs(run_dir: Path, name: str) -> Path | None:
    """Copy QEMU's, virtiofsd's and the console's logs of a failed VM to the person's log
    folder (for a support request; they hold no secret: the boot key is sent over the channel)."""
    try:
        dest = logs_dir() / name
        dest.mkdir(mode=0o700, exist_ok=True)
        for src in run_dir.glob("*.log"):
            shutil.copyfile(src, dest / src.name, follow_symlinks=False)
    except OSError as exc:
        log.warning("could not keep the logs of %s: %s", name, exc)
        return None
    log.info("kept the logs of failed %s in %s", name, dest)
    return dest


def log_file(path: Path) -> BinaryIO:
    """A log for a child's output (opened here, closed once the child has it)."""
    return open(path, "wb")


def set_pdeathsig() -> None:
    """In the child: die with the parent, so a killed app leaves no VM behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def read_text(path: Path) -> str:
    """A log's text ("" when there is none, or it cannot be read)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
