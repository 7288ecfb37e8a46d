"""Real deliverables from the real VM: a scripted "monthly report" task, read back on the host.

The model is the loopback Messages API server (the one fake, standing in for the model
service); it asks for the skill, writes a script, runs it in the guest, and reads the results
back through ``read_document``. Everything it produces is checked on the host with independent
readers: openpyxl and pycel (which recalculates the formulas), python-docx, python-pptx.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import pytest

from paddock.assistant.loop import AssistantSession, ConversationStore
from tests.conftest import Booted
from tests.fakes.messages_api import MessagesAPI, Reply, Step, text, tool

pytestmark = pytest.mark.vm

MONTHS = {"jan": [("north", 120.5), ("south", 80)], "feb": [("north", 130), ("south", 95.25)],
          "mar": [("north", 150), ("south", 101)]}  # fmt: skip

# What the model writes and runs in the guest: the toolkit in the image does the work.
SCRIPT = r"""
import csv
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import openpyxl
from docx import Document
from docx.shared import Inches
from pptx import Presentation
from pptx.util import Inches as PI
from openpyxl.chart import BarChart, Reference

months = ["jan", "feb", "mar"]
wb = openpyxl.Workbook()
data = wb.active
data.title = "Data"
data.append(["month", "region", "amount"])
for m in months:
    with open(f"{m}.csv") as fh:
        for row in csv.DictReader(fh):
            data.append([m, row["region"], float(row["amount"])])
last = data.max_row
summary = wb.create_sheet("Summary", 0)
summary.append(["month", "total"])
for i, m in enumerate(months, start=2):
    summary.cell(i, 1, m)
    summary.cell(i, 2, f'=SUMIF(Data!A2:A{last},A{i},Data!C2:C{last})')
summary["A5"] = "quarter"
summary["B5"] = "=SUM(B2:B4)"
summary["C5"] = "=B5/3"
chart = BarChart()
chart.add_data(Reference(summary, min_col=2, min_row=1, max_row=4), titles_from_data=True)
chart.set_categories(Reference(summary, min_col=1, min_row=2, max_row=4))
summary.add_chart(chart, "E2")
wb.save("report.xlsx")

totals = {}
for m in months:
    with open(f"{m}.csv") as fh:
        totals[m] = sum(float(r["amount"]) for r in csv.DictReader(fh))
fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
ax.bar(list(totals), list(totals.values()))
ax.set_title("Sales per month")
fig.tight_layout()
fig.savefig("chart.png")

doc = Document()
doc.add_heading("Monthly sales", 0)
doc.add_heading("Summary", level=1)
doc.add_paragraph(f"The quarter's sales were {sum(totals.values()):.2f}.")
doc.add_heading("Per month", level=1)
table = doc.add_table(rows=1, cols=2)
table.rows[0].cells[0].text, table.rows[0].cells[1].text = "month", "total"
for m, t in totals.items():
    cells = table.add_row().cells
    cells[0].text, cells[1].text = m, f"{t:.2f}"
doc.add_picture("chart.png", width=Inches(5))
doc.save("summary.docx")

prs = Presentation()
s = prs.slides.add_slide(prs.slide_layouts[0])
s.shapes.title.text = "Sales, first quarter"
s.placeholders[1].text = "Monthly report"
s = prs.slides.add_slide(prs.slide_layouts[1])
s.shapes.title.text = "March was the best month"
s.placeholders[1].text = "\n".join(f"{m}: {t:.2f}" for m, t in totals.items())
s = prs.slides.add_slide(prs.slide_layouts[5])
s.shapes.title.text = "Chart"
s.shapes.add_picture("chart.png", PI(1), PI(1.5), width=PI(8))
prs.save("deck.pptx")

with open("report.md", "w") as fh:
    fh.write("# Monthly sales\n\nThe quarter in one page.\n\n| month | total |\n|---|---|\n")
    fh.write("".join(f"| {m} | {t:.2f} |\n" for m, t in totals.items()))
    fh.write("\n![chart](chart.png)\n")
