"""The test framework's own promise: a failing VM test leaves the QEMU, virtiofsd and console
logs of its VMs behind, in test-artifacts/<test>/ (after Firecracker's suite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.vm

FAILING = """
def test_deliberately_fails(booted):
    out, _, _ = booted.sh("echo the guest ran this")
    assert out == "something else"
"""


def test_a_failing_vm_test_keeps_qemu_virtiofsd_and_console_logs(tmp_path: Path) -> None:
    (tmp_path / "test_failing.py").write_text(FAILING)
    artifacts = tmp_path / "artifacts"
    env = {**os.environ, "PADDOCK_TEST_ARTIFACTS": str(artifacts), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q",
         "--rootdir", str(tmp_path), str(tmp_path / "test_failing.py")],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1 and "1 failed" in proc.stdout, proc.stdout + proc.stderr
    kept = list((artifacts / "test_deliberately_fails").glob("vm-*"))
    assert len(kept) == 1, proc.stdout
    names = {p.name for p in kept[0].iterdir()}
    assert {"qemu.log", "virtiofsd-workspace.log", "virtiofsd-profile.log", "console.log"} <= names, names
    assert "paddock-agent" in (kept[0] / "console.log").read_text()
