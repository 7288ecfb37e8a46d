"""The model client: the Messages API through the official ``anthropic`` SDK.

The session sees only ``ModelProvider.complete``: a system prompt, the
conversation (Messages API shape, which is also what is persisted), the tool
specs, and a callback for streamed text. It gets back a ``ModelReply`` of
typed blocks and the turn's token usage. The second provider, for
OpenAI-compatible Chat Completions endpoints, is ``openai_chat.OpenAIProvider``;
``provider_for`` makes the right one for a ``ModelTarget`` the session layer
resolved (policy checked, key from the keychain): this layer reads neither.

With no ``base_url`` the SDK honours ``ANTHROPIC_BASE_URL`` itself. Retries with
backoff on 429, 5xx and "overloaded" are the SDK's (``max_retries``); what is
left after them becomes an ``LLMError`` in plain words.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from paddock.core.logs import redact
from paddock.llm.errors import LLMError as LLMError
from paddock.llm.errors import MissingKey, plain_error

DEFAULT_MODEL = os.environ.get("PADDOCK_MODEL", "claude-sonnet-5-5")
MAX_TOKENS = 8192


@dataclass(frozen=True)
class ModelTarget:
    """Where a session's model requests go, already allowed by policy."""

    endpoint: str  # the policy's name for it (``anthropic``, ``openai``, ``local``, ...)
    kind: Literal["anthropic", "openai"]
    base_url: str
    model: str
    needs_key: bool = True

    @property
    def label(self) -> str:
        return f"{self.endpoint}:{self.model}"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class TextBlock:
    text: str


@dataclass(frozen=True)
class ToolUse:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ModelReply:
    blocks: list[TextBlock | ToolUse]
    stop_reason: str
    usage: Usage = field(default_factory=Usage)

    @property
    def tool_uses(self) -> list[ToolUse]:
        return [b for b in self.blocks if isinstance(b, ToolUse)]

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.blocks if isinstance(b, TextBlock))

    def as_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation."""
        content: list[dict[str, Any]] = []
        for b in self.blocks:
            if isinstance(b, TextBlock):
                content.append({"type": "text", "text": b.text})
            else:
                content.append({"type": "tool_use", "id": b.id, "name": b.name, "input": b.input})
        return {"role": "assistant", "content": content}


class ModelProvider(Protocol):
    async def complete(
        self,
        *,
        system: str,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[ToolSpec],
        on_text: Callable[[str], None],
    ) -> ModelReply: ...

    async def close(self) -> None:
        """Close the SDK's HTTP client (its connections) on the loop that used it. The session's
        end does it: an SDK client left to the garbage collector closes itself on whatever loop
        runs then, which fails once its own loop has ended ("Event loop is closed")."""
        ...


NO_KEY = "no-key"  # what a local server that needs no key is sent (the SDKs insist on some key)


def missing_key(endpoint: str, env: str) -> MissingKey:
    flag = "" if endpoint == "anthropic" else f" --endpoint {endpoint}"
    return MissingKey(
        f"No key is set up for the model endpoint {endpoint!r}.",
        hint=f"Store one with `paddock keys set{flag}`, or set {env} for headless use.",
    )


class AnthropicProvider:
    def __init__(
        self,
        api_key: str | None,
        *,
        model: str = DEFAULT_MODEL,
        max_retries: int = 4,
        base_url: str | None = None,
        endpoint: str = "anthropic",
    ) -> None:
        if not api_key:
            raise missing_key(endpoint, "ANTHROPIC_API_KEY")
        redact(api_key)  # never in a log
        self.model = model
        self.endpoint = endpoint
        import anthropic  # here, not at the top: every command would pay ~0.8 s to load it

        self._client = anthropic.AsyncAnthropic(api_key=api_key, max_retries=max_retries, base_url=base_url)

    async def complete(
        self,
        *,
        system: str,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[ToolSpec],
        on_text: Callable[[str], None],
    ) -> ModelReply:
        import anthropic  # already loaded by __init__

        try:
            async with self._client.messages.stream(
                model=self.model,
                max_tokens=MAX_TOKENS,
                system=system,
                messages=list(messages),  # type: ignore[arg-type]
                tools=[{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in tools],
            ) as stream:
                async for event in stream:
                    if event.type == "text":
                        on_text(event.text)
                final = await stream.get_final_message()
        except anthropic.APIError as exc:
            raise plain_error(
                anthropic, exc, endpoint=self.endpoint, base_url=self._client.base_url, model=self.model
            ) from exc
        blocks: list[TextBlock | ToolUse] = []
        for block in final.content:
            if block.type == "text":
                blocks.append(TextBlock(block.text))
            elif block.type == "tool_use":
                blocks.append(ToolUse(block.id, block.name, dict(block.input)))
        usage = Usage(final.usage.input_tokens, final.usage.output_tokens)
        return ModelReply(blocks, str(final.stop_reason or "end_turn"), usage)

    async def close(self) -> None:
        await self._client.close()
