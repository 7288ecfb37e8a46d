"""Stopping the helper processes Paddock starts (QEMU, virtiofsd, the egress gateway)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence


async def terminate(procs: Sequence[asyncio.subprocess.Process], grace_s: float = 3.0) -> None:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL whatever is left; always reaps them."""
    for p in procs:
        if p.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), grace_s)
    except TimeoutError:
        for p in procs:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
        await asyncio.gather(*(p.wait() for p in procs))
