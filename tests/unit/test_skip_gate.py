"""The test framework's skip gate: under CI a skip that is not on the allowed list fails the run
(a green run that silently skipped a suite proves nothing); locally it only says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SKIPS = """
import pytest


def test_runs():
    pass


def test_skipped_for_no_good_reason():
    pytest.skip("needs something nobody set up")


@pytest.mark.parametrize("x", [1], ids=["rust-virtiofsd"])
def test_release_dependent(x):
    pytest.skip("the Rust virtiofsd is not installed or does not run here")
"""


def _run(tmp_path: Path, source: str, ci: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_it.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(REPO), "PADDOCK_TEST_ROLE": ""}
    if ci:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q",
         "--rootdir", str(tmp_path), str(tmp_path / "test_it.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip


def test_an_unexpected_skip_fails_a_ci_run_and_is_named(tmp_path: Path) -> None:
    proc = _run(tmp_path, SKIPS, ci="true")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 unexpected skip(s): fails the run (CI)" in proc.stdout  # the allowed one is not counted
    assert "test_skipped_for_no_good_reason: needs something nobody set up" in proc.stdout
    assert "test_release_dependent[rust-virtiofsd]:" not in proc.stdout


def test_outside_ci_an_unexpected_skip_is_only_reported(tmp_path: Path) -> None:
    proc = _run(tmp_path, SKIPS, ci="")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 unexpected skip(s): would fail a CI run" in proc.stdout