print("made", sorted(totals))
"""


def _scripted_session(booted: Booted, tmp_path: Path, steps: list[Step], task: str) -> MessagesAPI:
    """Run ``task`` through the agent loop in the booted sandbox, with the model scripted."""
    from paddock.llm import AnthropicProvider

    with MessagesAPI(steps) as api:
        os.environ["ANTHROPIC_BASE_URL"] = api.url
        try:
            provider = AnthropicProvider(f"test-{secrets.token_hex(8)}", max_retries=1)
            session = AssistantSession(booted.sandbox, provider, ConversationStore(booted.workspace, tmp_path))
            booted.engine.run(session.send(task), timeout=600)
        finally:
            os.environ.pop("ANTHROPIC_BASE_URL", None)
    return api


def test_three_csv_files_become_a_workbook_with_formulas_a_chart_a_document_slides_and_a_pdf(
    booted: Booted, tmp_path: Path
) -> None:
    ws = booted.workspace
    for month, rows in MONTHS.items():
        (ws / f"{month}.csv").write_text("region,amount\n" + "".join(f"{r},{a}\n" for r, a in rows))
    steps = [
        Reply(tool_uses=[("load_skill", {"name": "spreadsheets"})]),
        tool("write_file", path="make_report.py", content=SCRIPT),
        tool("run_command", command="python3 make_report.py && md2pdf report.md report.pdf"),
        tool("read_document", path="report.xlsx"),
        tool("read_document", path="report.pdf"),
        tool("read_document", path="summary.docx"),
        tool("read_document", path="deck.pptx"),
        text("I made report.xlsx, chart.png, summary.docx, deck.pptx and report.pdf."),
    ]
    api = _scripted_session(booted, tmp_path, steps, "Turn the three monthly CSV files into a report")
    results = api.tool_results()
    # The skills are listed in the system prompt (names only) and loaded on request.
    assert "spreadsheets:" in str(api.requests[0]["system"])
    assert "real Excel formulas" in results[0]["content"]
    assert not results[2]["is_error"], results[2]["content"]
    xlsx_text, pdf_text, docx_text, pptx_text = (r["content"] for r in results[3:7])

    # The workbook: formulas, not pasted values, and they compute the right totals.
    import openpyxl
    from pycel import ExcelCompiler

    book = openpyxl.load_workbook(ws / "report.xlsx")
    assert book.sheetnames == ["Summary", "Data"]
    assert str(book["Summary"]["B2"].value).startswith("=SUMIF(")
    assert book["Summary"]["B5"].value == "=SUM(B2:B4)"
    assert book["Summary"]._charts, "the workbook has no chart"
    calc = ExcelCompiler(filename=str(ws / "report.xlsx"))
    expected = {m: sum(a for _, a in rows) for m, rows in MONTHS.items()}
    for row, month in enumerate(MONTHS, start=2):
        assert calc.evaluate(f"Summary!B{row}") == pytest.approx(expected[month])
    assert calc.evaluate("Summary!B5") == pytest.approx(sum(expected.values()))
    assert "=SUM(B2:B4)" in xlsx_text and "Sheet Data" in xlsx_text

    # The chart is a real PNG image.
    png = (ws / "chart.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000

    # The document has real headings and the table.
    import docx

    document = docx.Document(str(ws / "summary.docx"))
    headings = [(p.style.name, p.text) for p in document.paragraphs if p.style.name.startswith(("Heading", "Title"))]
    assert ("Title", "Monthly sales") in headings and ("Heading 1", "Per month") in headings
    assert document.tables[0].rows[3].cells[1].text == f"{expected['mar']:.2f}"
    assert "# Monthly sales" in docx_text and "## Summary" not in docx_text and "# Per month" in docx_text

    # Three slides.
    from pptx import Presentation

    deck = Presentation(str(ws / "deck.pptx"))
    assert len(deck.slides) == 3
    assert deck.slides[1].shapes.title.text == "March was the best month"
    assert "## Slide 3" in pptx_text

    # The PDF the task made, read back through read_document: text from its pages.
    assert (ws / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert "(1 pages)" in pdf_text and "Monthly sales" in pdf_text and f"{expected['feb']:.2f}" in pdf_text
    assert re.match(r'<untrusted_data id="[0-9a-f]{16}" source="document report.pdf">', pdf_text)


def test_read_document_is_bounded_and_fails_in_plain_words(booted: Booted, tmp_path: Path) -> None:
    ws = booted.workspace
    (ws / "big.csv").write_text("a,b\n" + "".join(f"{i},{'x' * 50}\n" for i in range(5000)))
    (ws / "broken.xlsx").write_bytes(b"this is not a workbook")
    steps = [
        tool("read_document", path="big.csv", max_chars=2000),
        tool("read_document", path="broken.xlsx"),
        tool("read_document", path="../outside/canary.txt"),
        Reply(tool_uses=[("load_skill", {"name": "../../etc/passwd"})]),
        text("ok"),
    ]
    big, broken, outside, skill = _scripted_session(booted, tmp_path, steps, "read").tool_results()
    assert not big["is_error"] and len(big["content"]) < 4000 and "cut at 2000 characters" in big["content"]
    assert broken["is_error"] and "could not be read as .xlsx" in broken["content"]
    assert outside["is_error"] and "inside the workspace" in outside["content"]
    assert skill["is_error"] and "no skill called" in skill["content"]
