"""What the host keeps of what the guest sends or leaves behind is bounded and never followed
through a link (#17, classes 1 and 7): event strings, and the notes in the memory store.

Real generated protobuf messages stand for what a compromised guest agent could send."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from paddock.assistant.memory import MemoryStore
from paddock.guest.types import (
    EVENT_ARGS_MAX,
    EVENT_TEXT_MAX,
    PATH_MAX,
    FileChangedEvent,
    ProcessStartedEvent,
    _event_from_pb,
)
from paddock.guest.v1 import agent_pb2 as pb


def test_event_strings_from_the_guest_are_cut() -> None:
    huge = "x" * 5_000_000
    long = "y" * (EVENT_TEXT_MAX * 10)  # each of 1,000 arguments over the bound (not 5 MB each: 5 GB in all)
    message = pb.GuestEvent(seq=1, process_started=pb.ProcessStarted(exec_id=huge, pid=7, argv=[long] * 1000, cwd=huge))
    event = _event_from_pb(message)
    assert isinstance(event, ProcessStartedEvent)
    assert len(event.argv) == EVENT_ARGS_MAX + 1 and "744 arguments cut" in event.argv[-1]
    assert all(len(a) < EVENT_TEXT_MAX + 100 for a in event.argv)
    assert len(event.cwd) < EVENT_TEXT_MAX + 100 and "characters cut" in event.cwd
    assert len(event.exec_id) < 200


def _file_event(path: str, change: int = pb.FileChanged.CHANGE_WRITTEN) -> object:
    return _event_from_pb(pb.GuestEvent(seq=1, file_changed=pb.FileChanged(path=path, change=change, size=-5)))


@pytest.mark.parametrize(
    "path", ["../outside.txt", "a/../../b", "/etc/passwd", "", "a//b", "./a", "a/.", "a/..", "nul\x00byte"]
)
def test_file_names_outside_the_folder_are_dropped(path: str) -> None:
    """A watcher report (#20) names a file inside the folder, relative; anything else is neither
    shown nor recorded as a file of the folder."""
    assert _file_event(path) is None


def test_file_names_from_the_guest_are_escaped_and_cut() -> None:
    event = _file_event("report\n2026\x1b[2J\u202etxt.exe")
    assert isinstance(event, FileChangedEvent) and not event.writing and event.size == 0
    assert event.path == "report\\x0a2026\\x1b[2J\\u202etxt.exe"
    assert not any(ord(c) < 0x20 for c in event.path)
    long = _file_event("d/" * 3000 + "x" * 10_000, pb.FileChanged.CHANGE_WRITING)
    assert isinstance(long, FileChangedEvent) and long.writing
    assert len(long.path) < PATH_MAX + 100 and long.path.endswith("characters cut]")


def test_notes_are_never_read_through_a_link_or_from_a_fifo(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "memory")
    kept = store.add("the invoices are in /workspace/in", session="s", folder=tmp_path)
    secret = tmp_path / "outside.json"
    secret.write_text(json.dumps({**json.loads((store.root / f"{kept.id}.json").read_text()), "id": "outside"}))
    (store.root / "planted.json").symlink_to(secret)
    os.mkfifo(store.root / "fifo.json")  # reading it would block the session forever
    (store.root / "big.json").write_text(" " * (1024 * 1024))
    assert [m.id for m in store.list()] == [kept.id]
