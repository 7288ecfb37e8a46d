"""What the engine loop was waiting on when a test ran out of time.

pytest-timeout prints every thread's stack, but a hang on the engine loop shows there only as
the loop idling in ``select``: the coroutine that waits forever is not a thread. When a test
times out, the fixtures add a report section ("engine tasks at the timeout") with every task
still on the loop and the chain of awaits it is stuck in, innermost last.
"""

from __future__ import annotations

import asyncio
from types import CoroutineType, FrameType
from typing import Any


def _frame(frame: FrameType | None) -> str | None:
    if frame is None:
        return None
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def await_chain(coro: Any, limit: int = 40) -> list[str]:
    """The frames a coroutine is suspended in, outermost first."""
    lines: list[str] = []
    for _ in range(limit):
        if coro is None:
            break
        if isinstance(coro, CoroutineType) or hasattr(coro, "cr_frame"):
            frame, nxt = coro.cr_frame, coro.cr_await
        elif hasattr(coro, "ag_frame"):  # an async generator
            frame, nxt = coro.ag_frame, coro.ag_await
        elif hasattr(coro, "gi_frame"):  # a generator (a future's __await__)
            frame, nxt = coro.gi_frame, coro.gi_yieldfrom
        else:  # a future's C iterator, or something else awaited: the task says what it waits on
            break
        where = _frame(frame)
        if where is not None:
            lines.append(where)
        coro = nxt
    return lines


def describe(loop: asyncio.AbstractEventLoop) -> str:
    """Every task still on ``loop`` and where it waits (read from this thread: a loop that hangs
    is idle, so its tasks do not change under us; a set that does is read again)."""
    for _ in range(5):
        try:
            tasks = list(asyncio.all_tasks(loop))
            break
        except RuntimeError:  # "Set changed size during iteration": the loop is not idle
            continue
    else:
        return "(the loop's tasks changed while being read)"
    out = []
    for task in sorted(tasks, key=lambda t: t.get_name()):
        out.append(f"task {task.get_name()!r}:")
        out += [f"    {line}" for line in await_chain(task.get_coro())]
        waiter = getattr(task, "_fut_waiter", None)  # the future the task is suspended on
        if waiter is not None:
            out.append(f"    waits on {waiter!r:.400}")
    return "\n".join(out) or "(no task on the loop)"
