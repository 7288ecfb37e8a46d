"""A scheduled run started by its timer ahead of its time (#33): the timer fires ``WAKE_LEAD_S``
early, the run wakes its sandbox at once and sends the task at the due time, recorded as starting
then; a run stopped or refused before its time leaves no VM.

Real: the VM woken from the saved sandbox, the guest agent, the session's log, the schedule store
and its lock, ``systemd-analyze`` reading the timer's times. Fakes: the model service
(``tests.fakes.messages_api``, a loopback Messages API), and the clock the run waits on for its due
time (``wait=``: the test says when the time has come, so nothing depends on how long a wake takes).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from paddock.core.paths import data_dir
from paddock.schedule import ScheduleStore, parse_when, run_schedule
from paddock.schedule.when import WAKE_LEAD_S, When
from tests.conftest import live_processes
from tests.fakes.messages_api import MessagesAPI, Reply, text

AHEAD = "woken ahead)"  # the sandbox's line in the session's log


def _vms() -> set[str]:
    return set(live_processes(names=("qemu-system",)))


def _add(folder: Path) -> tuple[ScheduleStore, str]:
    store = ScheduleStore()
    sid = store.add(folder=str(folder), when="every day 08:00", on_calendar="*-*-* 08:00:00", task="Say hello",
                    timeout_min=5, created=datetime.now().astimezone()).id  # fmt: skip
    return store, sid


# ---------------------------------------------------------------------- the timer's times (no VM)

WHENS = ["every hour", "every day 08:30", "every day 00:00", "every weekday 00:00", "every weekday 07:45",
         "every monday 00:00", "every sunday 09:00", "every month on the 1st 00:00", "every month on the 15th 00:00",
         "every month on the 1st 06:00"]  # fmt: skip


def _elapses(expression: str, base: str) -> list[str]:
    argv = [str(shutil.which("systemd-analyze")), "calendar", "--iterations=6", f"--base-time={base}", expression]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True, env={"TZ": "UTC"})
    return re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+)", proc.stdout)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("when", WHENS)
def test_the_timer_fires_the_lead_before_every_due_time(when: str) -> None:
    """systemd's own reading of the timer's time is each due time less WAKE_LEAD_S, over borders
    of the day, the week and the month."""
    parsed = parse_when(when)
    base = "2027-02-27 12:00:00 UTC"  # a Saturday, before a month's end
    due = [datetime.fromisoformat(t) for t in _elapses(parsed.on_calendar, base)]
    ahead = [datetime.fromisoformat(t) for t in _elapses(parsed.ahead_calendar(WAKE_LEAD_S), base)]
    assert len(due) == 6 and ahead == [t - timedelta(seconds=WAKE_LEAD_S) for t in due], (due, ahead)


def test_a_timer_start_waits_only_for_a_due_time_that_is_near() -> None:
    when = When("day", 8, 0)
    due = datetime(2027, 3, 1, 8, 0)
    assert when.due_soon(due - timedelta(seconds=WAKE_LEAD_S)) == due  # fired ahead: wait for 08:00
    assert when.due_soon(due - timedelta(seconds=WAKE_LEAD_S - 0.5)) == due
    assert when.due_soon(due - timedelta(minutes=5)) is None  # a catch-up at boot: run now
    assert when.due_soon(due + timedelta(seconds=0.3)) is None  # fired late: run now, never wait a day
    with pytest.raises(ValueError):
        when.ahead_calendar(60)


# ---------------------------------------------------------------------- runs (VM)


@pytest.mark.vm
def test_a_run_ahead_of_its_time_wakes_first_and_sends_the_task_at_its_time(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    store, sid = _add(folder)
    due = (datetime.now() + timedelta(seconds=WAKE_LEAD_S)).astimezone()
    events: list[str] = []
    before = _vms()
    at_due: dict[str, object] = {}

    async def clock(at: datetime) -> None:  # the due time comes when the sandbox is up, whatever the wake took
        at_due.update(at=at, vms=_vms() - before, asked=len(api.requests))
        events.append("due")

    def reply(_body: object) -> Reply:
        events.append("task")
        return text("Hello.")

    with MessagesAPI([reply]) as api:
        env = {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": f"test-{secrets.token_hex(16)}"}
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            run = asyncio.run(run_schedule(sid, store=store, notifier=lambda *_: None, due=due, wait=clock))
    assert run.outcome == "finished", run
    assert at_due["at"] == due and at_due["vms"], "no sandbox was running when the run waited for its time"
    assert at_due["asked"] == 0 and events == ["due", "task"]  # the task went out after the due time, not before
    assert run.started == due and store.history(sid)[-1].started == due  # the history keeps the due time
    log = (data_dir() / "logs" / f"session-{run.session_id}.log").read_text()
    assert AHEAD in log, log
    assert not _vms() - before


@pytest.mark.vm
def test_a_run_stopped_before_its_time_leaves_no_vm(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    store, sid = _add(folder)
    due = (datetime.now() + timedelta(seconds=WAKE_LEAD_S)).astimezone()
    before = _vms()
    woken: set[str] = set()

    async def scenario() -> None:
        waiting = asyncio.Event()

        async def never(_at: datetime) -> None:  # the due time never comes: the run is stopped first
            woken.update(_vms() - before)
            waiting.set()
            await asyncio.Event().wait()

        task = asyncio.ensure_future(run_schedule(sid, store=store, notifier=lambda *_: None, due=due, wait=never))
        await asyncio.wait_for(waiting.wait(), 300)
        assert store.is_running(sid)  # the lock is held from the timer's start: a manual run now is refused
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with MessagesAPI([text("must never be asked")]) as api, pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANTHROPIC_BASE_URL", api.url)
        mp.setenv("ANTHROPIC_API_KEY", f"test-{secrets.token_hex(16)}")
        asyncio.run(scenario())
        assert api.requests == []
    assert woken, "the run never woke a sandbox ahead of its time"
    assert not _vms() - before, "the sandbox woken ahead was left running"
    assert not store.is_running(sid)
    (run,) = store.history(sid)
    assert run.outcome == "failed" and run.why == "it was stopped" and run.started == due


def test_a_run_refused_before_its_time_wakes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder policy now denies: refused at once, recorded at its due time; no VM is started
    (nothing is woken before the folder is decided)."""
    monkeypatch.setenv("PADDOCK_DATA_DIR", str(tmp_path / "data"))  # the denying settings are this test's only
    folder = tmp_path / "work"
    folder.mkdir()
    store, sid = _add(folder)
    (data_dir() / "settings.json").write_text(json.dumps({"mounts": {"denied_paths": [str(folder)]}}))
    due = (datetime.now() + timedelta(seconds=WAKE_LEAD_S)).astimezone()
    before = _vms()
    waited: list[datetime] = []

    async def clock(at: datetime) -> None:
        waited.append(at)

    run = asyncio.run(run_schedule(sid, store=store, notifier=lambda *_: None, due=due, wait=clock))
    assert run.outcome == "skipped" and "never shares" in run.why and run.started == due
    assert waited == [] and not _vms() - before


