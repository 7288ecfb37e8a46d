"""Files two processes write are locked with ``filelock`` (``paddock.core.locks``): a lock held in
one process keeps every other out, until it is let go or its holder dies.

Real: separate processes (spawned), the real lock files of the revocation list, a folder's undo
store, the schedules list and the audit log; the gateway's own environment importing the token
module. No fakes.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
from pathlib import Path

import pytest

from paddock.audit import AuditLog
from paddock.core.locks import Timeout, file_lock
from paddock.egress.tokens import TokenAuthority
from paddock.policy import TrustStore
from paddock.schedule.store import ScheduleStore
from paddock.undo.store import UndoStore

ROOT = Path(__file__).resolve().parents[2]


def _hold(path: str, held: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event) -> None:
    with file_lock(Path(path)):
        held.set()
        release.wait(60)


def _lock_files(tmp_path: Path) -> dict[str, Path]:
    """Where each writer's lock lives (each made the way the product makes it)."""
    tokens = TokenAuthority(tmp_path / "tokens")
    with tokens._locked():
        pass
    undo = UndoStore(tmp_path / "folder", root=tmp_path / "undo")
    with undo.locked():
        pass
    schedules = ScheduleStore(tmp_path / "schedules")
    schedules.add(folder=str(tmp_path), when="every hour", on_calendar="*-*-* *:00:00", task="t")
    log = AuditLog(tmp_path / "audit", key=b"k" * 32)
    log.append({"event": "x"})
    return {
        "revocations": tmp_path / "tokens" / "revoked.lock",
        "undo": undo.path / "lock",
        "schedules": tmp_path / "schedules" / ".edit.lock",
        "audit": tmp_path / "audit" / ".lock",
    }


@pytest.mark.parametrize("which", ["revocations", "undo", "schedules", "audit"])
def test_a_lock_held_in_one_process_keeps_another_out(tmp_path: Path, which: str) -> None:
    path = _lock_files(tmp_path)[which]
    assert path.is_file() and (path.stat().st_mode & 0o077) == 0, "the lock file is its owner's alone"
    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold, args=(str(path), held, release))
    other.start()
    try:
        assert held.wait(60)
        with pytest.raises(Timeout):
            file_lock(path, timeout=0.3).acquire()
    finally:
        release.set()
        other.join(30)
    with file_lock(path, timeout=5):  # let go: the next one gets it
        pass


def _trust_all(store: str, folders: list[str], start: multiprocessing.synchronize.Event) -> None:
    start.wait(60)
    trust = TrustStore(Path(store))
    for folder in folders:
        trust.trust(Path(folder))


def test_no_trust_decision_is_lost_when_two_processes_decide_at_once(tmp_path: Path) -> None:
    """The window and a `paddock run --yes` each read, change and rewrite the trust list: without
    the lock one writes back what it read before the other's change (a revocation undone, or a
    trust lost). Failed before: 160 of the 400 were lost in one run."""
    store = tmp_path / "trust.json"
    groups = [[str(tmp_path / f"{g}-{i}") for i in range(200)] for g in ("a", "b")]
    for folder in (f for group in groups for f in group):
        Path(folder).mkdir()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_trust_all, args=(str(store), group, start)) for group in groups]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(120)
    trust = TrustStore(store)
    missing = [f for group in groups for f in group if not trust.is_trusted(Path(f))]
    assert missing == [], f"{len(missing)} of 400 trust decisions were lost"


def test_a_lock_is_let_go_when_its_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold, args=(str(path), held, release))
    other.start()
    assert held.wait(60) and other.pid is not None
    os.kill(other.pid, signal.SIGKILL)  # no clean-up runs: the kernel lets go of the flock
    other.join(30)
    with file_lock(path, timeout=5):
        pass
    assert path.exists()  # the lock file stays (waiters share its inode)


def test_the_gateway_environment_can_load_the_token_module() -> None:
    """The gateway imports paddock.egress.tokens in its own environment (.venv-gateway, built by
    scripts/setup.sh from packaging/gateway-requirements.txt): filelock and platformdirs are there."""
    python = ROOT / ".venv-gateway" / "bin" / "python"
    if not python.exists():
        pytest.skip("no .venv-gateway here: scripts/setup.sh makes it")
    proc = subprocess.run(
        [str(python), "-c", "import paddock.egress.tokens, paddock.core.locks, paddock.core.paths"],
        env={"PYTHONPATH": str(ROOT / "app"), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
