"""Per-turn host overhead of the agent loop: the time a turn spends neither in the
model server (the loopback Messages API server, handler time measured server-side)
nor in the guest (tool calls, measured around each call)."""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.fakes.messages_api import MessagesAPI, text, tool

from paddock.assistant.loop import AssistantSession, ConversationStore
from paddock.llm import AnthropicProvider
from paddock.sandbox import Sandbox


def measure(turns: int = 30) -> dict[str, Any]:
    steps = [tool("run_command", command="true") for _ in range(turns - 1)] + [text("done")]
    with tempfile.TemporaryDirectory(prefix="paddock-bench-") as tmp, MessagesAPI(steps) as api:
        os.environ["ANTHROPIC_BASE_URL"] = api.url

        async def run() -> tuple[float, AssistantSession]:
            provider = AnthropicProvider(f"bench-{secrets.token_hex(8)}")
            try:
                async with Sandbox.open(Path(tmp)) as sandbox:
                    store = ConversationStore(Path(tmp), root=Path(tmp) / ".bench-store")
                    session = AssistantSession(sandbox, provider, store)
                    t0 = time.perf_counter()
                    await session.send("benchmark")
                    return time.perf_counter() - t0, session
            finally:  # on this loop (a session's end does it in the product)
                await provider.close()

        wall, session = asyncio.run(run())
        per_turn = [t.wall_s - t.tools_s for t in session.timings]
        server_per_turn = api.handler_s / max(1, len(api.requests))
        overheads = [max(0.0, p - server_per_turn) for p in per_turn]
        return {
            "turn_overhead_ms": round(statistics.median(overheads) * 1000, 2),
            "turn_wall_ms": round(statistics.median(t.wall_s for t in session.timings) * 1000, 2),
            "turn_tools_ms": round(statistics.median(t.tools_s for t in session.timings) * 1000, 2),
            "turn_model_server_ms": round(server_per_turn * 1000, 2),
            "turns": len(session.timings),
            "wall_s": round(wall, 2),
        }