def test_the_timer_s_run_takes_its_due_time_from_the_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--timer``: started WAKE_LEAD_S before 08:00 the run is 08:00's; started minutes after (a
    catch-up) it runs at once. The folder is denied, so no VM starts and nothing waits."""
    from paddock.schedule import run as schedule_run

    monkeypatch.setenv("PADDOCK_DATA_DIR", str(tmp_path / "data"))  # the denying settings are this test's only
    folder = tmp_path / "work"
    folder.mkdir()
    store, sid = _add(folder)
    (data_dir() / "settings.json").write_text(json.dumps({"mounts": {"denied_paths": [str(folder)]}}))
    due = datetime.now().replace(hour=8, minute=0, second=0, microsecond=0).astimezone()
    for now, started in ((due - timedelta(seconds=WAKE_LEAD_S), due), (due + timedelta(minutes=7), None)):
        monkeypatch.setattr(schedule_run, "_now", lambda now=now: now)
        run = asyncio.run(run_schedule(sid, store=store, notifier=lambda *_: None, timer=True))
        assert run.outcome == "skipped" and run.started == (started or now), (now, run)
    cli = subprocess.run([sys.executable, "-m", "paddock.cli", "schedule", "run", "--timer", sid],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert cli.returncode == 1 and "skipped" in cli.stdout, (cli.stdout, cli.stderr)
