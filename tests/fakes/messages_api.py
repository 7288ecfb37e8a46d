"""A loopback server that speaks the Anthropic Messages API, scripted per test.

This is the one fake in the suite, standing in for the model service (which
cannot run here). It serves ``POST /v1/messages`` both streaming (server-sent
events, as the SDK's ``messages.stream`` expects) and not, with text and
tool_use blocks. Each request takes the next scripted step; a step may also be
an HTTP error, to exercise the SDK's retries. Every request body is kept, and
the time spent inside the handler is summed (for the per-turn overhead
benchmark).
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import Reply, ScriptedServer, Step

__all__ = ["MessagesAPI", "Reply", "Step", "text", "tool"]


def text(t: str) -> Reply:
    return Reply(text=t)


def tool(name: str, **args: Any) -> Reply:
    return Reply(tool_uses=[(name, args)])


class MessagesAPI(ScriptedServer):
    RETRY_STATUSES = (429, 529)

    @property
    def url(self) -> str:
        return self.root

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        if h.path.split("?")[0] != "/v1/messages":
            self._send_json(h, 404, {"type": "error", "error": {"type": "not_found_error", "message": h.path}})
            return
        length = int(h.headers.get("content-length", "0"))
        body = json.loads(h.rfile.read(length) or b"{}")
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in h.headers.items()})
        reply = self._next(body)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.status != 200:
            kind = {401: "authentication_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(
                reply.status, "api_error"
            )
            self._send_json(h, reply.status, {"type": "error", "error": {"type": kind, "message": kind}})
            return
        msg_id = f"msg_{next(self._ids)}"
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for name, args in reply.tool_uses:
            content.append({"type": "tool_use", "id": f"toolu_{next(self._ids)}", "name": name, "input": args})
        stop = "tool_use" if reply.tool_uses else "end_turn"
        usage = {"input_tokens": 100, "output_tokens": 20}
        message = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "m"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            self._send_json(h, 200, message)
            return
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        **message,
                        "content": [],
                        "stop_reason": None,
                        "usage": {"input_tokens": 100, "output_tokens": 1},
                    },
                },
            ),
        ]
        for i, block in enumerate(content):
            if block["type"] == "text":
                events.append(
                    (
                        "content_block_start",
                        {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}},
                    )
                )
                words = block["text"].split(" ")
                for j, w in enumerate(words):
                    piece = w if j == 0 else " " + w
                    events.append(
                        (
                            "content_block_delta",
                            {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": piece}},
                        )
                    )
            else:
                events.append(
                    (
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": i,
                            "content_block": {
                                "type": "tool_use",
                                "id": block["id"],
                                "name": block["name"],
                                "input": {},
                            },
                        },
                    )
                )
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
                        },
                    )
                )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 20},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        payload = "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events).encode()
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("content-length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def tool_results(self) -> list[dict[str, Any]]:
        """Every tool_result block the client sent, in order (from the last request)."""
        if not self.requests:
            return []
        out: list[dict[str, Any]] = []
        for m in self.requests[-1]["messages"]:
            if m["role"] == "user" and isinstance(m["content"], list):
                out.extend(b for b in m["content"] if b.get("type") == "tool_result")
        return out
