"""Keep the guest's clock on the host's after the host paused the guest.

A paused guest's clock stands still (under emulation its time-stamp counter stops with the
CPU), so after a pause between turns its time lags the host's by the pause: `date`, commit
times and build tools comparing file times (the shared folder's are the host's) would be off.
The emulated RTC keeps the host's wall clock through a pause, to the second. Before each
command the agent compares the two and, when they differ by more than ``SLACK_S``, steps its
clock to the RTC's (the Claim set it to the host's exactly; a step keeps it within a second).
"""

from __future__ import annotations

import time

from paddock_guest.config import log, read_small

RTC_EPOCH = "/sys/class/rtc/rtc0/since_epoch"
SLACK_S = 2.0


def rtc_seconds() -> int | None:
    """The RTC's time (whole seconds since the epoch), or None without an RTC."""
    try:
        return int(read_small(RTC_EPOCH))
    except (OSError, ValueError):
        return None


def catch_up() -> float:
    """Step the clock to the RTC's when it is off by more than SLACK_S; returns the step (s)."""
    rtc = rtc_seconds()
    if rtc is None:
        return 0.0
    now = time.time()
    # The RTC reads whole seconds: the host's time is in [rtc, rtc + 1).
    if rtc - SLACK_S <= now <= rtc + 1 + SLACK_S:
        return 0.0
    target = rtc + 0.5
    try:
        time.clock_settime(time.CLOCK_REALTIME, target)
    except OSError as exc:
        log(f"could not set the clock after a pause: {exc}")
        return 0.0
    log(f"clock stepped {target - now:+.1f} s to the host's (the guest was paused)")
    return target - now
