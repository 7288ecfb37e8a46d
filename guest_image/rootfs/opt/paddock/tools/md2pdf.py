"""Markdown to PDF with reportlab (in the guest): headings, paragraphs, bullet lists,
**bold**/*italic*, pipe tables and images (``![alt](file.png)``).

    md2pdf report.md report.pdf
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import Image, ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle


def inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", text)


def _block(src: Path, stripped: str, heading: re.Match[str] | None, image: re.Match[str] | None,
           styles: Any) -> list[object]:  # fmt: skip
    """A heading, an image or a paragraph (nothing for an empty line or a missing image)."""
    if heading:
        return [Paragraph(inline(heading.group(2)), styles[f"Heading{len(heading.group(1))}"])]
    if image:
        img = src.parent / image.group(1)
        return [Image(str(img), width=15 * cm, height=9 * cm, kind="proportional")] if img.is_file() else []
    return [Paragraph(inline(stripped), styles["BodyText"])] if stripped else []


def _flush(story: list[object], bullets: list[str], rows: list[list[str]], styles: Any) -> None:
    """Close the open bullet list and table, if any: append them to the story and empty them."""
    if bullets:
        story.append(ListFlowable([ListItem(Paragraph(inline(b), styles["BodyText"])) for b in bullets],
                                  bulletType="bullet"))  # fmt: skip
        bullets.clear()
    if rows:
        body = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c.strip()) for c in r)]
        t = Table([[Paragraph(inline(c.strip()), styles["BodyText"]) for c in r] for r in body])
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke)]))  # fmt: skip
        story.append(t)
        story.append(Spacer(1, 6))
        rows.clear()


def convert(src: Path, dest: Path) -> None:
    styles = getSampleStyleSheet()
    story: list[object] = []
    bullets: list[str] = []
    rows: list[list[str]] = []

    def flush() -> None:
        _flush(story, bullets, rows, styles)

    for line in src.read_text().splitlines():
        stripped = line.strip()
        heading = re.match(r"^(#{1,4})\s+(.*)", stripped)
        image = re.match(r"^!\[[^\]]*\]\(([^)]+)\)$", stripped)
        if stripped.startswith("|"):
            if bullets:
                flush()
            rows.append(stripped.strip("|").split("|"))
            continue
        if re.match(r"^[-*]\s+", stripped):
            if rows:
                flush()
            bullets.append(re.sub(r"^[-*]\s+", "", stripped))
            continue
        flush()
        story.extend(_block(src, stripped, heading, image, styles))
    flush()
    SimpleDocTemplate(str(dest), pagesize=A4).build(story)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: md2pdf IN.md OUT.pdf", file=sys.stderr)
        sys.exit(2)
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
