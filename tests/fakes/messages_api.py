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

import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    text: str = ""
    tool_uses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: int = 200  # non-200: an error reply of that status
    delay_s: float = 0.0


Step = Reply | Callable[[dict[str, Any]], Reply]


def text(t: str) -> Reply:
    return Reply(text=t)


def tool(name: str, **args: Any) -> Reply:
    return Reply(tool_uses=[(name, args)])


class MessagesAPI:
    def __init__(self, steps: Sequence[Step] | None = None, *, repeat_last: bool = False) -> None:
        self.steps: list[Step] = list(steps or [])
        self.repeat_last = repeat_last
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.handler_s = 0.0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                t0 = time.perf_counter()
                try:
                    api._handle(self)
                finally:
                    with api._lock:
                        api.handler_s += time.perf_counter() - t0

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> MessagesAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if not self.steps:
                return Reply(text="(the script has no more steps)")
            step = self.steps[0] if (self.repeat_last and len(self.steps) == 1) else self.steps.pop(0)
        return step(body) if callable(step) else step

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

    @staticmethod
    def _send_json(h: BaseHTTPRequestHandler, status: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        if status in (429, 529):
            h.send_header("retry-after", "0")
        h.end_headers()
        h.wfile.write(data)

    def tool_results(self) -> list[dict[str, Any]]:
        """Every tool_result block the client sent, in order (from the last request)."""
        if not self.requests:
            return []
        out: list[dict[str, Any]] = []
        for m in self.requests[-1]["messages"]:
            if m["role"] == "user" and isinstance(m["content"], list):
                out.extend(b for b in m["content"] if b.get("type") == "tool_result")
        return out
