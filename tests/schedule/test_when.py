"""Next run times come from ``dateutil.rrule`` now: the same times the hand-written stepping gave,
for every form of the grammar and any moment (naive or with an offset). The reference below is the
old code, kept here only to compare against.

Pure computation; no fakes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from paddock.schedule import parse_when
from paddock.schedule.when import When

FORMS = [
    "every hour",
    "every day 08:30",
    "every day 00:00",
    "every day 23:59",
    "every weekday 07:45",
    "every monday 09:00",
    "every sun 23:59",
    "every month on the 1st 06:00",
    "every month on the 28th 00:00",
    "every month on the 15th 12:00",
]


def _before(w: When, t: datetime) -> datetime:
    """The hand-written ``next_after`` this replaced."""
    if w.kind == "hour":
        return t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    candidate = t.replace(hour=w.hour, minute=w.minute, second=0, microsecond=0)
    if candidate <= t:
        candidate += timedelta(days=1)

    def matches(c: datetime) -> bool:
        if w.kind == "weekday":
            return c.weekday() < 5
        if w.kind == "week":
            return c.weekday() == w.weekday
        return c.day == w.day if w.kind == "month" else True

    while not matches(candidate):
        candidate += timedelta(days=1)
    return candidate


@settings(max_examples=400, deadline=None)
@given(
    when=st.sampled_from(FORMS),
    t=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    offset_min=st.one_of(st.none(), st.integers(-12 * 60, 14 * 60)),
)
def test_next_run_times_are_the_ones_they_were(when: str, t: datetime, offset_min: int | None) -> None:
    w = parse_when(when)
    if offset_min is not None:  # a schedule's creation time carries the offset it was made in
        t = t.replace(tzinfo=timezone(timedelta(minutes=offset_min)))
    ours, theirs = w.next_after(t), _before(w, t)
    assert ours == theirs and ours.tzinfo == theirs.tzinfo, (when, t)
    assert w.next_after(ours) == _before(w, ours)


def test_on_the_dot_is_not_after() -> None:
    w = parse_when("every day 08:30")
    at = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    assert w.next_after(at) == datetime(2026, 3, 3, 8, 30, tzinfo=UTC)
    assert w.next_after(at - timedelta(microseconds=1)) == at
