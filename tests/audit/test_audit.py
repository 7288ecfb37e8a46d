"""The audit trail: the hash chain, export, and a scripted session against the real VM
feeding a real OTLP receiver (which goes down mid-session in one test)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paddock.assistant.loop import AssistantSession, ConversationStore
from paddock.audit import AuditEvent, AuditLog, AuditTrail, otlp_exporter
from paddock.core.engine import Engine
from paddock.llm import AnthropicProvider
from paddock.sandbox import Sandbox
from paddock.session.auditing import SessionAuditor
from tests.fakes.messages_api import MessagesAPI, text, tool
from tests.otlp_receiver import OtlpReceiver

# ------------------------------------------------------------------ the chain


KEY = secrets.token_bytes(32)  # stands for the person's audit key (the real one is in the keychain)


def _filled(tmp_path: Path, n: int = 20, max_bytes: int = 50_000_000) -> AuditLog:
    log = AuditLog(tmp_path / "audit", max_bytes=max_bytes, key=KEY)
    for i in range(n):
        log.append(AuditEvent("turn", "ab" * 16, attributes={"i": i}).as_record())
    return log


def test_an_intact_log_verifies_and_exports(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    assert log.verify().ok and log.verify().records == 20
    assert [r["seq"] for r in log.records()] == list(range(1, 21))
    cut = list(log.records())[10]["time_unix"]
    assert next(r["seq"] for r in log.records(since=cut)) == 11


def test_an_edited_record_fails_verify_naming_it(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    lines = log.current.read_text().splitlines()
    rec = json.loads(lines[6])
    rec["attributes"]["i"] = 999
    lines[6] = json.dumps(rec)
    log.current.write_text("\n".join(lines) + "\n")
    result = log.verify()
    assert not result.ok and "line 7 (record 7): its content was changed" in result.problem


def test_a_deleted_middle_record_fails_verify(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    lines = log.current.read_text().splitlines()
    del lines[4]
    log.current.write_text("\n".join(lines) + "\n")
    result = log.verify()
    assert not result.ok and "record 6" in result.problem and "missing" in result.problem


def test_a_truncated_log_fails_verify(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    lines = log.current.read_text().splitlines()
    log.current.write_text("\n".join(lines[:-3]) + "\n")
    result = log.verify()
    assert not result.ok and "removed from the end" in result.problem


def test_rotation_keeps_the_chain(tmp_path: Path) -> None:
    log = _filled(tmp_path, n=60, max_bytes=2000)
    assert len(log.files()) > 2
    result = log.verify()
    assert result.ok and result.records == 60


def _rechain(log: AuditLog, key: bytes | None, edit: dict[int, int]) -> None:
    """Rewrite the whole log and its head as a forger would: edit records, recompute every hash
    (plain SHA-256 when ``key`` is None, HMAC under ``key`` otherwise) and the head."""
    import hashlib
    import hmac

    prev, out = "0" * 64, []
    for rec in log.records():
        rec["attributes"]["i"] = edit.get(rec["seq"], rec["attributes"].get("i"))
        rec["prev"] = prev
        body = json.dumps(
            {k: v for k, v in rec.items() if k != "hash"}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
        rec["hash"] = prev = (hmac.new(key, body, hashlib.sha256) if key else hashlib.sha256(body)).hexdigest()
        out.append(json.dumps(rec))
    log.current.write_text("\n".join(out) + "\n")
    head = json.loads(log.head.read_text())
    log.head.write_text(json.dumps({**head, "seq": len(out), "hash": prev}))


@pytest.mark.parametrize("forger_key", [None, b"a key that is not the person's"], ids=["sha256", "other-key"])
def test_a_whole_rewritten_log_and_head_fail_verify_without_the_key(tmp_path: Path, forger_key: bytes | None) -> None:
    log = _filled(tmp_path, n=5)
    _rechain(log, forger_key, {3: 999})
    result = log.verify()
    assert not result.ok and "record 1): its content was changed" in result.problem


def test_a_rewrite_with_the_key_is_caught_by_the_collectors_anchor(tmp_path: Path) -> None:
    log = _filled(tmp_path, n=5)
    sent = {r["seq"]: r["hash"] for r in log.records()}  # what the OTLP collector received
    _rechain(log, KEY, {3: 999})  # the key's owner can make a log that verifies on its own…
    assert log.verify().ok
    result = log.verify({3: sent[3]})  # …but not one that matches what the collector holds
    assert not result.ok and "record 3" in result.problem and "rewritten" in result.problem
    assert log.verify({1: sent[1], 2: sent[2]}).ok
    assert "is not in the log" in log.verify({9: sent[1]}).problem


def test_an_unkeyed_log_from_an_older_paddock_is_set_aside(tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    folder.mkdir()
    (folder / "audit.jsonl").write_text('{"seq":1,"kind":"turn","prev":"0","hash":"x"}\n')
    (folder / "head.json").write_text('{"seq": 1, "hash": "x"}')
    log = AuditLog(folder, key=KEY)
    log.append({"kind": "turn", "attributes": {"i": 0}})
    assert log.verify().ok and log.verify().records == 1
    (aside,) = folder.glob("unkeyed-*")
    assert (aside / "audit.jsonl").read_text().startswith('{"seq":1,"kind":"turn","prev":"0"')


def test_audit_verify_cli(tmp_path: Path) -> None:
    from paddock.credentials import audit_key

    env = {**os.environ, "PADDOCK_DATA_DIR": str(tmp_path)}
    log = AuditLog(tmp_path / "audit", key=audit_key().key)
    for i in range(3):
        log.append({"kind": "turn", "attributes": {"i": i}})
    run = [sys.executable, "-m", "paddock.cli", "audit"]
    ok = subprocess.run([*run, "verify"], capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0 and "intact (3 records" in ok.stdout and "key in the keychain" in ok.stdout
    anchor = f"2:{list(log.records())[1]['hash']}"
    anchored = subprocess.run([*run, "verify", "--anchor", anchor], capture_output=True, text=True, env=env, timeout=60)
    assert anchored.returncode == 0 and "1 collector record(s) matched" in anchored.stdout
    exported = subprocess.run([*run, "export"], capture_output=True, text=True, env=env, timeout=60)
    assert [json.loads(line)["seq"] for line in exported.stdout.splitlines()] == [1, 2, 3]
    log.current.write_text(log.current.read_text().replace('"i":1', '"i":7'))
    bad = subprocess.run([*run, "verify"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 1 and "record 2" in bad.stderr


# ------------------------------------------------------------------ a session, end to end


def _scripted_session(
    engine: Engine, folder: Path, trail: AuditTrail, tmp_path: Path, steps: list[object], between: object = None
) -> SessionAuditor:
    with MessagesAPI(steps) as api:  # type: ignore[arg-type]
        os.environ["ANTHROPIC_BASE_URL"] = api.url
        try:

            async def run() -> SessionAuditor:
                async with Sandbox.open(folder) as sandbox:
                    auditor = SessionAuditor(trail, folder, model="scripted")
                    auditor.follow(sandbox)
                    agent = AssistantSession(
                        sandbox,
                        AnthropicProvider(f"test-{secrets.token_hex(6)}"),
                        ConversationStore(folder, tmp_path / "store"),
                    )
                    agent.subscribe(auditor.on_agent_event)
                    if callable(between):
                        agent.subscribe(between)
                    await agent.send("make the report")
                    await auditor.close()
                    return auditor

            return engine.run(run(), timeout=300)
        finally:
            del os.environ["ANTHROPIC_BASE_URL"]


STEPS = [
    # No pause needed: the guest publishes what the command wrote before its exit, and the command's
    # tool call ends only once that exit has arrived on the guest's one event stream.
    tool("run_command", command="echo 'a,b' > data.csv; exit 3"),
    tool("write_file", path="report.md", content="# Report\n"),
    text("done"),
]


@pytest.mark.vm
def test_a_session_produces_linked_records_locally_and_over_otlp(tmp_path: Path, engine: Engine) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    receiver = OtlpReceiver().start()
    try:
        trail = AuditTrail(AuditLog(tmp_path / "audit", key=KEY), otlp_exporter(receiver.endpoint, {"x-tenant": "t1"}))
        auditor = _scripted_session(engine, folder, trail, tmp_path, STEPS)
    finally:
        receiver.stop()
    records = list(trail.log.records())
    assert trail.log.verify().ok
    by_kind: dict[str, list[dict[str, object]]] = {}
    for r in records:
        by_kind.setdefault(str(r["kind"]), []).append(r)
    assert {r["session_id"] for r in records} == {auditor.session_id}
    session_span = by_kind["session.started"][0]["span_id"]
    turns = {r["span_id"] for r in by_kind["turn"]}
    assert all(r["parent_span_id"] == session_span for r in by_kind["turn"])
    calls = {r["attributes"]["gen_ai.tool.name"]: r for r in by_kind["tool.call"]}  # type: ignore[index]
    assert all(c["parent_span_id"] in turns for c in calls.values())
    started = by_kind["guest.process.started"][0]
    exited = by_kind["guest.process.exited"][0]
    assert started["parent_span_id"] == calls["run_command"]["span_id"]
    assert started["attributes"]["process.command_args"][:2] == ["sh", "-c"]  # type: ignore[index]
    assert exited["attributes"]["process.exit.code"] == 3  # type: ignore[index]
    written = {r["attributes"]["file.path"]: r for r in by_kind["guest.file.written"]}  # type: ignore[index]
    assert written["report.md"]["parent_span_id"] == calls["write_file"]["span_id"]
    # A file the command wrote (the guest agent's watcher) hangs off that command's call (#20).
    assert written["data.csv"]["parent_span_id"] == calls["run_command"]["span_id"]
    # Recorded live: the guest's process records came before that tool's result.
    result_seq = next(
        r["seq"] for r in by_kind["tool.result"] if r["parent_span_id"] == calls["run_command"]["span_id"]
    )
    assert int(exited["seq"]) < int(result_seq)  # type: ignore[call-overload]
    # The collector got the same records, in the session's trace, with the admin's headers.
    assert {log["trace_id"] for log in receiver.logs} == {auditor.session_id}
    assert {log["body"] for log in receiver.logs} >= {"guest.process.exited", "guest.file.written", "tool.call"}
    assert any(s["name"] == "paddock.tool run_command" for s in receiver.spans)
    assert all(s["trace_id"] == auditor.session_id for s in receiver.spans)
    assert any(h.get("x-tenant") == "t1" for h in receiver.headers)


@pytest.mark.vm
def test_the_collector_going_down_mid_session_loses_nothing_locally(tmp_path: Path, engine: Engine) -> None:
    from paddock.assistant.loop import ToolFinished

    folder = tmp_path / "work"
    folder.mkdir()
    receiver = OtlpReceiver().start()
    stopped = []

    def stop_collector(ev: object) -> None:
        if isinstance(ev, ToolFinished) and not stopped:
            receiver.stop()  # the collector dies after the first tool call
            stopped.append(time.monotonic())

    trail = AuditTrail(AuditLog(tmp_path / "audit", key=KEY), otlp_exporter(receiver.endpoint))
    t0 = time.monotonic()
    _scripted_session(engine, folder, trail, tmp_path, STEPS, between=stop_collector)
    took = time.monotonic() - t0
    kinds = [r["kind"] for r in trail.log.records()]
    assert trail.log.verify().ok
    for kind in ("session.started", "tool.call", "guest.process.exited", "guest.file.written", "session.ended"):
        assert kind in kinds, kind
    assert stopped, "the collector was not stopped"
    assert took < 240, "the session was held up by the collector"
