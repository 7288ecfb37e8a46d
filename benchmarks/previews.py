"""How long the guest takes to draw a document's preview with the renderer layer (LibreOffice,
no GUI) under this machine's emulation: a 2-page Word file with a table, a workbook with a
chart, a 3-slide deck. Each file alone, in one woken sandbox: the first (LibreOffice's first
start in that guest: it writes its profile) and then each file again (a later preview).

    .venv/bin/python -m benchmarks.previews [--runs 2]

Baseline: the old drawing of the same Word file (the guest's own Python; soffice off its PATH).
Needs the renderer layer (``./build_vm.sh --renderer``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from paddock.desk.previews import guest_script, parse, render
from paddock.sandbox import Sandbox
from paddock.vm import find_image

MAKE = r"""
import docx, openpyxl, pptx
from openpyxl.chart import BarChart, Reference
d = docx.Document(); d.add_heading("Quarterly report", 1)
t = d.add_table(rows=0, cols=3); t.style = "Table Grid"
for row in [("Month", "Sales", "Change"), ("January", "41,200", "+2%"), ("March", "48,900", "+9%")]:
    for c, v in zip(t.add_row().cells, row): c.text = v
d.add_page_break(); d.add_paragraph("Page two.")
d.save("report.docx")
wb = openpyxl.Workbook(); ws = wb.active
for row in [("Month", "Sales"), ("January", 41200), ("February", 44750), ("March", 48900)]: ws.append(row)
chart = BarChart(); chart.add_data(Reference(ws, min_col=2, min_row=1, max_row=4), titles_from_data=True)
ws.add_chart(chart, "D2"); wb.save("sales.xlsx")
p = pptx.Presentation()
for title in ("One", "Two", "Three"):
    s = p.slides.add_slide(p.slide_layouts[1]); s.shapes.title.text = title
p.save("deck.pptx")
"""
FILES = ("report.docx", "sales.xlsx", "deck.pptx")


async def _timed(sandbox: Sandbox, path: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    [preview] = await render(sandbox, [path])
    return time.perf_counter() - t0, len(preview.pages)


async def _run(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with Sandbox.open(folder) as sandbox:
        await sandbox.guest.run(["python3", "-c", MAKE])
        out["first_start_docx_s"], _ = await _timed(sandbox, "report.docx")
        for name in FILES:
            out[f"{name}_s"], out[f"{name}_pages"] = await _timed(sandbox, name)
        t0 = time.perf_counter()
        stdout, _, _ = await sandbox.guest.run(
            ["env", "PATH=/nonexistent", "/usr/bin/python3", "-", "report.docx"], stdin=guest_script()
        )
        assert parse(stdout, {"report.docx": "report.docx"})
        out["fallback_docx_s"] = time.perf_counter() - t0
    return out


def measure(runs: int = 2) -> dict[str, Any]:
    if not find_image().layers:
        raise SystemExit("the renderer layer is not built: ./build_vm.sh --renderer")
    got: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="paddock-previews-") as tmp:
        for i in range(runs):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            got.append(asyncio.run(_run(folder)))
    keys = got[0].keys()
    return {
        **{f"preview_{k}": round(statistics.median(g[k] for g in got), 1) for k in keys},
        "raw_previews": got,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    ns = parser.parse_args()
    print(json.dumps(measure(ns.runs), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
