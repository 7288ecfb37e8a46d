"""Pictures of the files a session made or changed, rendered inside the sandbox (no Qt).

The host never parses a document: the guest lays it out and prints each page as a PNG in base64.
With the renderer layer attached (``guest_image/layer.py``: LibreOffice without its GUI, and
metric-compatible fonts), a Word, Excel, PowerPoint, CSV, Markdown or text file is laid out as the
real document (tables, charts, slides) and turned into a PDF, and every PDF is drawn page by page
with ``pdftoppm``. Without the layer the guest's own Python draws what it can (the text of a Word
file, the first rows of a sheet, the first slide's words), and the preview says so. The guest is
not trusted with the result either: the host reads a bounded amount, and ``checked_png`` accepts
only a PNG of bounded size and dimensions before the window shows it or the history keeps it.
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

from paddock.guest import ExecOutput, ExecResult, Stream
from paddock.sandbox import Sandbox
from paddock.undo.changes import Change, Entry, list_folder

KINDS = {".pdf", ".docx", ".xlsx", ".pptx", ".png", ".jpg", ".jpeg", ".gif", ".csv", ".md", ".txt"}
OFFICE = {".docx", ".xlsx", ".pptx", ".csv", ".md", ".txt"}  # laid out by the renderer, when there
MAX_FILES = 6  # previews made after one answer
MAX_PAGES = 8  # pages of one file
MAX_PNG = 1_500_000  # bytes of one picture
MAX_SIDE = 1600  # pixels
SIDE = 1400  # pixels on the long side of a page the guest draws
MAX_OUTPUT = 48_000_000  # base64 and JSON around the pages of MAX_FILES files
TIMEOUT_S = 300.0  # LibreOffice's start in a guest under software emulation is slow
RENDERER_S = 200.0  # then the guest gives up on it, and draws the simple picture in what is left
FALLBACK = (
    "A simple drawing of the words only: the part of the sandbox that lays documents out as they "
    "look (tables, charts, slides) is not installed."
)
NOTES = {  # why the guest drew the simple picture instead: what the viewer says
    "absent": FALLBACK,
    "slow": "A simple drawing of the words only: laying this document out as it looks took too long this time.",
    "failed": "A simple drawing of the words only: this document could not be laid out as it looks.",
}
PREVIEW_WAIT_S = 60.0  # at the end of a session, for files not drawn yet
PNG = b"\x89PNG\r\n\x1a\n"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preview:
    path: str  # relative to the folder
    png: bytes  # the first page; checked: a PNG within MAX_PNG and MAX_SIDE
    width: int
    height: int
    more: tuple[bytes, ...] = ()  # the pages after the first (at most MAX_PAGES in all), each checked
    note: str = ""  # said beside the picture: why it is not the document's real layout

    @property
    def pages(self) -> tuple[bytes, ...]:
        return (self.png, *self.more)


def checked_png(data: bytes) -> tuple[int, int] | None:
    """(width, height) when ``data`` is a PNG the window may show, else None."""
    if len(data) > MAX_PNG or len(data) < 33 or not data.startswith(PNG) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return (width, height) if 0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE else None


GUEST_SCRIPT = r"""
import base64, csv, io, json, os, re, shutil, subprocess, sys, tempfile
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

def drawn(path):
    # The old drawing (no renderer): one PNG, the text and first rows, not the layout.
    name = os.path.basename(path)
    ext = os.path.splitext(path)[1].lower()
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
    return [out.getvalue()]

