"""Waking a saved sandbox: the fast start.

A snapshot of an idle, unclaimed guest is made once per image. Each session restores it,
attaches the folder and the profile after the restore (a virtiofs device cannot be
migrated), and claims the guest with a fresh key, the host's clock and fresh randomness.
These tests check what the restored guest sees and that nothing is shared between wakes.
The rest of the suite wakes sandboxes too, by default (``tests/README.md``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paddock.core.engine import Engine
from paddock.guest import GuestError
from paddock.sandbox import SNAPSHOT_ENV, Sandbox, ensure_snapshot, snapshot_path
from paddock.vm import Accel, GuestImage
from tests.conftest import Booted, _make_dirs

pytestmark = pytest.mark.vm


@pytest.fixture
def snapshots(monkeypatch: pytest.MonkeyPatch, engine: Engine, guest_image: GuestImage) -> Iterator[Path]:
    monkeypatch.setenv(SNAPSHOT_ENV, "1")
    yield engine.run(ensure_snapshot(guest_image), timeout=300)


def _boot(engine: Engine, image: GuestImage, base: Path) -> tuple[Sandbox, Path, Path, Path]:
    workspace, profile, outside = _make_dirs(base)
    return engine.run(Sandbox.boot(workspace, image=image, profile=profile), timeout=180), workspace, profile, outside


def _sh(engine: Engine, sandbox: Sandbox, script: str) -> tuple[str, str, int]:
    out, err, result = engine.run(sandbox.guest.run(["sh", "-c", script]), timeout=120)
    return out.decode(), err.decode(), result.shell_code


def test_a_restored_sandbox_has_the_folder_the_profile_and_a_fresh_claim(
    engine: Engine, guest_image: GuestImage, snapshots: Path, tmp_path: Path
) -> None:
    sandbox, workspace, _, _ = _boot(engine, guest_image, tmp_path)
    try:
        assert sandbox.timings.restored, "the saved sandbox was not used"
        (workspace / "from-host.txt").write_text("hello from the host\n")
        out, err, code = _sh(engine, sandbox, "cat from-host.txt && echo made > made.txt && "
                                              "cat /home/agent/.claude/CLAUDE.md && date +%s")  # fmt: skip
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0] == "hello from the host" and lines[1] == "profile instructions"
        assert abs(int(lines[2]) - time.time()) < 120, "the restored guest kept the snapshot's clock"
        assert (workspace / "made.txt").read_text() == "made\n"
        _, err, code = _sh(engine, sandbox, "echo x > /home/agent/.claude/planted")
        assert code != 0 and "Read-only" in err
        info = engine.run(sandbox.guest.info(), timeout=30)
        assert ("workspace", "/workspace", False) in info.mounts
        assert ("profile", "/home/agent/.claude", True) in info.mounts
        out, _, _ = _sh(engine, sandbox, "ls /; ls /outside 2>&1 || true")
        assert "canary" not in out and "CANARY" not in out
        with pytest.raises(GuestError):
            engine.run(sandbox.guest.claim(), timeout=30)  # one claim per wake, as per boot
    finally:
        engine.run(sandbox.close(), timeout=60)


def test_two_wakes_share_no_randomness(
    engine: Engine, guest_image: GuestImage, snapshots: Path, tmp_path: Path
) -> None:
    seen = []
    for n in range(2):
        sandbox, _, _, _ = _boot(engine, guest_image, tmp_path / str(n))
        try:
            assert sandbox.timings.restored
            out, _, code = _sh(engine, sandbox, "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'")
            assert code == 0
            seen.append(out)
        finally:
            engine.run(sandbox.close(), timeout=60)
    assert len(seen[0]) == 64 and seen[0] != seen[1]


def test_a_damaged_snapshot_falls_back_to_a_cold_boot(
    engine: Engine, guest_image: GuestImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PADDOCK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PADDOCK_ACCEL", "tcg")
    monkeypatch.setenv(SNAPSHOT_ENV, "1")
    bad = snapshot_path(guest_image, Accel.TCG, 1024)
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"QEVM" + b"\0" * 4096)  # a snapshot header followed by nothing useful
    progress: list[str] = []
    workspace, profile, _ = _make_dirs(tmp_path / "dirs")
    sandbox = engine.run(Sandbox.boot(workspace, image=guest_image, profile=profile, on_progress=progress.append),
                         timeout=180)  # fmt: skip
    try:
        assert not sandbox.timings.restored
        assert any("afresh" in p for p in progress), progress
        assert not bad.exists(), "the damaged snapshot was kept"
        assert _sh(engine, sandbox, "echo ok > ok.txt")[2] == 0 and (workspace / "ok.txt").exists()
    finally:
        engine.run(sandbox.close(), timeout=60)


def test_the_woken_stage_runs_as_the_person(woken: Booted) -> None:
    """The stage the app uses: woken, not booted; unprivileged all the same."""
    out, err, code = woken.sh("echo hi > woken.txt; id -u")
    assert code == 0 and out.strip() == "1000", err
    st = (woken.workspace / "woken.txt").stat()
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
