"""A command's output cannot fill the host's memory (#17, class 7): the host keeps a bounded
start and end of each stream and says what it left out.

Real: the VM and the guest agent stream 20 MB; ``tracemalloc`` measures the host's peak."""

from __future__ import annotations

import tracemalloc

import pytest

from paddock.assistant.tools import Bounded, ToolBox
from tests.conftest import Booted

pytestmark = pytest.mark.vm
NOISE_MB = 20


def test_a_noisy_command_is_kept_bounded_on_the_host(booted: Booted) -> None:
    box = ToolBox(booted.sandbox)
    command = f"head -c {NOISE_MB * 1024 * 1024} /dev/zero | tr '\\0' a; echo; echo the-end"
    tracemalloc.start()
    try:
        outcome = booted.engine.run(box.call("run_command", {"command": command}), timeout=300)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not outcome.is_error, outcome.content[-500:]
    assert "bytes of output left out" in outcome.detail and "the-end" in outcome.detail
    assert len(outcome.detail) < 2 * Bounded.LIMIT
    assert peak < 8 * 1024 * 1024, f"the host held {peak / 1e6:.0f} MB for {NOISE_MB} MB of output"
