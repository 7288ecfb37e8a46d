"""What a scheduled run does with nobody there: a question about a website is answered no,
recorded and named in the result; a run past its time limit is stopped and says why.

Real: the VM, the guest agent, the mitmproxy gateway, the audit log, the schedule store and lock;
a local HTTPS server stands in for a site on the internet (``charts.example.test``, reached through
``paddock.egress.gateway.LOOPBACK_UPSTREAMS`` as in tests/egress). The model service is the fake
(``tests.fakes.messages_api``). The run is in-process (``run_schedule``, what
``paddock schedule run`` calls) so the policy can allow asking without an admin-owned file, and
the notification is captured through ``run_schedule``'s ``notifier`` instead of shown.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import datetime
from pathlib import Path

import pytest

from paddock.egress import gateway
from paddock.policy import EffectivePolicy
from paddock.schedule import ScheduleStore, run_schedule
from paddock.schedule import run as schedule_run
from tests.egress.test_egress import CLIENT
from tests.egress.upstream import Upstream
from tests.fakes.messages_api import MessagesAPI, Reply, text, tool
from tests.session.test_entry_points import _sessions

pytestmark = pytest.mark.vm
HOST = "charts.example.test"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ScheduleStore:
    monkeypatch.setenv("PADDOCK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", f"test-{secrets.token_hex(16)}")
    return ScheduleStore()


def _schedule(store: ScheduleStore, folder: Path, task: str, timeout_min: int = 60) -> str:
    return store.add(folder=str(folder), when="every day 08:00", on_calendar="*-*-* 08:00:00", task=task,
                     timeout_min=timeout_min, created=datetime.now().astimezone()).id  # fmt: skip


def test_a_question_nobody_can_answer_is_answered_no_and_named_in_the_result(
    store: ScheduleStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = Upstream(tmp_path, HOST)
    monkeypatch.setitem(gateway.LOOPBACK_UPSTREAMS, HOST, f"127.0.0.1:{upstream.port}")
    monkeypatch.setattr(gateway, "UPSTREAM_CA", upstream.ca)
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / ".client.py").write_text(CLIENT)
    sid = _schedule(store, folder, "Upload the chart")
    notes: list[tuple[str, str, bool]] = []
    script = [tool("run_command", command=f"python3 .client.py POST https://{HOST}/upload"), text("Could not upload.")]
    with MessagesAPI(script) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        run = asyncio.run(run_schedule(sid, store=store, notifier=lambda *n: notes.append(n),
                                       policy_loader=lambda **_: EffectivePolicy(allow_asking=True)))  # fmt: skip
    assert upstream.hits == [], "a request no grant covers reached the site"
    assert run.outcome == "finished" and run.questions == [HOST], run
    assert f"asked to reach {HOST} (answered no: nobody was there)" in run.result()
    (records,) = (r for r in _sessions(tmp_path / "data").values() if r[0]["session_id"] == run.session_id)
    answered = [r["attributes"] for r in records if r["kind"] == "policy.decision"
                and HOST in str(r["attributes"]["paddock.policy.subject"])]  # fmt: skip
    assert len(answered) == 1 and answered[0]["paddock.policy.allowed"] is False
    assert "nobody was there" in str(answered[0]["paddock.policy.reason"])
    ((title, body, urgent),) = notes
    assert "finished" in title and HOST in body and f"paddock schedule history {sid}" in body and not urgent


def test_a_run_past_its_time_limit_is_stopped_and_says_why(store: ScheduleStore, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(schedule_run, "MINUTE_S", 5.0)  # the limit's minute, shortened: the reply takes 150 s
    folder = tmp_path / "work"
    folder.mkdir()
    sid = _schedule(store, folder, "Think for a long time", timeout_min=1)
    notes: list[tuple[str, str, bool]] = []
    with MessagesAPI([Reply(text="too late", delay_s=150)]) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        t0 = time.monotonic()
        run = asyncio.run(run_schedule(sid, store=store, notifier=lambda *n: notes.append(n)))
        took = time.monotonic() - t0
    assert run.outcome == "timed out" and "did not finish within 1 minute" in run.why, run
    assert took < 100, f"the run was not stopped at its limit ({took:.0f} s)"
    assert [r.outcome for r in store.history(sid)] == ["timed out"]
    assert not store.is_running(sid)  # the lock went with the run
    (records,) = (r for r in _sessions(tmp_path / "data").values() if r[0]["session_id"] == run.session_id)
    assert records[-1]["kind"] == "session.ended"
    ((title, body, urgent),) = notes
    assert "timed out" in title and "did not finish" in body and urgent
