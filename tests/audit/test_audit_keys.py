"""The audit trail cannot be switched off by editing its head, and its key is one key (issue 30).

Before #30: removing the ``alg`` field from ``head.json`` made the next session set the whole
(tampered) log aside as "unkeyed", after which ``paddock audit verify`` passed; and a headless run
(key in a file: no keychain) followed by a desktop run (keychain) signed the log with two keys, so
verify reported record 1 as changed — a false tamper alarm.

Real: the log on disk, the real gnome-keyring the suite runs under (scripts/with_keyring.sh), the
VM for the sessions (``paddock sandbox exec``), ``paddock audit verify`` as a process. No fakes.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from paddock.audit import AuditEvent, AuditLog

KEY = secrets.token_bytes(32)


def test_a_head_with_its_algorithm_removed_fails_verify_and_is_not_set_aside(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit", key=KEY)
    for i in range(5):
        log.append(AuditEvent("turn", "ab" * 16, attributes={"i": i}).as_record())
    log.current.write_text(log.current.read_text().replace('"i":2', '"i":9'))  # the tampering to hide
    head = json.loads(log.head.read_text())
    del head["alg"]  # the downgrade: "this is an old, unkeyed log"
    log.head.write_text(json.dumps(head))
    nxt = AuditLog(tmp_path / "audit", key=KEY)  # the next session
    with pytest.raises(Exception, match="head file is damaged or was changed"):
        nxt.append(AuditEvent("turn", "cd" * 16).as_record())
    assert not list((tmp_path / "audit").glob("unkeyed-*"))  # the tampered log stays where verify looks
    result = nxt.verify()
    assert not result.ok and "record 3" in result.problem  # the tampering it was meant to hide
    log.current.write_text(log.current.read_text().replace('"i":9', '"i":2'))
    result = nxt.verify()  # and the downgrade alone is a failure too
    assert not result.ok and "head" in result.problem, result


def test_an_old_unkeyed_log_is_still_set_aside(tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    folder.mkdir()
    (folder / "audit.jsonl").write_text('{"seq":1,"kind":"turn","prev":"0","hash":"x"}\n')
    (folder / "head.json").write_text('{"seq": 1, "hash": "x"}')
    log = AuditLog(folder, key=KEY)
    log.append({"kind": "turn", "attributes": {"i": 0}})
    assert log.verify().ok and len(list(folder.glob("unkeyed-*"))) == 1


def _paddock(args: list[str], data: Path, *, headless: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PADDOCK_DATA_DIR": str(data)}
    if headless:  # no Secret Service reachable: the key goes to a file
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "paddock.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.vm
def test_a_headless_run_then_a_desktop_run_keep_one_key_and_no_false_alarm(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()
    first = _paddock(["sandbox", "exec", "--folder", str(folder), "--quiet", "--", "true"], data, headless=True)
    assert first.returncode == 0, first.stderr
    assert (data / "audit-key").exists()
    second = _paddock(["sandbox", "exec", "--folder", str(folder), "--quiet", "--", "true"], data, headless=False)
    assert second.returncode == 0, second.stderr
    verify = _paddock(["audit", "verify"], data, headless=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"key in the file {data / 'audit-key'}" in verify.stdout  # it names which key it used
    assert (data / "audit-key-location").read_text().strip() == "file"
