""" "Copy details for support" and ``paddock support``: one file with the versions, what doctor
finds, the policy and the last session's log — and no key (planted in the keychain, in the
environment, and in the log itself) and no file contents (planted in a folder the session worked
on, and where Paddock keeps what files said: the conversation and a saved note).

Real: the keychain (gnome-keyring), the session log as a session writes it, the stores, the
installed command. No VM and no model: the bundle reads only what they leave behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from paddock.assistant.loop import ConversationStore
from paddock.assistant.memory import MemoryStore
from paddock.core.logs import SessionLog
from paddock.credentials import Keychain
from paddock.desk.support import write_bundle

OPENAI_ENTRY = "openai-api-key"  # the built-in openai endpoint's keychain entry


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A data folder of this test's own with a session's leftovers, and keys in every place."""
    monkeypatch.setenv("PADDOCK_DATA_DIR", str(tmp_path / "data"))
    env_key = f"test-env-{secrets.token_hex(12)}"  # generated per test; never a real key
    chain_key = f"test-chain-{secrets.token_hex(12)}"
    monkeypatch.setenv("ANTHROPIC_API_KEY", env_key)
    Keychain().set(OPENAI_ENTRY, chain_key)
    contents = f"Salary review, confidential: {secrets.token_hex(10)}"
    folder = tmp_path / "Sales 2026"
    folder.mkdir()
    (folder / "salaries.txt").write_text(contents)
    ConversationStore(folder).save(
        [
            {"role": "user", "content": [{"type": "text", "text": "Summarise salaries.txt"}]},
            {"role": "assistant", "content": [{"type": "text", "text": f"It says: {contents}"}]},
        ]
    )
    MemoryStore().add(contents, session="s1", folder=folder)
    log = SessionLog("t1")
    logger = logging.getLogger("paddock.session.runner")
    logger.debug("session t1: desk on %s (allowed)", folder)
    logger.warning("the model call failed with key %s; retrying with %s", env_key, chain_key)  # a bug's leak
    log.close()
    try:
        yield {"env": env_key, "chain": chain_key, "contents": contents, "folder": str(folder)}
    finally:
        Keychain().remove(OPENAI_ENTRY)


def _check(text: str, planted: dict[str, str]) -> None:
    assert planted["env"] not in text and planted["chain"] not in text  # no key, whatever its shape
    assert planted["contents"] not in text  # no file contents
    assert "[redacted]" in text  # the log's line is there, with the keys replaced
    assert "session-t1.log" in text and "desk on" in text  # the last session's log
    assert "Paddock 0.1.0" in text and "== What `paddock doctor` finds ==" in text and "keychain backend:" in text


def test_the_bundle_holds_no_key_and_no_file_contents(planted: dict[str, str]) -> None:
    path = asyncio.run(write_bundle())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.name.startswith("paddock-support-")
    _check(path.read_text(encoding="utf-8"), planted)


def test_paddock_support_writes_the_same(planted: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "paddock.cli", "support", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr
    [path] = out.glob("paddock-support-*.txt")
    assert str(path) in proc.stdout and "no file contents and no keys" in proc.stdout
    _check(path.read_text(encoding="utf-8"), planted)
