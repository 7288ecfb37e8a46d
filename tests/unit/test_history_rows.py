"""The history sidebar is refreshed after every answer (#20 review): earlier conversations, which
never change, are read once, and the one in use is taken from memory when the window has it.

Real: conversation files in a temporary app-data folder; ``_load`` is wrapped only to count reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paddock.desk import history
from paddock.desk.history import CURRENT, History


def test_unchanged_conversations_are_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = History(tmp_path / "Budget", tmp_path / "conversations")
    for n in range(5):
        h.store.save([{"role": "user", "content": f"question {n}"}])
        h.put_aside()
    h.store.save([{"role": "user", "content": "the one in use"}])
    reads: list[Path] = []
    real = history._load

    def counted(path: Path) -> list[dict[str, Any]]:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(history, "_load", counted)
    first = h.rows()
    assert [r.title for r in first] == ["the one in use"] + [f"question {n}" for n in reversed(range(5))]
    assert len(reads) == 6
    reads.clear()
    in_memory = [{"role": "user", "content": "the one in use"}, {"role": "assistant", "content": "an answer"}]
    again = h.rows(in_memory)
    assert reads == [] and again[0].id == CURRENT and again[0].messages == 2 and again[1:] == first[1:]
    h.store.save(in_memory)
    assert h.rows()[0].messages == 2 and reads == [h.store.path]  # only the file that changed
