"""The installed ``paddock`` command, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PADDOCK = [sys.executable, "-m", "paddock.cli"]


def _run(*args: str, timeout: float = 240, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ.copy() if env is None else env
    return subprocess.run([*PADDOCK, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.vm
def test_sandbox_exec_round_trip(tmp_path: Path) -> None:
    proc = _run("sandbox", "exec", "--folder", str(tmp_path), "--", "sh", "-c", "echo hi > f; uname -r; exit 3")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.strip().endswith("-paddock")  # the guest's own kernel
    assert (tmp_path / "f").read_text() == "hi\n"
    assert "Sandbox ready" in proc.stderr


@pytest.mark.vm
def test_sandbox_exec_timeout_exit_code(tmp_path: Path) -> None:
    proc = _run("sandbox", "exec", "--quiet", "--timeout", "1", "--folder", str(tmp_path), "--", "sleep", "60")
    assert proc.returncode == 124, proc.stderr
    assert "killed after 1 s" in proc.stderr


def test_sandbox_exec_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    proc = _run("sandbox", "exec", "--folder", str(tmp_path / "nope"), "--", "true")
    assert proc.returncode == 125
    assert "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sandbox_exec_without_a_command(tmp_path: Path) -> None:
    proc = _run("sandbox", "exec", "--folder", str(tmp_path))
    assert proc.returncode == 2
    assert "no command given" in proc.stderr


def test_missing_image_is_a_clear_error(tmp_path: Path) -> None:
    env = os.environ.copy()
    env["PADDOCK_GUEST_IMAGE"] = str(tmp_path / "no-image")
    proc = subprocess.run(
        [*PADDOCK, "sandbox", "exec", "--folder", str(tmp_path), "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 125
    assert "setup.sh" in proc.stderr and "Traceback" not in proc.stderr


def test_doctor_reports_each_check() -> None:
    proc = _run("doctor", "--no-probe", timeout=60)
    for name in ("QEMU", "Folder sharing", "Sandbox image", "Accelerator", "Keychain"):
        assert name in proc.stdout
    assert proc.returncode in (0, 1)
    assert "Traceback" not in proc.stderr


def test_paddock_without_a_display_explains_what_is_there() -> None:
    no_display = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = _run(timeout=60, env=no_display)
    assert "needs a desktop session" in proc.stdout
    assert proc.returncode == 0
    assert "paddock run --folder DIR" in proc.stdout and "Traceback" not in proc.stderr
