"""The plumbing the scripted model-service fakes share: a threaded HTTP server on loopback that
hands each request to the fake, keeps every request body and its headers, hands out the scripted
steps in order and sums the time spent handling requests (for the per-turn overhead benchmark)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Reply:
    text: str = ""
    tool_uses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: int = 200  # non-200: an error reply of that status
    delay_s: float = 0.0


Step = Reply | Callable[[dict[str, Any]], Reply]


class ScriptedServer:
    RETRY_STATUSES: tuple[int, ...] = (429,)  # answered with "retry-after: 0", so SDK retries are quick

    def __init__(self, steps: Sequence[Step] | None = None, *, repeat_last: bool = False) -> None:
        self.steps: list[Step] = list(steps or [])
        self.repeat_last = repeat_last
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.handler_s = 0.0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                t0 = time.perf_counter()
                try:
                    fake._handle(self)
                finally:
                    with fake._lock:
                        fake.handler_s += time.perf_counter() - t0

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def __enter__(self) -> Self:
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

    def _handle(self, h: BaseHTTPRequestHandler) -> None:  # pragma: no cover - each fake has its own
        raise NotImplementedError

    def _send_json(self, h: BaseHTTPRequestHandler, status: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        if status in self.RETRY_STATUSES:
            h.send_header("retry-after", "0")
        h.end_headers()
        h.wfile.write(data)
