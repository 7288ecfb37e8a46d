"""``paddock undo --folder DIR [--list | --to ID | --file PATH]``: put back what a turn changed."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from paddock.cli.out import err

KINDS = {"start": "session start", "turn": "turn", "before-undo": "undo"}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    undo = sub.add_parser(
        "undo",
        help="put back what the assistant changed in a folder",
        description="Put DIR back as it was before the last turn (or at a chosen restore point, or one file). "
        "Every undo first makes a restore point of its own, so an undo can be undone with --to.",
    )
    undo.add_argument("--folder", required=True, metavar="DIR", help="the folder to put back")
    which = undo.add_mutually_exclusive_group()
    which.add_argument("--list", action="store_true", help="list the restore points (time, turn, files touched)")
    which.add_argument("--to", type=int, metavar="ID", help="go back to restore point ID (see --list)")
    undo.add_argument("--file", metavar="PATH", help="put back only this file or folder (relative to DIR)")
    undo.set_defaults(handler=run)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


async def run(ns: argparse.Namespace) -> int:
    from paddock.core.text import shown
    from paddock.session.composer import NO_QUESTIONS, AnswerNo, SessionPlan, compose
    from paddock.session.runner import EntryPoint

    if ns.list and ns.file:
        err("--list shows every restore point; leave out --file")
        return 2
    session = await compose(Path(ns.folder), SessionPlan(EntryPoint.UNDO, AnswerNo(NO_QUESTIONS), warn=err))
    runner = session.runner
    outcome = "failed"
    try:
        if ns.list:
            points = runner.undo.list()
            if not points:
                print(f"There are no restore points for {runner.folder} yet.")
            for info in points:
                touched = (
                    f"{len(info.touched)} file(s) changed after it" if info.touched else "nothing changed after it"
                )
                names = ", ".join(shown(t) for t in info.touched[:5]) + (" …" if len(info.touched) > 5 else "")
                lost = f"; {info.unsaved} file(s) not kept" if info.unsaved else ""
                print(
                    f"{info.id:5}  {_when(info.time)}  {KINDS.get(info.kind, info.kind):13}  {shown(info.label)[:60]}"
                )
                print(f"       {touched}{lost}" + (f": {names}" if names else ""))
            outcome = "finished"
            return 0
        done = await runner.undo.undo(to=ns.to, file=ns.file)
        p = done.point
        print(f"Put {shown(ns.file) if ns.file else runner.folder} back as it was at restore point {p.id} "
              f"({KINDS.get(p.kind, p.kind)}, {_when(p.time)}): {len(done.removed)} removed, "
              f"{len(done.written)} put back.")  # fmt: skip
        before = runner.undo.last
        if before is not None:
            print(f"To undo this undo: paddock undo --folder {runner.folder} --to {before.point.id}")
        for path in done.skipped[:20]:
            print(f"  left as it is (too deep or unreadable to record): {shown(path)[:200]}", file=sys.stderr)
        if done.unlisted:
            print(f"  {done.unlisted:,} entries the restore point did not list (a folder of more than a million "
                  "entries) were left in place.", file=sys.stderr)  # fmt: skip
        if done.unkept:
            print(f"  {len(done.unkept)} file(s) this undo replaced or removed could not be kept first (the undo "
                  "budget is full), so undoing this undo cannot bring them back.", file=sys.stderr)  # fmt: skip
        for path, why in done.failed[:50]:
            print(f"  not put back: {shown(path)}: {why}", file=sys.stderr)
        outcome = "finished" if not done.failed else "failed"
        return 0 if not done.failed else 1
    finally:
        await session.close(outcome=outcome)
