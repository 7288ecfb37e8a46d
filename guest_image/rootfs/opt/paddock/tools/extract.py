"""Text and structure of an office file or PDF, bounded in size, for the model.

Runs in the guest (Debian's python3 with the office toolkit). Usage:
    python3 /opt/paddock/tools/extract.py [--max-chars N] PATH
Prints Markdown-ish text: headings and paragraphs (.docx), sheets with cell values and
formulas (.xlsx), slides (.pptx), pages (.pdf), the first rows (.csv), or plain text.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from pathlib import Path

MAX_ROWS = 60
MAX_COLS = 26


def docx(path: Path) -> Iterator[str]:
    import docx as python_docx

    doc = python_docx.Document(str(path))
    for para in doc.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name or "") if para.style is not None else ""
        if style.startswith("Heading"):
            level = style.removeprefix("Heading").strip()
            yield "#" * (int(level) if level.isdigit() else 1) + " " + text
        elif style == "Title":
            yield "# " + text
        elif "List" in style:
            yield "- " + text
        else:
            yield text
    for n, table in enumerate(doc.tables, 1):
        yield f"\n[table {n}]"
        for row in table.rows[:MAX_ROWS]:
            yield "| " + " | ".join(c.text.strip() for c in row.cells[:MAX_COLS]) + " |"


def xlsx(path: Path) -> Iterator[str]:
    import openpyxl

    formulas = openpyxl.load_workbook(str(path), data_only=False, read_only=True)
    values = openpyxl.load_workbook(str(path), data_only=True, read_only=True)
    for ws in formulas.worksheets:
        vs = values[ws.title]
        yield f"\n## Sheet {ws.title} ({ws.max_row} rows × {ws.max_column} columns)"
        for r, (frow, vrow) in enumerate(
            zip(ws.iter_rows(max_row=MAX_ROWS), vs.iter_rows(max_row=MAX_ROWS), strict=False), 1
        ):
            cells = []
            for f, v in zip(frow[:MAX_COLS], vrow[:MAX_COLS], strict=False):
                if f.value is None:
                    continue
                if isinstance(f.value, str) and f.value.startswith("="):
                    shown = "" if v.value is None else f" → {v.value}"
                    cells.append(f"{f.coordinate}: {f.value}{shown}")
                else:
                    cells.append(f"{f.coordinate}: {f.value}")
            if cells:
                yield f"row {r}: " + "; ".join(cells)
        if ws.max_row and ws.max_row > MAX_ROWS:
            yield f"… {ws.max_row - MAX_ROWS} more rows"


def pptx(path: Path) -> Iterator[str]:
    from pptx import Presentation

    deck = Presentation(str(path))
    for n, slide in enumerate(deck.slides, 1):
        yield f"\n## Slide {n}"
        for shape in slide.shapes:
            if shape.has_text_frame:
                for para in shape.text_frame.paragraphs:
                    text = "".join(run.text for run in para.runs).strip()
                    if text:
                        yield ("  " * para.level) + text
            elif getattr(shape, "has_table", False) and shape.has_table:
                for row in shape.table.rows:
                    yield "| " + " | ".join(c.text.strip() for c in row.cells) + " |"
            elif shape.shape_type == 13:  # picture
                yield "[picture]"
            elif getattr(shape, "has_chart", False) and shape.has_chart:
                yield "[chart]"


def pdf(path: Path) -> Iterator[str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    yield f"({len(reader.pages)} pages)"
    for n, page in enumerate(reader.pages, 1):
        yield f"\n## Page {n}"
        yield (page.extract_text() or "").strip() or "[no text on this page: it may be a scanned image]"


def table(path: Path) -> Iterator[str]:
    with open(path, newline="", errors="replace") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        try:
            dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample)
        except csv.Error:
            dialect = csv.excel
        rows = 0
        for rows, row in enumerate(csv.reader(fh, dialect), 1):
            if rows <= MAX_ROWS:
                yield "| " + " | ".join(row[:MAX_COLS]) + " |"
        if rows > MAX_ROWS:
            yield f"… {rows - MAX_ROWS} more rows ({rows} in all)"


def text(path: Path) -> Iterator[str]:
    yield path.read_text(errors="replace")


READERS = {".docx": docx, ".xlsx": xlsx, ".xlsm": xlsx, ".pptx": pptx, ".pdf": pdf, ".csv": table, ".tsv": table}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-chars", type=int, default=30_000)
    parser.add_argument("path")
    ns = parser.parse_args()
    path = Path(ns.path)
    if not path.is_file():
        print(f"{ns.path}: no such file", file=sys.stderr)
        return 2
    reader = READERS.get(path.suffix.lower(), text)
    out: list[str] = []
    size = 0
    try:
        for line in reader(path):
            out.append(line)
            size += len(line) + 1
            if size > ns.max_chars:
                out.append(f"\n… cut at {ns.max_chars} characters; ask for a part of the file to see more")
                break
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes a plain message
        print(f"{ns.path} could not be read as {path.suffix or 'text'}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write("\n".join(out)[: ns.max_chars + 200] + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
