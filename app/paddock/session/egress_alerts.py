"""What the person is told when the gateway stops something on its own (no question to answer).

A tripwire (``paddock.egress.tripwires``): the guest sent out one of the session's decoy secrets;
the gateway refused it and closed the session's egress. The window says so in one sentence.
"""

from __future__ import annotations

from collections.abc import Callable

from paddock.egress import Decision

BAIT = {
    "aws-access-key-id": "a decoy AWS key",
    "aws-secret-access-key": "a decoy AWS key",
    "ssh-private-key": "a decoy SSH key",
    "netrc-password": "a decoy password",
    "git-credentials": "a decoy Git password",
    "github-token": "a decoy GitHub token",
}


def tripwire_sentence(d: Decision) -> str:
    """One sentence: what was stopped, where it was going, and what it means for the session."""
    what = BAIT.get(d.tripwire, "a decoy secret")
    where = f" to {d.host}" if d.host else ""
    return (f"Paddock stopped the assistant from sending {what}{where} and has cut this session off "
            "from the network: something in it was hunting for passwords.")  # fmt: skip


def on_tripwire(say: Callable[[str], None]) -> Callable[[Decision], None]:
    """A gateway decision listener that calls ``say`` once, the first time a tripwire fires."""
    fired = False

    def listener(d: Decision) -> None:
        nonlocal fired
        if d.tripwire and not d.closed and not fired:
            fired = True
            say(tripwire_sentence(d))

    return listener
