"""Nothing the guest or the model chooses reaches the person's terminal raw (issue 30).

``paddock run`` writes the model's text, the command line of each tool call, the last output line
of a failed command, the names in the summary, and warnings; ``paddock undo --list`` writes labels
and names; ``paddock sandbox exec`` writes errors. Each carries here a payload of terminal controls
(ESC sequences that clear the screen and set the title, an 8-bit CSI, a bidirectional override, a
carriage return); none of those may come out raw, on stdout or stderr — before #30 the model's text,
the command line and the last output line did.

Real: the VM, the guest agent, ``paddock`` as a process. The one fake is the model service.
"""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from tests.fakes.messages_api import MessagesAPI, Reply, text

pytestmark = pytest.mark.vm

PAYLOAD = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202etxt.exe\r\x08\x00"
GUEST_PAYLOAD = r"\033]0;pwned\007\033[2J\302\23331m\342\200\256txt.exe\r"  # the same, made by printf in the guest


def raw_controls(out: str) -> list[str]:
    """Every character a terminal would act on rather than show (line breaks and tabs allowed)."""
    bad = []
    for ch in out:
        if ch in "\n\t":
            continue
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0 or unicodedata.category(ch) in ("Cc", "Cf"):
            bad.append(repr(ch))
    return bad


def _env(data: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PADDOCK_DATA_DIR": str(data), **extra}


def test_paddock_run_and_undo_write_nothing_raw_the_model_or_guest_chose(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()
    (folder / "letter.txt").write_text("Dear Sam,\n")
    command = (f"echo made > '{PAYLOAD[:-1]}name'; rm letter.txt; printf 'last line {GUEST_PAYLOAD}\\n' >&2; "
               f"exit 3 # {PAYLOAD[:-1]}")  # fmt: skip
    replies = [Reply(text=f"I will start. {PAYLOAD}", tool_uses=[("run_command", {"command": command})]),
               text(f"Done. {PAYLOAD}")]  # fmt: skip
    with MessagesAPI(replies) as api:
        proc = subprocess.run(
            [sys.executable, "-m", "paddock.cli", "run", "--folder", str(folder), "--new", f"tidy {PAYLOAD[:-1]}"],
            capture_output=True, timeout=900,
            env=_env(data, ANTHROPIC_BASE_URL=api.url, ANTHROPIC_API_KEY="test-key"),
        )  # fmt: skip
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, out + err
    assert "txt.exe" in out and "last line" in out and "pwned" in out  # the words are shown, made harmless
    assert "\\x1b" in out and "\\u202e" in out
    assert raw_controls(out) == [] and raw_controls(err) == [], (out, err)
    listed = subprocess.run(
        [sys.executable, "-m", "paddock.cli", "undo", "--folder", str(folder), "--list"],
        capture_output=True, timeout=300, env=_env(data),
    )  # fmt: skip
    assert listed.returncode == 0 and "txt.exe" in listed.stdout.decode()
    assert raw_controls(listed.stdout.decode() + listed.stderr.decode()) == []
    exported = subprocess.run(
        [sys.executable, "-m", "paddock.cli", "audit", "export"], capture_output=True, timeout=300, env=_env(data)
    )  # fmt: skip
    assert exported.returncode == 0 and raw_controls(exported.stdout.decode()) == []


def test_every_writer_of_the_command_line_escapes(capsys: pytest.CaptureFixture[str]) -> None:
    """The unit view of the same: print, sys.stdout/stderr.write, the error and progress helpers and
    the log, inside ``paddock``'s main, all go through the one escape."""
    import logging

    from paddock.cli.out import err, progress
    from paddock.core.terminal import escaped_output

    with escaped_output():
        print(PAYLOAD)
        sys.stdout.write(PAYLOAD)
        sys.stderr.write(PAYLOAD)
        err(PAYLOAD)
        progress(False)(PAYLOAD)
        handler = logging.StreamHandler(sys.stderr)
        logging.getLogger("paddock.test-escape").addHandler(handler)
        logging.getLogger("paddock.test-escape").warning("%s", PAYLOAD)
        logging.getLogger("paddock.test-escape").removeHandler(handler)
    got = capsys.readouterr()
    assert raw_controls(got.out) == [] and raw_controls(got.err) == []
    assert got.out.count("txt.exe") == 2 and got.err.count("txt.exe") == 4
