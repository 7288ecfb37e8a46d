"""The window's live views (#20): how fast files written by a command reach the host, and what
drawing a streamed answer costs.

    .venv/bin/python -m benchmarks.live_views [--files 2000] [--repeats 3]

1. The guest's file watcher: one command writes N small files in the shared folder; measured are
   the command's time, how many "written" reports reached the host, and how long after the
   command ended the last one arrived. Baseline in the same run: the same command writing into
   the guest's own /tmp (not watched).
2. A streamed answer (a 400-row Markdown table, 4 characters per piece, offscreen Qt): the answer
   view as it is (drawn at most every 100 ms) against drawing the whole answer per piece (as it
   was before).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from paddock.guest import FileChangedEvent
from paddock.sandbox import Sandbox


async def _watch(folder: Path, files: int, repeats: int) -> dict[str, Any]:
    command = f'mkdir -p "$D" && i=0; while [ $i -lt {files} ]; do echo $i > "$D/f$i.txt"; i=$((i+1)); done'
    watched: list[float] = []
    unwatched: list[float] = []
    lags: list[float] = []
    reported: list[int] = []
    async with Sandbox.open(folder) as sandbox:
        for r in range(repeats):
            seen: dict[str, float] = {}
            prefix = f"run{r}/"

            async def listen(prefix: str = prefix, seen: dict[str, float] = seen) -> None:
                async for ev in sandbox.guest.events():
                    if isinstance(ev, FileChangedEvent) and not ev.writing and ev.path.startswith(prefix):
                        seen[ev.path] = time.monotonic()

            task = asyncio.ensure_future(listen())
            await asyncio.sleep(0.5)
            t0 = time.monotonic()
            await sandbox.guest.run(["sh", "-c", command], env={"D": f"run{r}"})
            ended = time.monotonic()
            watched.append(ended - t0)
            for _ in range(600):  # up to a minute for the reports to arrive
                if len(seen) >= files:
                    break
                await asyncio.sleep(0.1)  # the listener fills ``seen``
            await asyncio.sleep(1.0)
            task.cancel()
            reported.append(len(seen))
            lags.append(max(seen.values(), default=ended) - ended)
            t0 = time.monotonic()
            await sandbox.guest.run(["sh", "-c", command], env={"D": f"/tmp/run{r}"})
            unwatched.append(time.monotonic() - t0)
    return {
        "watch_files": files,
        "watch_command_s": round(statistics.median(watched), 2),
        "watch_command_tmp_s": round(statistics.median(unwatched), 2),
        "watch_reported": min(reported),
        "watch_last_report_after_s": round(statistics.median(lags), 2),
    }


def _answer(repeats: int) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from paddock.ui.answer import AnswerView

    app = QApplication.instance() or QApplication([])
    text = "# Sales\n\n| month | total |\n|---|---|\n" + "".join(f"| {i} | row {i} |\n" for i in range(400))
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    now: list[float] = []
    before: list[float] = []
    for _ in range(repeats):
        for per_piece, out in ((False, now), (True, before)):
            view = AnswerView()
            t0 = time.perf_counter()
            for p in pieces:
                view.append_text(p)
                if per_piece:
                    view.draw()
                app.processEvents()
            view.draw()
            out.append(time.perf_counter() - t0)
            view.deleteLater()
    return {
        "answer_pieces": len(pieces),
        "answer_now_s": round(statistics.median(now), 3),
        "answer_per_piece_s": round(statistics.median(before), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000, help="files the command writes (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measure (median; default 3)")
    ns = parser.parse_args()
    r = _answer(ns.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        r.update(asyncio.run(_watch(Path(tmp), ns.files, ns.repeats)))
    print("| measure | median |\n|---|---:|")
    print(f"| a command writing {r['watch_files']} files in the folder | {r['watch_command_s']} s |")
    print(f"| the same command writing in the guest's /tmp, not watched (baseline) | {r['watch_command_tmp_s']} s |")
    print(f"| files reported written to the host (fewest of the runs) | {r['watch_reported']} |")
    print(f"| last report after the command ended | {r['watch_last_report_after_s']} s |")
    print(f"| streamed answer, {r['answer_pieces']} pieces, drawn at most every 100 ms | {r['answer_now_s']} s |")
    print(f"| the same, drawn whole per piece (before) | {r['answer_per_piece_s']} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
