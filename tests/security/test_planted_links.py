"""Host code never follows what the guest left in the folder (#17, class 1).

After a trusted session the guest can leave anything in the folder: a settings file that is a
link to ``/dev/zero`` (the next run used to read it forever), a FIFO, a folder that is a link
to the person's home. The host reads folder settings, backs up risky files and reverts changes
by walking the folder without following links (``paddock.core.beneath``).

Real: the VM and its guest, which plants the links; the host side is the product's own code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from paddock.core import beneath
from paddock.desk import SessionSummary
from paddock.undo.changes import Change, revert
from tests.conftest import Booted

SECRET = "host secret, outside the folder\n"


# ------------------------------------------------------------------ the walk itself (no VM)


def test_the_walk_refuses_links_special_files_and_escapes(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "dir").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (root / "dir" / "plain.txt").write_text("plain")
    (root / "leaf-link").symlink_to(outside / "secret.txt")
    (root / "dir-link").symlink_to(outside)
    (root / "zero").symlink_to("/dev/zero")
    os.mkfifo(root / "fifo")
    (root / "big").write_bytes(b"x" * 2048)
    assert beneath.read_file(root, "dir/plain.txt", 100) == b"plain"
    for rel in ("leaf-link", "dir-link/secret.txt", "zero", "fifo", "big", "../outside/secret.txt",
                str(outside / "secret.txt"), "dir/../leaf-link"):  # fmt: skip
        with pytest.raises(beneath.UnsafePath):
            beneath.read_file(root, rel, 1024)
    with pytest.raises(beneath.UnsafePath):
        beneath.write_file(root, "dir-link/secret.txt", b"overwritten")
    assert (outside / "secret.txt").read_text() == SECRET
    assert beneath.lstat(root, "missing/deeper") is None


# ------------------------------------------------------------------ what the guest plants


@pytest.mark.vm
@pytest.mark.parametrize("plant", ["ln -s /dev/zero .claude/settings.json", "mkfifo .claude/settings.json"])
def test_a_planted_settings_link_or_fifo_is_refused_not_followed(booted: Booted, plant: str, tmp_path: Path) -> None:
    folder = booted.workspace / f"settings-{abs(hash(plant))}"
    folder.mkdir()
    _, err, code = booted.sh(f"cd {folder.name} && mkdir -p .claude && {plant}")
    assert code == 0, err
    env = {**os.environ, "ANTHROPIC_API_KEY": "test-not-used", "PADDOCK_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run(
        [sys.executable, "-m", "paddock.cli", "run", "--yes", "--folder", str(folder), "do something"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # at once: no read of /dev/zero, no wait on a FIFO
    assert "No session can start" in proc.stderr and "settings.json" in proc.stderr and "refused" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.vm
def test_revert_does_not_follow_a_folder_link_the_guest_planted(booted: Booted, tmp_path: Path) -> None:
    outside = booted.outside
    (outside / "keep.txt").write_text(SECRET)
    name = "planted-dir-link"
    # The guest points a folder name at the host folder beside the workspace (as the host sees it).
    _, err, code = booted.sh(f"ln -s {outside} {name}")
    assert code == 0, err
    summary = SessionSummary(booted.workspace, [], 0, tmp_path / "backup")
    (tmp_path / "backup" / name).mkdir(parents=True)
    (tmp_path / "backup" / name / "keep.txt").write_text("what the session started with\n")
    for change in (Change(f"{name}/keep.txt", "created"), Change(f"{name}/keep.txt", "changed")):
        with pytest.raises(Exception, match="was not changed"):
            revert(summary, change)
    assert (outside / "keep.txt").read_text() == SECRET
    # Reverting the link itself removes the link, never what it points at.
    assert "Deleted" in revert(summary, Change(name, "created"))
    assert not (booted.workspace / name).is_symlink() and (outside / "keep.txt").read_text() == SECRET


def test_open_hands_only_plain_files_inside_the_folder_to_the_persons_programs(tmp_path: Path) -> None:
    from paddock.desk import why_not_open

    folder, outside = tmp_path / "folder", tmp_path / "outside"
    (folder / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (folder / "report.docx").write_bytes(b"PK")
    (folder / "link.docx").symlink_to(outside / "secret.txt")
    (folder / "via").symlink_to(outside)
    os.mkfifo(folder / "pipe")
    assert why_not_open(folder, "report.docx") is None and why_not_open(folder, "sub") is None
    for rel in ("link.docx", "via/secret.txt", "pipe", "gone.txt", "../outside/secret.txt"):
        assert why_not_open(folder, rel), rel
