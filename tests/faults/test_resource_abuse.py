"""A command that fork-bombs, eats memory, fills the disk or spins the CPU is contained:
the guest agent keeps answering, the host is untouched, and nothing in the workspace is lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from paddock.guest import ExitReason
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


FULL_DISK_SCENARIO = """
import os
import sys
from pathlib import Path

from paddock.core.engine import Engine
from paddock.guest import GuestNoSpace
from paddock.sandbox import Sandbox

folder = Path(sys.argv[1])
(folder / "existing.txt").write_text("already here\\n")
engine = Engine("full-disk")
sandbox = engine.run(Sandbox.boot(folder), timeout=180)
try:
    try:
        engine.run(sandbox.guest.write_file("big.bin", b"x" * (8 * 1024 * 1024)), timeout=120)
        print("write_file: no error")
    except GuestNoSpace as exc:
        print(f"write_file: GuestNoSpace: {exc}")
    _, _, result = engine.run(sandbox.guest.run(["sh", "-c", "head -c 8000000 /dev/zero > big2.bin"]))
    print(f"shell exit: {result.exit_code}")
    _, _, ok = engine.run(sandbox.guest.run(["true"]))
    print(f"after: {ok.exit_code}")
finally:
    engine.run(sandbox.close(), timeout=60)
    engine.close()
print("existing:", (folder / "existing.txt").read_text().strip())
print("leftovers:", sorted(p.name for p in folder.iterdir() if p.name.startswith(".paddock-tmp")))
"""


def test_a_full_workspace_disk_is_a_clear_error_and_loses_nothing(tmp_path: Path, guest_image: object) -> None:
    """A 4 MiB file system as the workspace. An ordinary user may mount a tmpfs in a user and
    mount namespace of their own, so the whole session (QEMU, virtiofsd, the engine) runs in
    one, still as the person, and sees the small disk there."""
    small = tmp_path / "small"
    small.mkdir()
    # Root of a namespace of our own to mount the tmpfs, then back to the person's uid (in a
    # namespace nested inside) to run the session: capabilities do not survive an exec as non-root.
    script = (
        'mount -t tmpfs -o size=4m tmpfs "$1" && exec unshare --user --map-user="$2" --map-group="$3" "$4" -c "$5" "$1"'
    )
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "full-disk",
         str(small), str(os.getuid()), str(os.getgid()), sys.executable, FULL_DISK_SCENARIO],
        capture_output=True, text=True, timeout=400, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "write_file: GuestNoSpace" in out and "no space left" in out, out
    assert "shell exit: 0" not in out and "after: 0" in out, out
    assert "existing: already here" in out and "leftovers: []" in out, out
