"""Where Paddock keeps things on the host. Never inside a user's workspace."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from platformdirs import PlatformDirs

APP = PlatformDirs("paddock", appauthor=False)  # XDG on Linux: $XDG_CACHE_HOME/paddock or ~/.cache/paddock, …


def _private(path: Path) -> Path:
    """``path`` as a folder only its owner can open (made if missing; tightened if ours)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        path.chmod(0o700)
    return path


def cache_dir() -> Path:
    """Rebuildable things of this user: saved sandboxes, the KVM verdict (the guest image
    itself is system-wide, see ``paddock.vm.image``). ``PADDOCK_CACHE_DIR`` overrides."""
    env = os.environ.get("PADDOCK_CACHE_DIR")
    if env:
        return _private(Path(env))
    return _private(APP.user_cache_path)


def data_dir() -> Path:
    """The user's Paddock data: conversations, trust decisions, the agent profile."""
    env = os.environ.get("PADDOCK_DATA_DIR")
    if env:
        return _private(Path(env))
    return _private(APP.user_data_path)


def profile_dir() -> Path:
    """The agent profile shared read-only into the guest at /home/agent/.claude.

    Paddock's own folder, never the ``~/.claude`` of other tools (which can
    hold credentials).
    """
    path = data_dir() / "profile" / ".claude"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def runtime_dir() -> Path:
    """Sockets and per-VM state: a folder only this user can open.

    Kept short, because a unix socket path is limited to 107 bytes. Not platformdirs'
    ``user_runtime_dir``: without ``XDG_RUNTIME_DIR`` it falls back to ``/run/user/<uid>`` and then
    to ``runtime-<uid>`` with a warning, where Paddock has always used ``paddock-<uid>`` in the
    temporary folder (and checks its own folder, not the parent).
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    root = Path(base) / "paddock" if base else Path(tempfile.gettempdir()) / f"paddock-{os.getuid()}"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = root.lstat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077 or root.is_symlink():
        raise PermissionError(f"{root} must be a folder owned by you with mode 0700")
    return root
