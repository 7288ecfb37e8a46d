"""One run of a schedule: a headless session composed like every other (``paddock.session.composer``,
with nobody there to answer), so it has the same policy, trust, fresh sandbox, change summary and
audit trail as a session in the window::

    lock ─► compose (folder and model decided, recorded; listed) ─► boot ─► task ─► close ─► history
      │             └── denied: skipped, with the reason ───────────────────────────────────►│
      └── another run holds the lock: skipped, recorded ────────────────────────────────────►│
                                                                            notification ◄──┘

Ahead of its time (``due``: the timer fires ``WAKE_LEAD_S`` early, ``paddock schedule run --timer``):
the lock is taken and the session composed at once, its sandbox woken (``SessionPlan.wake_ahead``)
and left paused; at the due time the boot claims it and the task is sent, so the first command comes
as quickly as from the window's pool. The run's start, its time limit and its history are the due
time's. A run refused before its time is recorded at once; one stopped before its time stops its
woken sandbox (``Composed.close``).

Nobody is there to answer an egress question (``AnswerNo``): each is answered no, recorded as a
policy decision, and named in the run's result. A run that fails or passes its time limit says
why; it changes nothing for the next run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from paddock.core.errors import PaddockError
from paddock.core.notify import send as notify
from paddock.schedule.store import Run, Schedule, ScheduleStore
from paddock.schedule.when import parse_when
from paddock.session.composer import AnswerNo, Composed, SessionPlan, compose
from paddock.session.runner import EntryPoint, PolicyLoader
from paddock.undo.changes import Change

log = logging.getLogger(__name__)
Notifier = Callable[[str, str, bool], object]
Until = Callable[[datetime], Awaitable[None]]  # returns at the given (aware) time
ANSWER_KEPT = 2000
MINUTE_S = 60.0  # a minute of a run's time limit (a test of the limit shortens it, in its own process)


def _now() -> datetime:
    return datetime.now().astimezone()


def describe_changes(changes: list[Change]) -> str:
    if not changes:
        return "no files changed"
    counts = {k: sum(1 for c in changes if c.kind == k) for k in ("created", "changed", "deleted")}
    names = ", ".join(c.shown_path for c in changes[:3]) + (", …" if len(changes) > 3 else "")
    risky = sum(1 for c in changes if c.risk)
    warn = f"; ⚠ {risky} could run on your computer later" if risky else ""
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n) + f" ({names}){warn}"


NOBODY = "nobody was there to answer (a scheduled run): answered no"


async def until(due: datetime) -> None:
    """Return at ``due`` (aware), by the wall clock: a sleep (the loop's monotonic clock), and what
    is left of it after, if the wall clock was set back meanwhile (a few seconds at most)."""
    await asyncio.sleep(max(0.0, (due - _now()).total_seconds()))
    await asyncio.sleep(max(0.0, (due - _now()).total_seconds()))


async def ready_at(session: Composed, due: datetime | None, wait: Until = until) -> None:
    """Wait for the sandbox woken ahead (if this session has one: ``Composed.ahead``), then for
    ``due``: the boot that follows claims the woken sandbox. Nothing waits without a ``due``."""
    if due is None:
        return
    if session.ahead is not None:
        await session.ahead.wait()  # woken and paused (False: the boot wakes or boots one instead)
    await wait(due)


async def _session(
    schedule: Schedule, store: ScheduleStore, started: datetime, loader: PolicyLoader | None, *,
    due: datetime | None, wait: Until,
) -> Run:  # fmt: skip
    plan = SessionPlan(
        EntryPoint.SCHEDULE, AnswerNo(NOBODY), assistant=True, model=schedule.model or None, summary=True,
        new_conversation=True, conversations=store.folder_of(schedule.id) / "conversations", policy_loader=loader,
        wake_ahead=True,
    )  # fmt: skip
    try:
        session = await compose(Path(schedule.folder), plan)
    except PaddockError as exc:  # refused folder or model (recorded by the session), or no key
        return Run(started=started, finished=_now(), outcome="skipped", why=exc.message)
    outcome, why, answer = "failed", "", ""
    try:
        await ready_at(session, due, wait)
        await session.boot()
        assert session.agent is not None
        answer = await asyncio.wait_for(session.agent.send(schedule.task), schedule.timeout_min * MINUTE_S)
        outcome = "finished"
    except TimeoutError:
        outcome = "timed out"
        minutes = f"{schedule.timeout_min} minute" + ("s" if schedule.timeout_min > 1 else "")
        why = f"it did not finish within {minutes}, so it was stopped"
    except PaddockError as exc:
        why = exc.message
    finally:
        await session.close(outcome="timed-out" if outcome == "timed out" else "failed")
    changes = await session.changes()
    hosts = list(dict.fromkeys(q.host for q in session.questions))
    if hosts:
        why += ("; " if why else "") + "asked to reach " + ", ".join(hosts) + " (answered no: nobody was there)"
    return Run(
        started=started, finished=_now(), outcome=outcome, why=why, answer=answer[:ANSWER_KEPT],
        summary=describe_changes(changes), questions=hosts, session_id=session.runner.session_id,
        changes=[f"{c.kind} {c.shown_path}" for c in changes[:200]],
    )  # fmt: skip


def _notify(schedule: Schedule, run: Run, notifier: Notifier) -> None:
    title = f"Paddock: “{schedule.task[:60]}” {run.outcome}"
    body = run.result() + f"\n\nDetails: paddock schedule history {schedule.id}"
    notifier(title, body, not run.ok)


async def run_schedule(
    schedule_id: str,
    *,
    store: ScheduleStore | None = None,
    notifier: Notifier | None = None,
    policy_loader: PolicyLoader | None = None,
    timer: bool = False,
    due: datetime | None = None,
    wait: Until = until,
) -> Run:
    """Run a schedule now (the timer's service, ``paddock schedule run`` and the window all come here)
    and add the run to its history. Unknown ids raise ``PaddockError``. ``policy_loader`` stands in
    for the policy files (tests, embedding code), as for ``decide``. With ``due`` (aware, a few
    seconds away: ``When.due_soon``) the sandbox is woken now and the task sent at ``due``
    (``wait`` stands in for the clock in tests); the run is recorded as started then. ``timer``:
    started by the schedule's timer, ``WAKE_LEAD_S`` early; the due time is the next one if it is
    that near (else, a catch-up or a late start, the run starts now)."""
    store = store or ScheduleStore()
    schedule = store.get(schedule_id)
    if timer and due is None:
        soon = parse_when(schedule.when).due_soon(_now().replace(tzinfo=None))
        due = soon.astimezone() if soon is not None else None
    started = max(_now(), due) if due is not None else _now()
    with store.running(schedule.id) as mine:
        if mine:
            try:
                run = await _session(schedule, store, started, policy_loader, due=due, wait=wait)
            except PaddockError as exc:  # before the session began (a policy that cannot be read)
                run = Run(started=started, finished=_now(), outcome="failed", why=exc.message)
            except asyncio.CancelledError:
                store.record(schedule.id, Run(started=started, finished=_now(), outcome="failed", why="it was stopped"))
                raise
            except Exception as exc:  # recorded, then re-raised: the CLI's crash report has the detail
                why = f"something unexpected went wrong ({type(exc).__name__}: {exc})"
                store.record(schedule.id, Run(started=started, finished=_now(), outcome="failed", why=why))
                raise
        else:
            run = Run(started=started, finished=_now(), outcome="skipped",
                      why="the previous run of this schedule is still going")  # fmt: skip
    store.record(schedule.id, run)
    log.info("schedule %s: %s", schedule.id, run.line())
    _notify(schedule, run, notifier or (lambda t, b, u: notify(t, b, urgent=u)))
    return run
