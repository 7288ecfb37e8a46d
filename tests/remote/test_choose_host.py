"""Choosing among sandbox hosts against the real sshd. The "broken host" is the same server with
its Paddock command replaced by ``true`` (answers nothing, exit 0), as a host whose package is
broken would. No fake."""

from __future__ import annotations

import asyncio

from paddock.remote import least_loaded
from tests.remote.conftest import SshHost


def test_a_host_that_answers_nothing_is_not_preferred(test_host: SshHost) -> None:
    broken = test_host.host(name="broken", command="true")
    good = test_host.host(name="good")
    keys = {"broken": test_host.private_key, "good": test_host.private_key}
    chosen = asyncio.run(least_loaded([broken, good], keys))
    assert chosen.name == "good"