def pages(pdf, work):
    # Each page of a PDF as a PNG (at most MAX_PAGES), smaller when a page is too big.
    out = []
    for n in range(1, MAX_PAGES + 1):
        for side in (SIDE, SIDE * 3 // 4, SIDE // 2):
            root = os.path.join(work, "page")
            p = subprocess.run(["pdftoppm", "-png", "-singlefile", "-f", str(n), "-l", str(n), "-scale-to", str(side),
                                pdf, root], capture_output=True, timeout=120)
            if p.returncode != 0:
                return out
            data = open(root + ".png", "rb").read()
            if len(data) <= MAX_PNG:
                out.append(data)
                break
    return out

def picture(path):
    from PIL import Image
    with Image.open(path) as im:
        im.thumbnail((SIDE, SIDE))
        out = io.BytesIO()
        im.convert("RGBA").save(out, "PNG", optimize=True)
        return [out.getvalue()]

def on_screen(xml):
    # A sheet drawn as it is seen on screen rather than cut into printed pages: its cells' grid,
    # and every column on one page (as many pages down as it needs), across.
    fit = '<pageSetUpPr fitToPage="1"/>'
    xml = re.sub(r"<pageSetUpPr[^>]*/>|<printOptions[^>]*/>|<pageSetup[^>]*/>", "", xml)
    if re.search(r"<sheetPr[^>]*/>", xml):
        xml = re.sub(r"<sheetPr([^>]*)/>", lambda m: f"<sheetPr{m.group(1)}>{fit}</sheetPr>", xml, count=1)
    elif "</sheetPr>" in xml:
        xml = xml.replace("</sheetPr>", fit + "</sheetPr>", 1)
    else:
        xml = re.sub(r"(<worksheet[^>]*>)", lambda m: m.group(1) + f"<sheetPr>{fit}</sheetPr>", xml, count=1)
    return re.sub(r"(<pageMargins[^>]*/>)", lambda m: '<printOptions gridLines="1"/>' + m.group(1)
                  + '<pageSetup orientation="landscape" fitToWidth="1" fitToHeight="0"/>', xml, count=1)

def sheet_copy(path, dest):
    # A copy of the workbook with each sheet set up by on_screen (the file itself is not touched;
    # the rest of the workbook, charts included, is copied as it is).
    import zipfile
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if re.fullmatch(r"xl/worksheets/[^/]+\.xml", info.filename) and len(data) < 50_000_000:
                data = on_screen(data.decode("utf-8")).encode("utf-8")
            zout.writestr(info, data)

def csv_copy(path, dest):
    # A CSV as a workbook with on_screen's set-up (its first 2,000 rows).
    import openpyxl
    from openpyxl.worksheet.properties import PageSetupProperties
    wb = openpyxl.Workbook()
    ws = wb.active
    with open(path, newline="", errors="replace") as f:
        for _, row in zip(range(2000), csv.reader(f)):
            ws.append(row)
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight, ws.page_setup.orientation = 1, 0, "landscape"
    ws.print_options.gridLines = True
    wb.save(dest)

def office(paths, work):
    # Every document laid out by LibreOffice (one start for the lot), as PDFs: {path: pdf}.
    src, done = os.path.join(work, "in"), os.path.join(work, "out")
    os.makedirs(src), os.makedirs(done)
    named = {}
    for i, path in enumerate(paths):
        ext = os.path.splitext(path)[1].lower()
        link = os.path.join(src, f"{i}{ext}")
        try:
            if ext == ".md":  # Markdown is laid out as a document, headings and tables included
                link = os.path.join(src, f"{i}.docx")
                subprocess.run(["pandoc", "-o", link, path], capture_output=True, timeout=120, check=True)
            elif ext == ".csv":
                link = os.path.join(src, f"{i}.xlsx")
                csv_copy(path, link)
            elif ext == ".xlsx":
                sheet_copy(path, link)
            else:
                os.symlink(os.path.abspath(path), link)
        except Exception:
            if ext == ".xlsx" and not os.path.exists(link):
                os.symlink(os.path.abspath(path), link)
            elif not os.path.exists(link):
                continue
        named[path] = os.path.splitext(os.path.basename(link))[0]
    profile = "file:///tmp/paddock-renderer-profile"  # kept for the next call: a second start is quicker
    batch = [os.path.join(src, f) for f in sorted(os.listdir(src))]
    if batch:
        # Niced: the guest has one processor, and the assistant's next command comes first. In a
        # session of its own, with no pipe to hold: on a timeout the whole of LibreOffice is ended.
        proc = subprocess.Popen(["nice", "-n", "10", "soffice", f"-env:UserInstallation={profile}", "--headless",
                                 "--norestore", "--nolockcheck", "--convert-to", "pdf", "--outdir", done, *batch],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            raise
    return {path: os.path.join(done, stem + ".pdf") for path, stem in named.items()}

def say(path, pngs, faithful, why=""):
    for n, png in enumerate(pngs):
        print(json.dumps({"path": path, "page": n, "of": len(pngs), "faithful": faithful, "why": why,
                          "png": base64.b64encode(png).decode()}), flush=True)

work = tempfile.mkdtemp(prefix="paddock-preview-")
renderer = shutil.which("soffice") is not None
paths = sys.argv[1:]
laid_out, why = None, ("" if renderer else "absent")

def lay_out():
    global laid_out, why
    if laid_out is None:
        laid_out = {}
        if renderer:
            try:
                laid_out = office([p for p in paths if os.path.splitext(p)[1].lower() in OFFICE], work)
            except subprocess.TimeoutExpired:
                why = "slow"
            except Exception:
                why = "failed"
    return laid_out
# Pictures and PDFs first (they need no LibreOffice), then the documents it laid out.
for path in sorted(paths, key=lambda p: os.path.splitext(p)[1].lower() in OFFICE):
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".pdf":
            say(path, pages(path, work), True)
        elif ext in (".png", ".jpg", ".jpeg", ".gif"):
            say(path, picture(path), True)
        elif path in lay_out() and os.path.exists(laid_out[path]):
            say(path, pages(laid_out[path], work), True)
        else:
            say(path, drawn(path), False, why or "failed")
    except Exception as exc:
        print(json.dumps({"path": path, "error": type(exc).__name__}), flush=True)
shutil.rmtree(work, ignore_errors=True)
"""


def guest_script() -> bytes:
    """The Python the guest runs (``python3 - PATH...``), with the host's bounds at its head."""
    bounds = (MAX_PAGES, SIDE, MAX_PNG, RENDERER_S, sorted(OFFICE))
    head = f"MAX_PAGES, SIDE, MAX_PNG, TIMEOUT, OFFICE = {bounds!r}\n"
    return (head + GUEST_SCRIPT).encode()


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
    """Draw ``paths`` in the guest, page by page; only checked pictures come back."""
    if not paths:
        return []
    out = bytearray()
    started = time.monotonic()
    asked = {p if not p.startswith("-") else "./" + p: p for p in paths}
    argv = ["python3", "-", *asked]
    err = bytearray()
    async for ev in sandbox.exec(argv, timeout_s=TIMEOUT_S, stdin=guest_script()):
        if isinstance(ev, ExecOutput) and ev.stream is Stream.STDOUT and len(out) < MAX_OUTPUT:
            out += ev.data[: MAX_OUTPUT - len(out)]
        elif isinstance(ev, ExecOutput) and ev.stream is Stream.STDERR:
            err = (err + ev.data)[-2000:]  # the guest's last words, for the log only
        elif isinstance(ev, ExecResult):
            log.info("previews: the guest's drawing ended: %s %s", ev, bytes(err).decode(errors="replace")[-500:])
    return parse(bytes(out), asked, started)


def parse(out: bytes, asked: dict[str, str], started: float = 0.0) -> list[Preview]:
    """The guest's answer (a JSON line per page), each page checked; a file keeps its pages in
    order, and only up to its first missing or refused page."""
    pages: dict[str, list[tuple[int, int]]] = {}
    pngs: dict[str, list[bytes]] = {}
    notes: dict[str, str] = {}
    for line in out.splitlines():
        try:
            item = json.loads(line)
            data = base64.b64decode(item["png"], validate=True)
            page = int(item.get("page", 0))
        except (ValueError, KeyError, TypeError, binascii.Error):
            continue
        size = checked_png(data)
        path = asked.get(str(item.get("path")))
        if size is None or path is None or page != len(pngs.get(path, [])) or page >= MAX_PAGES:
            continue
        pages.setdefault(path, []).append(size)
        pngs.setdefault(path, []).append(data)
        notes[path] = "" if item.get("faithful", True) is True else NOTES.get(str(item.get("why")), NOTES["failed"])
    previews = [
        Preview(path, got[0], *pages[path][0], more=tuple(got[1:]), note=notes[path]) for path, got in pngs.items()
    ]
    if started:
        log.info(
            "previews: %d of %d files, %d pages, drawn in the sandbox in %.1f s",
            len(previews),
            len(asked),
            sum(len(p.pages) for p in previews),
            time.monotonic() - started,
        )
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
