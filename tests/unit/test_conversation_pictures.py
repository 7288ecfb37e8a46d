"""The pictures kept with a conversation (``paddock.desk.history.Pictures``): they move with it
when a new conversation starts and come back when it is reopened; what is read back is checked
again (a PNG of bounded size), the index's names are labels only, and the store is bounded.

Real: the conversation files in a temporary app-data folder. No sandbox: the pictures here are
made on the host (the VM tests make them in the guest, ``tests/ui/test_reopened_pictures.py``).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from paddock.desk.history import KEPT_FILES, History
from paddock.desk.previews import Preview


def _png(width: int, height: int, seed: int = 0) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes([seed % 256, 0, 0]) * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _preview(path: str, pages: int = 1, seed: int = 0) -> Preview:
    pngs = [_png(40, 50, seed + i) for i in range(pages)]
    return Preview(path, pngs[0], 40, 50, tuple(pngs[1:]))


def _history(tmp_path: Path) -> History:
    h = History(tmp_path / "Sales", root=tmp_path / "app-data")
    h.store.save([{"role": "user", "content": "Make the report"}])
    return h


def test_a_reopened_conversation_gets_its_pictures_back(tmp_path: Path) -> None:
    h = _history(tmp_path)
    h.pictures.keep([_preview("report.docx", pages=2), _preview("chart.png", seed=7)])
    assert [(p.path, len(p.pages)) for p in h.pictures.load()] == [("report.docx", 2), ("chart.png", 1)]

    h.put_aside()  # a new conversation: no pictures yet
    assert h.pictures.load() == []
    h.store.save([{"role": "user", "content": "Hello"}])
    h.pictures.keep([_preview("other.csv", seed=3)])

    [_, earlier] = h.rows()
    h.reopen(earlier.id)
    back = h.pictures.load()
    assert [p.path for p in back] == ["report.docx", "chart.png"]
    assert back[0].pages == _preview("report.docx", pages=2).pages  # the same pixels, every page
    [_, other] = h.rows()
    h.reopen(other.id)  # and the other one's pictures went with it
    assert [p.path for p in h.pictures.load()] == ["other.csv"]


def test_a_file_drawn_again_replaces_its_older_picture_and_the_store_is_bounded(tmp_path: Path) -> None:
    h = _history(tmp_path)
    h.pictures.keep([_preview("a.png", seed=1)])
    h.pictures.keep([_preview("a.png", seed=2)])
    [only] = h.pictures.load()
    assert only.png == _png(40, 50, 2)
    assert len(list(h.pictures.folder.glob("*.png"))) == 1  # the older page is gone from the disk
    h.pictures.keep([_preview(f"f{i}.png", seed=i) for i in range(KEPT_FILES + 5)])
    assert len(h.pictures.load()) == KEPT_FILES


@pytest.mark.parametrize("bad", ["not a png", "../../outside.png"])
def test_what_is_read_back_is_checked_again(tmp_path: Path, bad: str) -> None:
    h = _history(tmp_path)
    h.pictures.keep([_preview("a.png"), _preview("b.png", seed=5)])
    index = json.loads((h.pictures.folder / "index.json").read_text())
    if bad == "not a png":
        (h.pictures.folder / index[0]["pages"][0]).write_bytes(b"GIF89a" + b"\0" * 40)
    else:
        (tmp_path / "outside.png").write_bytes(_png(10, 10))
        index[0]["pages"] = [bad]  # a name in the index is never a path on the host
        (h.pictures.folder / "index.json").write_text(json.dumps(index))
    assert [p.path for p in h.pictures.load()] == ["b.png"]
