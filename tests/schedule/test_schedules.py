"""Schedules without a sandbox: the ``--when`` grammar (cross-checked with systemd's own calendar
parser), the unit files (checked with ``systemd-analyze verify``), where they are written and
removed, the fallback where there is no user systemd, and the store's files.

All real: the CLI in its own process, systemd-analyze, the files on disk. No fakes.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from paddock.core.notify import send as notify
from paddock.schedule import WINDOW_ONLY, BadWhen, Schedules, ScheduleStore, parse_when
from paddock.schedule import units as unit_files

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is installed by scripts/setup.sh")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    # A short runtime folder: systemd puts sockets there (``…/gnupg/S.gpg-agent.browser``), and a
    # socket's path may not pass 107 bytes; a parallel worker's tmp_path is too deep for that.
    runtime = Path(tempfile.mkdtemp(prefix="pdk-run-"))
    yield {**os.environ, "PADDOCK_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_RUNTIME_DIR": str(runtime)}  # fmt: skip
    shutil.rmtree(runtime, ignore_errors=True)


def _paddock(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "paddock.cli", *args],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip


def _verify(env: dict[str, str], *files: Path) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, "--user", "verify", *map(str, files)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=files[0].parent)  # fmt: skip


@needs_analyze
@pytest.mark.parametrize(
    "when",
    ["every hour", "every day 08:30", "every monday 09:00", "Every Sunday at 23:59", "every weekday 7:45",
     "every month on the 1st 06:00", "every month on the 28th 00:00"],
)  # fmt: skip
def test_every_form_means_the_same_to_systemd(when: str) -> None:
    """Our next three times are the ones systemd's calendar parser gives (local time)."""
    parsed = parse_when(when)
    assert ANALYZE is not None
    proc = subprocess.run([ANALYZE, "calendar", "--iterations=3", parsed.on_calendar],
                          capture_output=True, text=True, timeout=30, env={**os.environ, "TZ": "UTC"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    theirs = [datetime.strptime(m, "%Y-%m-%d %H:%M:%S") for m in re.findall(r"\w{3} (\S+ \S+) UTC", proc.stdout)]
    now = datetime.now(UTC).replace(tzinfo=None)  # compared with systemd's UTC output, both naive
    ours = [parsed.next_after(now)]
    while len(ours) < 3:
        ours.append(parsed.next_after(ours[-1]))
    assert ours == theirs[:3], proc.stdout


@pytest.mark.parametrize(
    "when", ["every 5 minutes", "tomorrow", "every day 25:00", "every day 9", "every month on the 31st 06:00",
             "every mon 09:00; rm -rf ~", "*-*-* 09:00:00"],
)  # fmt: skip
def test_anything_else_is_refused_with_examples_and_nothing_is_written(env: dict[str, str], tmp_path: Path,
                                                                      when: str) -> None:  # fmt: skip
    with pytest.raises(BadWhen):
        parse_when(when)
    (tmp_path / "work").mkdir()
    proc = _paddock(env, "schedule", "add", "--folder", str(tmp_path / "work"), "--when", when, "do it")
    assert proc.returncode == 1 and '"every monday 09:00"' in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "data" / "schedules" / "schedules.json").exists()
    assert not (tmp_path / "config").exists()


@needs_analyze
def test_add_writes_units_systemd_accepts_and_remove_deletes_them(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "work 100%"  # a space and a % in the path: both need escaping in a unit file
    folder.mkdir()
    proc = _paddock(env, "schedule", "add", "--folder", str(folder), "--when", "every monday 09:00",
                    "Summarise the new invoices into summary.xlsx (100% of them)")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sid = proc.stdout.split()[1]
    units = tmp_path / "config" / "systemd" / "user"
    service, timer = units / f"paddock-schedule-{sid}.service", units / f"paddock-schedule-{sid}.timer"
    verified = _verify(env, timer, service)
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr  # no warning either
    assert service.stat().st_mode & 0o777 == 0o600 and timer.stat().st_mode & 0o777 == 0o600  # the task is private
    timer_text, service_text = timer.read_text(), service.read_text()
    # The timer fires WAKE_LEAD_S ahead, on time to the second (the run waits for 09:00 itself).
    assert "OnCalendar=Mon *-*-* 08:59:50" in timer_text and "Persistent=true" in timer_text
    assert "AccuracySec=1s" in timer_text and "RandomizedDelaySec" not in timer_text
    assert f'ExecStart="{sys.executable}" "-m" "paddock.cli" "schedule" "run" "--timer" "{sid}"' in service_text
    assert Path(sys.executable).is_absolute()
    assert (units / "timers.target.wants" / timer.name).resolve() == timer.resolve()  # enabled for the next login
    # No user systemd here: said plainly (a test that would notice if one appeared and was not used).
    live = unit_files.user_manager_running()
    assert (WINDOW_ONLY in proc.stdout) is not live
    listed = _paddock(env, "schedule", "list")
    assert sid in listed.stdout and "not run yet" in listed.stdout

    removed = _paddock(env, "schedule", "remove", sid)
    assert removed.returncode == 0, removed.stderr
    assert sorted(p.name for p in units.rglob("*")) == ["timers.target.wants"]
    assert "No schedules" in _paddock(env, "schedule", "list").stdout
    unknown = _paddock(env, "schedule", "remove", sid)
    assert unknown.returncode == 1 and "no schedule" in unknown.stderr


@needs_analyze
def test_verify_would_catch_a_broken_timer(env: dict[str, str], tmp_path: Path) -> None:
    """The check above can fail: the same verify refuses a timer with a time systemd cannot read."""
    (tmp_path / "work").mkdir()
    sid = _paddock(env, "schedule", "add", "--folder", str(tmp_path / "work"), "--when", "every day 08:00",
                   "x").stdout.split()[1]  # fmt: skip
    units = tmp_path / "config" / "systemd" / "user"
    timer = units / f"paddock-schedule-{sid}.timer"
    timer.write_text(timer.read_text().replace("07:59:50", "29:59:50"))
    assert _verify(env, timer, units / f"paddock-schedule-{sid}.service").returncode != 0


def test_a_denied_folder_cannot_be_scheduled(env: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    proc = _paddock({**env, "HOME": str(home)}, "schedule", "add", "--folder", str(home / ".ssh"),
                    "--when", "every day 08:00", "read the keys")  # fmt: skip
    assert proc.returncode == 1 and "never shares" in proc.stderr
    assert not (tmp_path / "config").exists()


def test_the_store_is_private_and_a_broken_one_is_refused_not_replaced(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    assert _paddock(env, "schedule", "add", "--folder", str(tmp_path / "work"), "--when", "every hour",
                    "x").returncode == 0  # fmt: skip
    root = tmp_path / "data" / "schedules"
    assert root.stat().st_mode & 0o777 == 0o700
    for path in root.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, path
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
    broken = '[{"id": "nope"}]'
    (root / "schedules.json").write_text(broken)
    proc = _paddock(env, "schedule", "list")
    assert proc.returncode == 1 and "cannot be read" in proc.stderr and "Traceback" not in proc.stderr
    assert (root / "schedules.json").read_text() == broken


def test_the_window_runs_what_is_due_once_however_many_were_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where there is no user systemd, the window starts due schedules (catch-up: one run)."""
    store = ScheduleStore(tmp_path / "schedules")
    old = store.add(folder=str(tmp_path), when="every day 08:00", on_calendar="*-*-* 08:00:00", task="a",
                    created=datetime(2026, 1, 1, 12, 0).astimezone())  # fmt: skip
    store.add(folder=str(tmp_path), when="every hour", on_calendar="*-*-* *:00:00", task="b",
              created=datetime.now().astimezone())  # fmt: skip
    schedules = Schedules(store, tmp_path / "units")
    started: list[str] = []

    async def start(schedule_id: str) -> None:  # stands in for the run's own process
        started.append(schedule_id)

    monkeypatch.setattr(schedules, "start", start)

    assert asyncio.run(schedules.run_due()) == [old.id]
    with store.running(old.id) as mine:  # a run holds the lock: not started again
        assert mine
        assert asyncio.run(schedules.run_due()) == []


def test_a_notification_with_no_notification_service_is_skipped_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    assert notify("Paddock", "a run finished") is False
    monkeypatch.undo()


@needs_analyze
def test_a_task_cannot_write_its_own_lines_into_the_unit_files(env: dict[str, str], tmp_path: Path) -> None:
    """The task's words go into the units' descriptions only: a newline cannot start a directive
    and a % cannot expand to a specifier; the service runs nothing but ``schedule run ID``."""
    (tmp_path / "work").mkdir()
    task = "tidy %h %u\nExecStartPre=/bin/sh -c 'touch /tmp/owned'\n[Service]\nExecStart=/bin/true"
    proc = _paddock(env, "schedule", "add", "--folder", str(tmp_path / "work"), "--when", "every day 08:00", task)
    assert proc.returncode == 0, proc.stderr
    sid = proc.stdout.split()[1]
    units = tmp_path / "config" / "systemd" / "user"
    service = units / f"paddock-schedule-{sid}.service"
    lines = service.read_text().splitlines()
    assert [line for line in lines if line.startswith("ExecStart")] == [
        f'ExecStart="{sys.executable}" "-m" "paddock.cli" "schedule" "run" "--timer" "{sid}"'
    ]
    assert lines.count("[Service]") == 1
    assert lines[1].startswith(f"Description=Paddock schedule {sid}: tidy %%h %%u ExecStartPre=")
    verified = _verify(env, units / f"paddock-schedule-{sid}.timer", service)
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr
    assert ScheduleStore(tmp_path / "data" / "schedules").get(sid).task == task.strip()  # kept whole, for the run


@needs_analyze
def test_a_dollar_in_a_passed_on_variable_reaches_the_run_as_it_is(env: dict[str, str], tmp_path: Path) -> None:
    """systemd expands % in ``Environment=`` but not $: a data folder named with both is written so
    that the run gets exactly the name (a `$$` there would reach the run as two dollars)."""
    (tmp_path / "work").mkdir()
    data = tmp_path / "data $HOME 100%"
    proc = _paddock({**env, "PADDOCK_DATA_DIR": str(data)}, "schedule", "add", "--folder", str(tmp_path / "work"),
                    "--when", "every day 08:00", "x")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sid = proc.stdout.split()[1]
    units = tmp_path / "config" / "systemd" / "user"
    service = units / f"paddock-schedule-{sid}.service"
    expected = str(data).replace("%", "%%")
    assert f'Environment="PADDOCK_DATA_DIR={expected}"' in service.read_text().splitlines()
    verified = _verify(env, units / f"paddock-schedule-{sid}.timer", service)
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr


def test_a_look_at_whether_a_schedule_runs_never_makes_a_real_run_skip(tmp_path: Path) -> None:
    """The list's "is it running?" look takes the run lock for an instant; a run starting in that
    instant waits it out instead of recording "skipped", and the look writes nothing."""
    import fcntl
    import threading

    store = ScheduleStore(tmp_path / "schedules")
    s = store.add(folder=str(tmp_path), when="every day 08:00", on_calendar="*-*-* 08:00:00", task="a",
                  created=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    lock = store.folder_of(s.id) / "run.lock"
    with store.running(s.id) as mine:  # a real run holds it: the look says so and leaves its mark alone
        assert mine and store.is_running(s.id)
        mark = lock.read_text()
    before = lock.stat().st_mtime_ns
    assert not store.is_running(s.id)
    assert mark == f"{os.getpid()}\n" and lock.read_text() == mark and lock.stat().st_mtime_ns == before
    fd = os.open(lock, os.O_RDWR)  # a look (in another process, in real life) holds it right now …
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(0.3, os.close, (fd,)).start()  # … for an instant
    with store.running(s.id) as mine:
        assert mine  # the run waited the look out
