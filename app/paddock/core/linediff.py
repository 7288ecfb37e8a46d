"""A unified diff of two texts the guest wrote, bounded in time as well as in size.

``difflib`` is quadratic or worse on some inputs: a 12,000-line file whose lines were moved
(every other line to the front, reversed) took 22–25 s on the host. Here the common start and end
are set aside first (linear), the matcher's loop runs against a deadline, and when the deadline
passes the differing middle is shown as one block (what was there, then what is there now), so
the answer always comes within ``seconds`` plus the time to write at most ``max_lines`` lines.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Iterator, Sequence

SECONDS = 1.0
MAX_LINES = 400


class _TooSlow(Exception):
    pass


class _Bounded(difflib.SequenceMatcher[str]):
    """``SequenceMatcher`` whose matching loop (``get_matching_blocks``, as in CPython) stops at a deadline."""

    def __init__(self, a: Sequence[str], b: Sequence[str], deadline: float) -> None:
        super().__init__(None, a, b)
        self.deadline = deadline
        self.lengths = (len(a), len(b))
        self.blocks: list[difflib.Match] | None = None

    def get_matching_blocks(self) -> list[difflib.Match]:
        if self.blocks is not None:
            return self.blocks
        la, lb = self.lengths
        queue = [(0, la, 0, lb)]
        found: list[tuple[int, int, int]] = []
        while queue:
            if time.monotonic() > self.deadline:
                raise _TooSlow
            alo, ahi, blo, bhi = queue.pop()
            i, j, k = self.find_longest_match(alo, ahi, blo, bhi)
            if k:
                found.append((i, j, k))
                if alo < i and blo < j:
                    queue.append((alo, i, blo, j))
                if i + k < ahi and j + k < bhi:
                    queue.append((i + k, ahi, j + k, bhi))
        found.sort()
        merged: list[tuple[int, int, int]] = []
        for i, j, k in found:
            if merged and merged[-1][0] + merged[-1][2] == i and merged[-1][1] + merged[-1][2] == j:
                merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + k)
            else:
                merged.append((i, j, k))
        merged.append((la, lb, 0))
        self.blocks = [difflib.Match(*m) for m in merged]
        return self.blocks


def unified(
    before: Sequence[str],
    after: Sequence[str],
    labels: tuple[str, str] = ("before", "now"),
    *,
    context: int = 2,
    seconds: float = SECONDS,
    max_lines: int = MAX_LINES,
) -> list[str]:
    """The lines of a unified diff (at most ``max_lines``, then a line saying how many more)."""
    start = 0
    while start < len(before) and start < len(after) and before[start] == after[start]:
        start += 1
    end = 0
    while end < len(before) - start and end < len(after) - start and before[-1 - end] == after[-1 - end]:
        end += 1
    if start == len(before) == len(after):
        return []
    lo = max(0, start - context)
    a, b = before[lo : len(before) - end + min(end, context)], after[lo : len(after) - end + min(end, context)]
    try:
        body = list(_hunks(_Bounded(a, b, time.monotonic() + seconds), a, b, lo, context))
    except _TooSlow:
        body = list(_one_block(a, b, lo))
    lines = [f"--- {labels[0]}", f"+++ {labels[1]}", *body[: max_lines + 1]]
    if len(lines) > max_lines:
        more = len(body) + 2 - max_lines
        lines = [*lines[:max_lines], f"… and {more:,} more lines"]
    return lines


def _range(start: int, length: int) -> str:
    return f"{start + 1 if length else start},{length}" if length != 1 else str(start + 1)


def _hunks(m: _Bounded, a: Sequence[str], b: Sequence[str], lo: int, n: int) -> Iterator[str]:
    for group in m.get_grouped_opcodes(n):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        yield f"@@ -{_range(lo + i1, i2 - i1)} +{_range(lo + j1, j2 - j1)} @@"
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                yield from (" " + line for line in a[a1:a2])
                continue
            if tag in ("replace", "delete"):
                yield from ("-" + line for line in a[a1:a2])
            if tag in ("replace", "insert"):
                yield from ("+" + line for line in b[b1:b2])


def _one_block(a: Sequence[str], b: Sequence[str], lo: int) -> Iterator[str]:
    """Too many moves to match in time: the whole differing part, as it was and as it is."""
    yield f"@@ -{_range(lo, len(a))} +{_range(lo, len(b))} @@ (too many changes to match line by line)"
    yield from ("-" + line for line in a)
    yield from ("+" + line for line in b)
