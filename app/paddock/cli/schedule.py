"""``paddock schedule``: recurring tasks (add, list, history, remove, run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from paddock.cli.out import err


def _fmt_row(row: object) -> str:
    from paddock.schedule import ScheduleRow

    assert isinstance(row, ScheduleRow)
    s = row.schedule
    last = "running now" if row.running else (row.last.line() if row.last else "not run yet")
    return (
        f"{s.id}  {s.when}  (next {row.next_due:%a %Y-%m-%d %H:%M})\n"
        f"    folder: {s.folder}\n    task:   {s.task}\n    last:   {last}"
    )


async def schedule(ns: argparse.Namespace) -> int:
    from paddock.schedule import Schedules, run_schedule

    schedules = Schedules()
    cmd = ns.schedule_command
    if cmd == "add":
        added = schedules.add(Path(ns.folder), ns.when, ns.task, model=ns.model or "", timeout_min=ns.timeout)
        print(added.message)
    elif cmd == "list":
        rows = schedules.rows(Path(ns.folder) if ns.folder else None)
        print("\n".join(_fmt_row(r) for r in rows) if rows else "No schedules. Add one with `paddock schedule add`.")
        if rows and not schedules.systemd_live():
            from paddock.schedule import WINDOW_ONLY

            err(WINDOW_ONLY)
    elif cmd == "history":
        runs = schedules.history(ns.id)
        for run in runs:
            print(run.line())
            for change in run.changes[:20]:
                print(f"    {change}")
        if not runs:
            print("This schedule has not run yet.")
    elif cmd == "remove":
        removed = schedules.remove(ns.id)
        print(f"Schedule {removed.id} removed, with its timer.")
    else:
        run = await run_schedule(ns.id, timer=ns.timer)
        print(run.line())
        if run.answer and not ns.quiet:
            print(run.answer)
        return 0 if run.ok else 1
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sch = sub.add_parser("schedule", help="recurring tasks: the assistant works on a folder at set times")
    sch_sub = sch.add_subparsers(dest="schedule_command", required=True)
    add = sch_sub.add_parser(
        "add",
        help="add a recurring task",
        description='WHEN is one of: "every hour", "every day 08:30", "every monday 09:00", '
        '"every weekday 07:45", "every month on the 1st 06:00" (24-hour, local time).',
    )
    add.add_argument("--folder", required=True, metavar="DIR", help="the folder the assistant works on")
    add.add_argument("--when", required=True, metavar="WHEN", help='e.g. "every monday 09:00"')
    add.add_argument("--model", metavar="[ENDPOINT:]MODEL", help="the model to use (default: policy's default)")
    add.add_argument("--timeout", type=int, default=60, metavar="MIN", help="stop a run after MIN minutes (60)")
    add.add_argument("task", metavar="TASK", help="what the assistant should do each time")
    lst = sch_sub.add_parser("list", help="list schedules, when each runs next and its last result")
    lst.add_argument("--folder", metavar="DIR", help="only this folder's schedules")
    for name, text in (
        ("history", "every run of a schedule: when, outcome, what changed, why it failed"),
        ("remove", "remove a schedule and its timer"),
        ("run", "run a schedule now (what its timer runs)"),
    ):
        cmd = sch_sub.add_parser(name, help=text)
        cmd.add_argument("id", metavar="ID")
        if name == "run":
            cmd.add_argument("--quiet", "-q", action="store_true", help="print only the result line")
            cmd.add_argument("--timer", action="store_true",
                             help="as the schedule's timer starts it, seconds early: wake the sandbox now, "
                                  "send the task at the time it is due")  # fmt: skip
    sch.set_defaults(handler=schedule)
