"""A loopback server that speaks OpenAI Chat Completions, scripted per test.

It stands in for a remote OpenAI-compatible endpoint (OpenAI, Azure OpenAI, vLLM, Ollama,
LM Studio: none can run here). It serves ``POST /v1/chat/completions``, streaming (server-sent
``data:`` chunks ending in ``[DONE]``, as the ``openai`` SDK expects with ``stream=True``) and
not, with text and tool calls. Streamed tool calls arrive the way real servers send them: the
id and name in a first delta, the JSON arguments split over several more, then the usage in a
last chunk with no choices. Each request takes the next scripted step (the same ``Reply`` steps
as ``messages_api``); every request body and its headers are kept, so a test can count them.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import ScriptedServer


class ChatCompletionsAPI(ScriptedServer):
    RETRY_STATUSES = (429, 503)

    @property
    def url(self) -> str:
        """The base URL, as OPENAI_BASE_URL or a policy's ``base_url`` names it."""
        return f"{self.root}/v1"

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length", "0"))
        raw = h.rfile.read(length) if length else b"{}"
        body = json.loads(raw or b"{}")
        with self._lock:  # every request counts, on any path
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in h.headers.items()})
        if h.command != "POST" or h.path.split("?")[0] != "/v1/chat/completions":
            self._send_json(h, 404, {"error": {"message": f"no route {h.path}", "type": "invalid_request_error"}})
            return
        reply = self._next(body)
        if reply.status != 200:
            self._send_json(h, reply.status, {"error": {"message": f"status {reply.status}", "type": "api_error"}})
            return
        chat_id = f"chatcmpl-{next(self._ids)}"
        calls = [(f"call_{next(self._ids)}", name, json.dumps(args)) for name, args in reply.tool_uses]
        finish = "tool_calls" if calls else "stop"
        usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
            if calls:
                message["tool_calls"] = [
                    {"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in calls
                ]
            self._send_json(h, 200, self._chunk(chat_id, body, "chat.completion", [
                {"index": 0, "message": message, "finish_reason": finish}], usage))  # fmt: skip
            return
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        for j, word in enumerate(reply.text.split(" ") if reply.text else []):
            deltas.append({"content": word if j == 0 else " " + word})
        for index, (call_id, name, args) in enumerate(calls):
            deltas.append({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                           "function": {"name": name, "arguments": ""}}]})  # fmt: skip
            for k in range(0, len(args), 7):  # arguments in pieces, as real servers stream them
                deltas.append({"tool_calls": [{"index": index, "function": {"arguments": args[k : k + 7]}}]})
        chunks = [
            self._chunk(chat_id, body, "chat.completion.chunk", [{"index": 0, "delta": d, "finish_reason": None}])
            for d in deltas
        ]
        chunks.append(
            self._chunk(chat_id, body, "chat.completion.chunk", [{"index": 0, "delta": {}, "finish_reason": finish}])
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(self._chunk(chat_id, body, "chat.completion.chunk", [], usage))
        payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        data = payload.encode()
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _chunk(
        chat_id: str, body: dict[str, Any], obj: str, choices: list[dict[str, Any]], usage: dict[str, int] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"id": chat_id, "object": obj, "created": 1, "model": body.get("model", "m"),
                               "choices": choices}  # fmt: skip
        if usage is not None:
            out["usage"] = usage
        return out

    def tool_messages(self) -> list[dict[str, Any]]:
        """Every role "tool" message the client sent in its last request, in order."""
        return [m for m in (self.requests[-1]["messages"] if self.requests else []) if m.get("role") == "tool"]
