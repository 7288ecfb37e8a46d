"""Previews that show the real layout: a Word file's table with its grid, a workbook's chart, every
slide of a deck, drawn in the guest by the renderer layer (LibreOffice, no GUI) page by page.

Real: the sandbox (QEMU, virtiofs, gRPC), the guest's Python that makes the documents, the renderer
layer attached over the root, ``pdftoppm``. No fake. The checks read the pictures' pixels on the
host (Qt's QImage, as the window does): page count, the table's ruled lines, the chart's coloured
bars, the slides' shape. The old drawing (the words on a blank page: "Month | Sales") fails them.
"""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from paddock.desk.previews import FALLBACK, Preview, guest_script, parse, render
from paddock.vm import find_image
from tests.conftest import ARTIFACTS, Booted

pytestmark = pytest.mark.vm

MAKE = r"""
import docx, openpyxl, pptx
from docx.shared import Pt
from openpyxl.chart import BarChart, Reference
d = docx.Document()
d.add_heading("Quarterly report", 1)
d.add_paragraph("Sales by month, in euros.")
t = d.add_table(rows=0, cols=3)
t.style = "Table Grid"
for row in [("Month", "Sales", "Change"), ("January", "41,200", "+2%"), ("February", "44,750", "+9%"),
            ("March", "48,900", "+9%"), ("April", "47,100", "-4%")]:
    cells = t.add_row().cells
    for c, v in zip(cells, row):
        c.text = v
d.add_page_break()
d.add_heading("Next quarter", 1)
for i in range(12):
    d.add_paragraph(f"Plan item {i + 1}: keep the shops open longer on Saturdays.")
d.save("report.docx")
wb = openpyxl.Workbook(); ws = wb.active; ws.title = "Sales"
for row in [("Month", "Sales"), ("January", 41200), ("February", 44750), ("March", 48900)]:
    ws.append(row)
chart = BarChart(); chart.title = "Sales"
chart.add_data(Reference(ws, min_col=2, min_row=1, max_row=4), titles_from_data=True)
chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=4))
ws.add_chart(chart, "D2")
wb.save("sales.xlsx")
p = pptx.Presentation()
for title in ("Q1 in review", "What went well", "Next steps"):
    s = p.slides.add_slide(p.slide_layouts[1]); s.shapes.title.text = title
    s.placeholders[1].text = "Sales rose 19%"
p.save("deck.pptx")
"""


def _image(png: bytes) -> QImage:
    image = QImage.fromData(png, "PNG")
    assert not image.isNull()
    return image


def _dark(image: QImage, x: int, y: int) -> bool:
    c = image.pixelColor(x, y)
    return c.red() + c.green() + c.blue() < 3 * 110


def _ruled_rows(image: QImage) -> list[int]:
    """Rows with a long dark line across them (a table's horizontal rules)."""
    width = image.width()
    rows = []
    for y in range(image.height()):
        run = best = 0
        for x in range(width):
            run = run + 1 if _dark(image, x, y) else 0
            best = max(best, run)
        if best > width // 3:
            rows.append(y)
    return rows


def _lines(rows: list[int]) -> int:
    """Separate lines among ``rows`` (neighbouring rows are one line drawn thick)."""
    return sum(1 for i, y in enumerate(rows) if i == 0 or y - rows[i - 1] > 2)


def _coloured(image: QImage, step: int = 3) -> int:
    """Pixels with a clear colour (not white, grey or black): a chart's bars, not text."""
    n = 0
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            c = image.pixelColor(x, y)
            if max(c.red(), c.green(), c.blue()) - min(c.red(), c.green(), c.blue()) > 60:
                n += 1
    return n


def _keep(previews: list[Preview], where: str) -> None:
    kept = ARTIFACTS / where  # for docs/screenshots and for a person to look at
    kept.mkdir(parents=True, exist_ok=True)
    for p in previews:
        for i, png in enumerate(p.pages):
            (kept / f"{p.path}-{i + 1}.png").write_bytes(png)


def test_documents_are_drawn_as_they_look(booted: Booted) -> None:
    if not find_image().layers:
        pytest.fail("the renderer layer is not built: run ./build_vm.sh --renderer (the README's set-up does)")
    _, err, code = booted.run(["python3", "-c", MAKE])
    assert code == 0, err
    previews = {
        p.path: p
        for p in booted.engine.run(render(booted.sandbox, ["report.docx", "sales.xlsx", "deck.pptx"]), timeout=400)
    }
    _keep(list(previews.values()), "previews-real")
    assert set(previews) == {"report.docx", "sales.xlsx", "deck.pptx"}
    assert all(not p.note for p in previews.values())  # the layout, not the fallback

    report = previews["report.docx"]
    assert len(report.pages) == 2  # the page break is kept: two pages, as in Word
    page = _image(report.png)
    assert page.height() > page.width()  # an upright page
    # The table's grid: a rule above, below and between its five rows (six lines), which the old
    # drawing ("Month | Sales" as text) never had.
    assert _lines(_ruled_rows(page)) >= 6

    sheet = _image(previews["sales.xlsx"].png)
    assert _coloured(sheet) > 200  # the chart's bars are drawn in colour

    deck = previews["deck.pptx"]
    assert len(deck.pages) == 3  # every slide, in order
    for png in deck.pages:
        slide = _image(png)
        assert slide.width() > slide.height()  # slides are landscape, not pages of text
    assert _image(deck.pages[0]) != _image(deck.pages[1])  # each slide its own picture


def test_without_the_renderer_the_old_drawing_says_so(booted: Booted) -> None:
    # The layer's absence, as the guest's script sees it: no soffice on its PATH.
    _, err, code = booted.run(["python3", "-c", MAKE])
    assert code == 0, err
    stdout, err, code = booted.run(
        ["env", "PATH=/nonexistent", "/usr/bin/python3", "-", "report.docx"], stdin=guest_script()
    )
    assert code == 0, err
    [preview] = parse(stdout.encode(), {"report.docx": "report.docx"})
    assert preview.note == FALLBACK and len(preview.pages) == 1
