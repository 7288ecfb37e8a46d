"""The second provider: OpenAI-compatible Chat Completions through the official ``openai`` SDK
(OpenAI, Azure OpenAI's v1 API, vLLM, Ollama, LM Studio, ...).

The conversation stays in Messages API shape (what is persisted and what the loop knows);
this module converts it on the way out and the reply on the way back:

    Messages API                               Chat Completions
    system prompt                         ->   {"role": "system"}
    user text blocks                      ->   {"role": "user", "content": text}
    assistant text + tool_use blocks      <->  {"role": "assistant", "content", "tool_calls": [function ...]}
    user tool_result blocks               ->   one {"role": "tool", "tool_call_id"} message each

Tool output is passed through byte for byte, so its ``untrusted_data`` labels reach the model
exactly as they do on the Messages API. Retries with backoff (429, 5xx) are the SDK's
``max_retries``; what is left becomes an ``LLMError`` in plain words.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from paddock.core.logs import redact
from paddock.llm.client import NO_KEY, ModelReply, TextBlock, ToolSpec, ToolUse, Usage, missing_key
from paddock.llm.errors import plain_error

log = logging.getLogger(__name__)
STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use", "length": "max_tokens"}


def to_chat_messages(system: str, messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation (Messages API shape) as Chat Completions messages."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for m in messages:
        content = m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        if m.get("role") == "assistant":
            text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
            calls = [
                {
                    "id": b["id"],
                    "type": "function",
                    "function": {"name": b["name"], "arguments": json.dumps(b.get("input") or {})},
                }
                for b in blocks
                if b.get("type") == "tool_use"
            ]
            msg: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                msg["tool_calls"] = calls
            out.append(msg)
            continue
        for b in blocks:  # the tool results first: they must follow the assistant's calls directly
            if b.get("type") == "tool_result":
                out.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": _result_text(b)})
        text = "\n\n".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        if text:
            out.append({"role": "user", "content": text})
    return out


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content", "")
    if isinstance(content, str):
        return content
    return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))


def to_chat_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}
        for t in tools
    ]


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class ReplyBuilder:
    """Streamed chunks -> one ``ModelReply`` (text, tool calls by index, usage, stop reason)."""

    text: list[str] = field(default_factory=list)
    calls: dict[int, _Call] = field(default_factory=dict)
    finish: str | None = None
    usage: Usage = field(default_factory=Usage)

    def add(self, chunk: Any, on_text: Callable[[str], None]) -> None:
        if chunk.usage is not None:
            self.usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
        for choice in chunk.choices or []:
            delta = choice.delta
            if delta is not None and delta.content:
                self.text.append(delta.content)
                on_text(delta.content)
            for tc in (delta.tool_calls if delta is not None else None) or []:
                call = self.calls.setdefault(tc.index, _Call())
                call.id = call.id or (tc.id or "")
                if tc.function is not None:
                    call.name = call.name or (tc.function.name or "")
                    if tc.function.arguments:
                        call.arguments.append(tc.function.arguments)
            if choice.finish_reason:
                self.finish = choice.finish_reason

    def reply(self) -> ModelReply:
        blocks: list[TextBlock | ToolUse] = []
        text = "".join(self.text)
        if text:
            blocks.append(TextBlock(text))
        for _, call in sorted(self.calls.items()):
            blocks.append(ToolUse(_call_id(call.id), call.name, _arguments("".join(call.arguments), call.name)))
        stop = STOP_REASONS.get(self.finish or "stop", self.finish or "end_turn")
        if any(isinstance(b, ToolUse) for b in blocks):
            stop = "tool_use"
        return ModelReply(blocks, stop, self.usage)


def _call_id(raw: str) -> str:
    """The id as the Messages API would accept it too (a conversation may change provider later)."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", raw)[:64]
    return clean or f"call_{secrets.token_hex(8)}"


def _arguments(raw: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        log.debug("model sent arguments for %s that are not JSON", name)
        return {}  # the tool then reports what is missing, to the model
    return value if isinstance(value, dict) else {}


class OpenAIProvider:
    def __init__(
        self,
        api_key: str | None,
        *,
        model: str,
        base_url: str | None = None,
        endpoint: str = "openai",
        needs_key: bool = True,
        max_retries: int = 4,
    ) -> None:
        if needs_key and not api_key:
            raise missing_key(endpoint, "OPENAI_API_KEY")
        if api_key:
            redact(api_key)  # never in a log
        self.model = model
        self.endpoint = endpoint
        import openai  # here, not at the top: loaded only when a provider is made

        self._client = openai.AsyncOpenAI(
            api_key=api_key if needs_key and api_key else NO_KEY, base_url=base_url, max_retries=max_retries
        )

    async def complete(
        self,
        *,
        system: str,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[ToolSpec],
        on_text: Callable[[str], None],
    ) -> ModelReply:
        import openai  # already loaded by __init__

        builder = ReplyBuilder()
        try:
            stream = await self._client.chat.completions.create(  # type: ignore[call-overload]
                model=self.model,
                messages=to_chat_messages(system, messages),
                tools=to_chat_tools(tools),
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                builder.add(chunk, on_text)
        except openai.APIError as exc:
            base_url = self._client.base_url
            raise plain_error(openai, exc, endpoint=self.endpoint, base_url=base_url, model=self.model) from exc
        return builder.reply()

    async def close(self) -> None:
        await self._client.close()
