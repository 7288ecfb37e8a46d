"""A command that fork-bombs, eats memory, fills the disk or spins the CPU is contained:
the guest agent keeps answering, the host is untouched, and nothing in the workspace is lost."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from paddock.guest import ExitReason, GuestNoSpace
from tests.conftest import Booted

pytestmark = pytest.mark.vm


def _still_fine(b: Booted) -> None:
    out, _, code = b.sh("echo alive")
    assert (out, code) == ("alive\n", 0), "the guest agent stopped answering"
    assert b.sandbox.alive


def test_commands_run_in_the_limited_cgroup(booted: Booted) -> None:
    out, _, _ = booted.sh("cat /proc/self/cgroup; cat /sys/fs/cgroup/commands/pids.max")
    assert "0::/commands" in out and "512" in out


def test_fork_bomb_is_contained(booted: Booted) -> None:
    (booted.workspace / "precious.txt").write_text("keep me\n")
    _, _, result = booted.engine.run(
        booted.sandbox.guest.run(["sh", "-c", "b() { b | b & }; b; sleep 20"], timeout_s=8), timeout=120
    )
    assert result.reason in (ExitReason.TIMED_OUT, ExitReason.EXITED, ExitReason.SIGNALED)
    _still_fine(booted)
    assert (booted.workspace / "precious.txt").read_text() == "keep me\n"


def test_memory_hog_is_killed_not_the_agent(booted: Booted) -> None:
    _, _, result = booted.engine.run(
        booted.sandbox.guest.run(["python3", "-c", "x = bytearray(3 * 1024**3); print('allocated')"], timeout_s=60),
        timeout=120,
    )
    assert result.shell_code != 0
    _still_fine(booted)


def test_filling_the_guest_disk_fails_cleanly(booted: Booted) -> None:
    out, err, _ = booted.sh("dd if=/dev/zero of=/tmp/fill bs=1M 2>&1; echo dd-exit=$?; rm -f /tmp/fill")
    assert "No space left on device" in out + err and "dd-exit=1" in out
    _still_fine(booted)


def test_cpu_spin_is_stopped_by_its_timeout(booted: Booted) -> None:
    _, _, result = booted.engine.run(
        booted.sandbox.guest.run(["sh", "-c", "while :; do :; done"], timeout_s=2), timeout=60
    )
    assert result.reason is ExitReason.TIMED_OUT
    _still_fine(booted)


@pytest.fixture
def small_workspace(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB file system as the workspace (a tmpfs mount; needs root, as CI has)."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a small tmpfs and needs root (CI runs as root)")
    target = tmp_path / "small"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
        shutil.rmtree(target, ignore_errors=True)


def test_a_full_workspace_disk_is_a_clear_error_and_loses_nothing(small_workspace: Path, engine: object,
                                                                  guest_image: object) -> None:  # fmt: skip
    from paddock.core.engine import Engine
    from paddock.session.sandbox import Sandbox

    assert isinstance(engine, Engine)
    (small_workspace / "existing.txt").write_text("already here\n")
    sandbox = engine.run(Sandbox.boot(small_workspace), timeout=180)
    try:
        with pytest.raises(GuestNoSpace, match="no space left"):
            engine.run(sandbox.guest.write_file("big.bin", b"x" * (8 * 1024 * 1024)), timeout=120)
        _, _, result = engine.run(sandbox.guest.run(["sh", "-c", "head -c 8000000 /dev/zero > big2.bin"]))
        assert result.exit_code != 0
        assert (small_workspace / "existing.txt").read_text() == "already here\n"
        assert not [p.name for p in small_workspace.iterdir() if p.name.startswith(".paddock-tmp")]
        _, _, ok = engine.run(sandbox.guest.run(["true"]))
        assert ok.exit_code == 0
    finally:
        engine.run(sandbox.close(), timeout=60)
