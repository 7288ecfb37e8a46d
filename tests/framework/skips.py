"""Skips a CI run may have, each with its reason; under ``CI`` any other skip fails the run.

A green run that silently skipped a whole suite proves nothing. Locally a skip only says why
(no test sshd, not root, ...); with ``CI`` set (``.ci/run`` runs with ``CI=true``) a skip that
matches none of ``ALLOWED`` turns the run red, naming the test and its reason.

An entry is (a glob over the test's node id, a piece of the skip reason, why it is allowed).
Add one only for a skip that depends on the release or the kernel the run is on, never for a
missing set-up step (scripts/test.sh makes those).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

import pytest

ALLOWED: tuple[tuple[str, str, str], ...] = (
    ("*[[]c-virtiofsd[]]", "is not installed or does not run here",
     "one folder-sharing daemon per release: Debian 12 has only QEMU's C virtiofsd"),
    ("*[[]rust-virtiofsd[]]", "is not installed or does not run here",
     "one folder-sharing daemon per release: Debian 13 and Ubuntu have only the Rust virtiofsd"),
    ("tests/unit/test_guard_calls.py::*", "this kernel has no fchmodat2",
     "fchmodat2 came with Linux 6.6: older kernels (Debian 12's 6.1) have no call to guard"),
)  # fmt: skip


@dataclass(frozen=True)
class Skip:
    nodeid: str
    reason: str

    def allowed(self) -> bool:
        return any(fnmatch.fnmatchcase(self.nodeid, glob) and part in self.reason for glob, part, _ in ALLOWED)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def skip_of(report: pytest.TestReport) -> Skip | None:
    """The skip this report records (not an expected failure), else None."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return Skip(report.nodeid, reason.removeprefix("Skipped: "))


class SkipGate:
    """Collects the run's skips; under CI, an unexpected one fails the session."""

    def __init__(self) -> None:
        self.skips: list[Skip] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        skip = skip_of(report)
        if skip is not None:
            self.skips.append(skip)

    def unexpected(self) -> list[Skip]:
        return [s for s in self.skips if not s.allowed()]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if in_ci() and self.unexpected() and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        unexpected = self.unexpected()
        if not unexpected:
            return
        verdict = "fails the run (CI)" if in_ci() else "would fail a CI run"
        terminalreporter.section(f"{len(unexpected)} unexpected skip(s): {verdict}", red=in_ci(), yellow=not in_ci())
        for s in unexpected:
            terminalreporter.write_line(f"{s.nodeid}: {s.reason}")
        terminalreporter.write_line("(allowed skips: tests/framework/skips.py ALLOWED)")
