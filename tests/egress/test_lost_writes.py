"""No write is lost when two processes write one file (issue 30).

Before #30: "revoke all session tokens" rewrote the revocation file without a lock while every
session's end rewrote it too, so a revocation could be undone. (The decisions the gateway once
wrote to a file are pushed over its channel now: ``test_channel.py``.)

Real: the token authority's files, two processes. No fakes.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

from paddock.egress.tokens import TokenAuthority, TokenError


def _session_ends(folder: str, stop: multiprocessing.synchronize.Event) -> None:
    tokens = TokenAuthority(Path(folder))
    i = 0
    while not stop.is_set():  # sessions ending one after another, each revoking its own token
        tokens.revoke(f"t{i}")
        i += 1


def test_revoke_all_is_never_undone_by_a_session_ending(tmp_path: Path) -> None:
    folder = tmp_path / "tokens"
    tokens = TokenAuthority(folder)
    tokens.revoke("first")
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    other = ctx.Process(target=_session_ends, args=(str(folder), stop))
    other.start()
    try:
        time.sleep(1.0)  # the other process is started and revoking
        survived = 0
        for _ in range(60):
            token = tokens.mint("vm1", [])
            tokens.revoke_all()
            time.sleep(0.01)  # the session ends go on meanwhile
            try:
                tokens.check(token.value, vm_id="vm1")
                survived += 1
            except TokenError:
                pass
    finally:
        stop.set()
        other.join(30)
    assert survived == 0, f"{survived} of 60 revocations were undone by a session's end"
    assert "first" in json.loads((folder / "revoked.json").read_text())["ids"]
