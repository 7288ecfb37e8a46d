"""Pictures of the files a session made or changed, rendered inside the sandbox (no Qt).

The host never parses a document: the guest's own Python (matplotlib, python-docx, openpyxl,
python-pptx, Pillow, pdftoppm) draws a PNG of each file — the first page of a PDF, the text of a
Word file, the first rows of a sheet or CSV, the first slide, a picture made smaller — and prints
it as base64. The guest is not trusted with the result either: the host reads a bounded amount,
and ``checked_png`` accepts only a PNG of bounded size and dimensions before the window shows it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from paddock.guest import ExecOutput, Stream
from paddock.sandbox import Sandbox
from paddock.undo.changes import Change, Entry, list_folder

KINDS = {".pdf", ".docx", ".xlsx", ".pptx", ".png", ".jpg", ".jpeg", ".gif", ".csv", ".md", ".txt"}
MAX_FILES = 6  # previews made after one answer
MAX_PNG = 1_500_000  # bytes of one picture
MAX_SIDE = 1600  # pixels
MAX_OUTPUT = MAX_FILES * MAX_PNG * 2  # base64 and JSON around it
TIMEOUT_S = 180.0
PREVIEW_WAIT_S = 60.0  # at the end of a session, for files not drawn yet
PNG = b"\x89PNG\r\n\x1a\n"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preview:
    path: str  # relative to the folder
    png: bytes  # checked: a PNG within MAX_PNG and MAX_SIDE
    width: int
    height: int


def checked_png(data: bytes) -> tuple[int, int] | None:
    """(width, height) when ``data`` is a PNG the window may show, else None."""
    if len(data) > MAX_PNG or len(data) < 33 or not data.startswith(PNG) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return (width, height) if 0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE else None


GUEST_SCRIPT = r"""
import base64, csv, io, json, os, subprocess, sys, tempfile
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

def page(title, lines, size=(6.2, 8.0)):
    fig = plt.figure(figsize=size, dpi=80)
    fig.patch.set_facecolor("white")
    fig.text(0.06, 0.95, title, fontsize=13, weight="bold", va="top")
    y = 0.89
    for bold, line in lines[:44]:
        fig.text(0.06, y, line[:80], fontsize=9.5 if bold else 8.5, weight="bold" if bold else "normal", va="top")
        y -= 0.034 if bold else 0.024
        if y < 0.03:
            break
    return fig

def table(title, rows):
    rows = [[str(c)[:18] for c in r[:7]] for r in rows[:16]]
    width = max(len(r) for r in rows) if rows else 1
    rows = [r + [""] * (width - len(r)) for r in rows] or [[""]]
    fig = plt.figure(figsize=(6.2, 0.9 + 0.32 * len(rows)), dpi=80)
    fig.text(0.03, 0.97, title, fontsize=12, weight="bold", va="top")
    ax = fig.add_axes([0.02, 0.02, 0.96, 0.96 - 0.55 / (0.9 + 0.32 * len(rows))])
    ax.axis("off")
    t = ax.table(cellText=rows, loc="upper left", cellLoc="left")
    t.auto_set_font_size(False)
    t.set_fontsize(8.5)
    for (r, _), cell in t.get_celld().items():
        if r == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#e8eef7")
    return fig

