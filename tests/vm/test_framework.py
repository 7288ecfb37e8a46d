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
    kept = list((artifacts / "test_failing.test_deliberately_fails").glob("vm-*"))  # named by its node id
    assert len(kept) == 1, proc.stdout
    names = {p.name for p in kept[0].iterdir()}
    assert {"qemu.log", "virtiofsd-workspace.log", "virtiofsd-profile.log", "console.log"} <= names, names
    assert "paddock-agent" in (kept[0] / "console.log").read_text()


LEFT_RUNNING = """
from pathlib import Path

from paddock.sandbox import Sandbox


def test_boots_outside_the_factory_and_fails(engine, guest_image, tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "p").mkdir()
    sandbox = engine.run(Sandbox.boot(tmp_path / "w", image=guest_image, profile=tmp_path / "p"), timeout=180)
    Path("{pids}").write_text(" ".join(str(p) for p in sandbox.vm.pids.values()))
    assert False, "failed with its VM still running"


def test_the_next_one():  # the session's own teardown (closing the engine) comes after this one
    pass
"""


def _pytest(tmp_path: Path, source: str, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    (tmp_path / "test_it.py").write_text(source)
    artifacts = tmp_path / "artifacts"
    outer = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}  # this run's own worker
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q", "-rs",
         "--rootdir", str(tmp_path), *args, str(tmp_path / "test_it.py")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**outer, "PADDOCK_TEST_ARTIFACTS": str(artifacts), "PYTHONPATH": str(REPO), **env},
    )  # fmt: skip
    return proc, artifacts


@pytest.mark.parametrize("workers", [[], ["-n", "2", "--dist", "loadfile"]], ids=["one-process", "two-workers"])
def test_a_vm_booted_outside_the_factory_keeps_its_logs_and_is_killed_after_its_test(
    tmp_path: Path, workers: list[str]
) -> None:
    """However a test boots a VM (here ``Sandbox.boot`` in the test's body, as a session or the
    window would), a failure keeps its logs, and a VM the test left running is stopped; in a
    parallel run too (a worker's VMs are reported by the run)."""
    pids = tmp_path / "pids"
    proc, artifacts = _pytest(tmp_path, LEFT_RUNNING.replace("{pids}", str(pids)), *workers)
    assert proc.returncode == 1 and "1 failed, 1 passed" in proc.stdout, proc.stdout + proc.stderr
    kept = list((artifacts / "test_it.test_boots_outside_the_factory_and_fails").glob("vm-*"))
    assert kept, proc.stdout
    assert any("paddock-agent" in (k / "console.log").read_text() for k in kept if (k / "console.log").exists())
    assert "VMs a test left running (killed after it)" in proc.stdout, proc.stdout
    for pid in pids.read_text().split():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
