"""Scheduled runs: ``paddock schedule run ID`` as the timer's service runs it, each a headless
session through the one way in (policy, trust, a fresh sandbox, the audit trail).

Real: the CLI in its own processes, the VM, the guest agent, virtiofs, the audit log, the
schedule store and its locks. The one fake is the model service (``tests.fakes.messages_api``, a
loopback Messages API standing in for Anthropic's).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from paddock.assistant.loop import ConversationStore
from paddock.schedule import ScheduleStore
from tests.fakes.messages_api import MessagesAPI, Reply, text, tool
from tests.session.test_entry_points import _assert_linked_trail, _sessions


def _env(tmp: Path, api: MessagesAPI) -> dict[str, str]:
    return {
        **os.environ,
        "PADDOCK_DATA_DIR": str(tmp / "data"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "ANTHROPIC_BASE_URL": api.url,
        "ANTHROPIC_API_KEY": f"test-{secrets.token_hex(16)}",
    }


def _paddock(env: dict[str, str], *args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "paddock.cli", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)  # fmt: skip


def _add(env: dict[str, str], folder: Path, task: str) -> str:
    proc = _paddock(env, "schedule", "add", "--folder", str(folder), "--when", "every monday 09:00", task)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()[1]  # "Schedule <id> added: …"


def _schedule_sessions(data: Path) -> list[list[dict[str, object]]]:
    return [recs for recs in _sessions(data).values() if recs[0]["attributes"].get("paddock.entry") == "schedule"]


@pytest.mark.vm
def test_a_run_makes_the_file_and_a_history_entry_and_a_second_run_at_once_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "invoices"
    folder.mkdir()
    (folder / "march.csv").write_text("invoice,amount\nA-1,120\nA-2,80\n")
    command = "awk -F, 'NR>1{s+=$2} END{print \"total\", s}' march.csv > summary.txt"
    release = threading.Event()  # the model answers the first run once the second has been refused

    def held(_body: object) -> Reply:
        release.wait(120)
        return Reply(tool_uses=[("run_command", {"command": command})])

    with MessagesAPI([held, text("Wrote summary.txt.")]) as api:
        env = _env(tmp_path, api)
        sid = _add(env, folder, "Summarise the invoices into summary.txt")
        first = subprocess.Popen([sys.executable, "-m", "paddock.cli", "schedule", "run", sid],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while not api.requests and first.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)  # the first run has booted its sandbox and is waiting for the model
            assert api.requests, f"the first run never reached the model: {first.communicate()}"
            second = _paddock(env, "schedule", "run", sid, timeout=120)
            requests_during = len(api.requests)
            release.set()
            out, err = first.communicate(timeout=300)
        finally:
            release.set()
            if first.poll() is None:
                first.kill()
    assert second.returncode == 1 and "still going" in second.stdout, (second.stdout, second.stderr)
    assert requests_during == 1  # the refused run sent nothing to the model
    assert first.returncode == 0, (out, err)
    assert (folder / "summary.txt").read_text().strip() == "total 200"

    history = ScheduleStore(tmp_path / "data" / "schedules").history(sid)
    assert [r.outcome for r in history] == ["skipped", "finished"], history
    refused, done = history
    assert "still going" in refused.why
    assert "created" in done.summary and "summary.txt" in done.summary
    assert "created summary.txt" in done.changes and done.answer == "Wrote summary.txt."

    sessions = _schedule_sessions(tmp_path / "data")
    assert len(sessions) == 1, "the refused run must not start a session"
    _assert_linked_trail(sessions[0])  # type: ignore[arg-type]
    assert sessions[0][0]["session_id"] == done.session_id
    # A scheduled run keeps its conversation apart: the folder's own conversation is untouched.
    os.environ["PADDOCK_DATA_DIR"], old = str(tmp_path / "data"), os.environ["PADDOCK_DATA_DIR"]
    try:
        assert not ConversationStore(folder).path.exists()
    finally:
        os.environ["PADDOCK_DATA_DIR"] = old
    listed = _paddock(env, "schedule", "list")
    assert f"{sid}  every monday 09:00" in listed.stdout and "finished: 1 created (summary.txt)" in listed.stdout


@pytest.mark.vm
def test_a_failed_run_is_recorded_and_the_next_run_is_unaffected(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    script = [Reply(status=401), tool("run_command", command="echo weekly > report.txt"), text("Done.")]
    with MessagesAPI(script) as api:
        env = _env(tmp_path, api)
        sid = _add(env, folder, "Write the weekly report")
        failed = _paddock(env, "schedule", "run", sid)
        after_failure = sorted(p.name for p in folder.iterdir())
        ok = _paddock(env, "schedule", "run", sid)
    assert failed.returncode == 1 and "failed" in failed.stdout, (failed.stdout, failed.stderr)
    assert after_failure == []
    assert ok.returncode == 0, (ok.stdout, ok.stderr)
    assert (folder / "report.txt").read_text() == "weekly\n"
    history = ScheduleStore(tmp_path / "data" / "schedules").history(sid)
    assert [r.outcome for r in history] == ["failed", "finished"], history
    assert history[0].why and history[0].session_id  # says why, and which session to look up
    assert history[0].summary == "no files changed"
    sessions = _schedule_sessions(tmp_path / "data")
    outcomes = [s[-1]["attributes"]["paddock.outcome"] for s in sessions]  # type: ignore[index]
    assert len(sessions) == 2 and outcomes[1] == "finished", outcomes


def test_a_folder_policy_now_denies_is_skipped_with_an_audit_record(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    with MessagesAPI([text("must never be asked")]) as api:
        env = _env(tmp_path, api)
        sid = _add(env, folder, "Tidy the folder")  # allowed when it was added
        (tmp_path / "data" / "settings.json").write_text(json.dumps({"mounts": {"denied_paths": [str(folder)]}}))
        proc = _paddock(env, "schedule", "run", sid, timeout=120)
    assert proc.returncode == 1 and "skipped" in proc.stdout, (proc.stdout, proc.stderr)
    assert api.requests == []  # nothing was sent to the model
    history = ScheduleStore(tmp_path / "data" / "schedules").history(sid)
    assert [r.outcome for r in history] == ["skipped"]
    assert "never shares" in history[0].why
    (records,) = _schedule_sessions(tmp_path / "data")
    assert [r["kind"] for r in records] == ["session.started", "policy.decision", "session.ended"]
    decision = records[1]["attributes"]
    assert decision["paddock.policy.allowed"] is False and "never shares" in str(decision["paddock.policy.reason"])
    assert records[2]["attributes"]["paddock.outcome"] == "refused"
