"""Waiting for something to happen instead of sleeping a fixed time.

A fixed sleep is either too short on a loaded machine (a flaky test) or too long everywhere
(a slow suite). Wait for the event itself: an ``asyncio.Event`` a listener sets, a file the
guest writes, a state the product reports; where only polling can see it, poll it here, with a
deadline and a message that says what never happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], *, timeout: float = 30.0, every: float = 0.05, what: str = "") -> T:
    """Poll ``predicate`` until it returns something true (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate!r}")
        time.sleep(every)


async def eventually(
    predicate: Callable[[], Awaitable[T]], *, within: float = 30.0, every: float = 0.05, what: str = ""
) -> T:
    """``wait_until`` on the event loop: await ``predicate()`` until it gives something true
    (fails after ``within`` seconds)."""
    deadline = time.monotonic() + within
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what or predicate!r}")
        await asyncio.sleep(every)