def render(path):
    name = os.path.basename(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".pdf":
        root = os.path.join(tempfile.mkdtemp(), "page")
        subprocess.run(["pdftoppm", "-png", "-singlefile", "-f", "1", "-l", "1", "-scale-to", "800", path, root],
                       check=True, capture_output=True, timeout=120)
        return open(root + ".png", "rb").read()
    if ext in (".png", ".jpg", ".jpeg", ".gif"):
        from PIL import Image
        with Image.open(path) as im:
            im.thumbnail((800, 800))
            out = io.BytesIO()
            im.convert("RGBA").save(out, "PNG")
            return out.getvalue()
    if ext == ".csv":
        with open(path, newline="", errors="replace") as f:
            fig = table(name, [r for _, r in zip(range(16), csv.reader(f))])
    elif ext == ".xlsx":
        import openpyxl
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        ws = wb.worksheets[0]
        rows = [["" if v is None else v for v in r] for _, r in zip(range(16), ws.iter_rows(values_only=True))]
        fig = table(f"{name} — {ws.title}", rows)
    elif ext == ".docx":
        import docx
        d = docx.Document(path)
        lines = [(bool(p.style is not None and (p.style.name or "").startswith(("Heading", "Title"))), p.text)
                 for p in d.paragraphs if p.text.strip()]
        for t in d.tables[:2]:
            lines += [(False, " | ".join(c.text for c in row.cells)) for row in t.rows[:8]]
        fig = page(name, lines)
    elif ext == ".pptx":
        import pptx
        s = pptx.Presentation(path).slides[0]
        title = s.shapes.title.text if s.shapes.title is not None else name
        lines = [(False, "• " + p.text) for sh in s.shapes if sh.has_text_frame and sh != s.shapes.title
                 for p in sh.text_frame.paragraphs if p.text.strip()]
        fig = page(title, lines, size=(6.4, 3.6))
    else:
        with open(path, errors="replace") as f:
            text = f.read(20000).splitlines()
        fig = page(name, [(l.startswith("#"), l.lstrip("# ")) for l in text if l.strip()])
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()

for path in sys.argv[1:]:
    try:
        print(json.dumps({"path": path, "png": base64.b64encode(render(path)).decode()}), flush=True)
    except Exception as exc:
        print(json.dumps({"path": path, "error": type(exc).__name__}), flush=True)
"""


def wanted(before: dict[str, Entry], folder: Path, done: dict[str, Entry]) -> list[str]:
    """Files made or changed since the session began, not yet previewed as they are now."""
    now = list_folder(folder)
    out = []
    for path, entry in sorted(now.items(), key=lambda kv: -kv[1].mtime_ns):
        if Path(path).suffix.lower() not in KINDS or path.startswith("."):
            continue
        if before.get(path) != entry and done.get(path) != entry:
            done[path] = entry  # only what is returned counts as previewed: the rest waits for the next call
            out.append(path)
            if len(out) == MAX_FILES:
                break
    return out


async def render(sandbox: Sandbox, paths: list[str]) -> list[Preview]:
    """Draw ``paths`` in the guest; only checked pictures come back."""
    if not paths:
        return []
    out = bytearray()
    started = time.monotonic()
    argv = ["python3", "-", *[p if not p.startswith("-") else "./" + p for p in paths]]
    async for ev in sandbox.exec(argv, timeout_s=TIMEOUT_S, stdin=GUEST_SCRIPT.encode()):
        if isinstance(ev, ExecOutput) and ev.stream is Stream.STDOUT and len(out) < MAX_OUTPUT:
            out += ev.data[: MAX_OUTPUT - len(out)]
    previews = []
    asked = {p if not p.startswith("-") else "./" + p: p for p in paths}
    for line in bytes(out).splitlines():
        try:
            item = json.loads(line)
            data = base64.b64decode(item["png"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            continue
        size = checked_png(data)
        path = asked.get(str(item.get("path")))
        if size is not None and path is not None:
            previews.append(Preview(path, data, *size))
    log.info("previews: %d of %d drawn in the sandbox in %.1f s", len(previews), len(paths), time.monotonic() - started)
    return previews


def for_summary(
    drawn: dict[str, tuple[Preview, Entry | None]], after: dict[str, Entry], changes: list[Change]
) -> tuple[Preview, ...]:
    """The pictures for the session's summary: files made or changed, drawn as they are at the end
    (a picture of an earlier version is left out)."""
    out = []
    for c in changes:
        found = drawn.get(c.path)
        if c.kind in ("created", "changed") and found is not None and found[1] == after.get(c.path):
            out.append(found[0])
    return tuple(out)
