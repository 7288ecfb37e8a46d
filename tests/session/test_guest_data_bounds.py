"""Host work on what the guest wrote is bounded in time, not only in size (issue 30).

The summary's text diff ran ``difflib`` unbounded: a 12,000-line file whose lines the guest moved
took 22–25 s of the host's CPU, growing faster than the file. Now the differing middle is matched
against a deadline and shown as one block when matching would take longer.

Real: the VM (the guest rewrites the file through ``paddock sandbox exec``), the undo store, the
summary's ``text_diff``. No fakes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from paddock.undo.store import UndoStore
from paddock.undo.textdiff import text_diff

LINES = 12_000
MOVE = (
    "import sys; a=open(sys.argv[1]).read().splitlines(); "
    "open(sys.argv[1],'w').write('\\n'.join(a[::2][::-1]+a[1::2])+'\\n')"
)  # every other line, to the front


def _apply(before: list[str], diff: list[str]) -> list[str]:
    """``diff`` applied to ``before`` (a check that what is shown is a true account)."""
    out: list[str] = []
    pos = 0
    for line in diff[2:]:
        if line.startswith("@@"):
            m = re.match(r"@@ -(\d+)(?:,(\d+))? \+", line)
            assert m is not None
            start = int(m.group(1)) - 1 if int(m.group(2) or 1) else int(m.group(1))
            out += before[pos:start]
            pos = start
        elif line[0] in " -":
            assert before[pos] == line[1:]
            pos += 1
            if line[0] == " ":
                out.append(line[1:])
        elif line[0] == "+":
            out.append(line[1:])
    return out + before[pos:]


@pytest.mark.vm
def test_the_summary_diff_of_a_12000_line_file_the_guest_reordered_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound, not its speed, is what is tested (the time it saves is a benchmark figure):
    the host's clock, as the diff sees it, moves a quarter second at every look, so the matcher's
    deadline passes after a few steps and the answer must be the one-block account. Before #30
    there was no deadline: the same diff ran ``difflib`` to the end (7–25 s of host CPU here)."""
    import paddock.core.linediff as linediff

    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "ledger.csv").write_text("".join(f"row {i},{i * 7},paid\n" for i in range(LINES)))
    env = {**os.environ, "PADDOCK_DATA_DIR": str(tmp_path / "data")}
    monkeypatch.setenv("PADDOCK_DATA_DIR", env["PADDOCK_DATA_DIR"])
    point = UndoStore(folder).make("start", "start of a session", "s1").point.id
    proc = subprocess.run(
        [sys.executable, "-m", "paddock.cli", "sandbox", "exec", "--folder", str(folder), "--quiet", "--",
         "python3", "-c", MOVE, "/workspace/ledger.csv"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ticks = iter(range(10**9))
    monkeypatch.setattr(linediff, "time", SimpleNamespace(monotonic=lambda: next(ticks) * 0.25))
    said = text_diff(folder, point, "ledger.csv")
    assert said.startswith("--- before the session") and "more lines" in said
    assert "(too many changes to match line by line)" in said, said[:500]


def test_a_bounded_diff_is_still_a_true_account() -> None:
    from paddock.core.linediff import unified

    before = [f"row {i}" for i in range(LINES)]
    moved = before[::2][::-1] + before[1::2]
    diff = unified(before, moved, max_lines=10**9)
    assert _apply(before, diff) == moved  # matched line by line or shown as one block: both true
    small = [*before[:100], "changed", *before[101:]]
    diff = unified(before, small)
    assert diff[2:] == ["@@ -99,5 +99,5 @@", " row 98", " row 99", "-row 100", "+changed", " row 101", " row 102"]


def test_the_summarys_listing_of_a_tree_thousands_deep_does_not_crash(tmp_path: Path) -> None:
    """``os.fwalk`` recurses once per level: a folder 3,000 deep (as a guest can make) raised
    RecursionError in the summary of ``paddock run`` and the window before #30."""
    from paddock.undo.changes import UNSCANNED, list_folder

    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "letter.txt").write_text("Dear Sam,\n")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(3000):  # by descriptors: the path is longer than PATH_MAX
        os.mkdir("x", dir_fd=fd)
        nxt = os.open("x", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
    try:
        listed = list_folder(folder)
    finally:  # pytest's own clean-up of old temporary folders recurses: remove the depth with rm
        subprocess.run(["rm", "-rf", str(folder / "x")], check=True, timeout=120)
    assert "letter.txt" in listed and UNSCANNED in listed
