"""What the guest leaves behind cannot cost the person their undo (issue 30).

A turn's command deletes a document and then leaves a folder nested hundreds of levels deep (before
#30 every later ``paddock undo`` stopped: "nested more than 256 folders deep… keeps no restore
points"), or a sparse file of 1 GB (before #30 the copy made before a restore wrote its holes out:
a 64 MB budget ended with a 1 GB store). ``paddock undo`` must put the document back, remove what
the turn made, and keep the store within its budget.

Real: the VM, virtiofs with the change guard, ``paddock run`` and ``paddock undo`` as processes. The
one fake is the model service (``tests.fakes.messages_api``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.messages_api import MessagesAPI, text, tool

pytestmark = pytest.mark.vm

DEPTH = 400  # past the listing's 256


def _env(data: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PADDOCK_DATA_DIR": str(data), **extra}


def _turn(data: Path, folder: Path, script: str) -> None:
    with MessagesAPI([tool("run_command", command=script, timeout_s=600), text("Done.")]) as api:
        proc = subprocess.run(
            [sys.executable, "-m", "paddock.cli", "run", "--folder", str(folder), "--new", "tidy up"],
            capture_output=True, text=True, timeout=900,
            env=_env(data, ANTHROPIC_BASE_URL=api.url, ANTHROPIC_API_KEY="test-key"),
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _undo(data: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paddock.cli", "undo", "--folder", str(folder)],
        capture_output=True, text=True, timeout=600, env=_env(data),
    )  # fmt: skip


def _store_bytes(data: Path) -> int:
    return sum(p.lstat().st_blocks * 512 for p in (data / "undo").rglob("*") if p.is_file())


def test_a_folder_nested_hundreds_deep_does_not_stop_undo(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()
    (folder / "letter.txt").write_text("Dear Sam,\n")
    (folder / "keep.txt").write_text("stays\n")
    script = (
        f'set -e; cd /workspace; rm letter.txt; d=deep; for i in $(seq {DEPTH}); do d="$d/x"; done\n'
        'mkdir -p "$d"; echo bottom > "$d/f.txt"\n'
    )
    _turn(data, folder, script)
    assert not (folder / "letter.txt").exists() and (folder / "deep").is_dir()
    undone = _undo(data, folder)
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert (folder / "letter.txt").read_text() == "Dear Sam,\n"
    assert (folder / "keep.txt").read_text() == "stays\n"
    assert not (folder / "deep").exists()  # the turn made it: the undo removed all of it


def test_a_sparse_file_keeps_its_holes_and_the_budget_holds(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "work"
    folder.mkdir()
    data.mkdir()
    (data / "settings.json").write_text(json.dumps({"undo": {"budget_mb": 64}}))
    (folder / "letter.txt").write_text("Dear Sam,\n")
    _turn(data, folder, "set -e; cd /workspace; rm letter.txt; truncate -s 1G sparse.bin; echo x >> sparse.bin\n")
    assert (folder / "sparse.bin").stat().st_size > 1 << 30
    undone = _undo(data, folder)
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert (folder / "letter.txt").read_text() == "Dear Sam,\n" and not (folder / "sparse.bin").exists()
    assert _store_bytes(data) <= 64 << 20  # the copy kept of the sparse file is as sparse as it was
    # ... and undoing the undo brings the sparse file back, still sparse
    before = undone.stdout.split("--to ")[-1].split()[0]
    again = subprocess.run(
        [sys.executable, "-m", "paddock.cli", "undo", "--folder", str(folder), "--to", before],
        capture_output=True, text=True, timeout=600, env=_env(data),
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    back = (folder / "sparse.bin").stat()
    assert back.st_size == (1 << 30) + 2 and back.st_blocks * 512 < 16 << 20
    assert _store_bytes(data) <= 64 << 20
