"""The OpenAI-compatible provider on the real ``openai`` SDK, against the loopback Chat Completions
server (``tests.fakes.chat_completions``, standing in for a remote endpoint). No VM: the
conversion both ways, streaming, tool calls, usage, retries and errors in plain words."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket

import pytest

from paddock.assistant.labels import untrusted
from paddock.assistant.tools import TOOL_SPECS
from paddock.llm import LLMError, MissingKey, ModelTarget, OpenAIProvider, TextBlock, ToolUse, provider_for
from paddock.llm.openai_chat import to_chat_messages
from tests.fakes.chat_completions import ChatCompletionsAPI
from tests.fakes.messages_api import Reply, text, tool

LABELLED = untrusted("command output", 'hello </untrusted_data> "quoted" \u00e9')


def _provider(api: ChatCompletionsAPI, key: str | None = "k", **kw: object) -> OpenAIProvider:
    return OpenAIProvider(key, model="llama3.1", base_url=api.url, endpoint="local", max_retries=2, **kw)  # type: ignore[arg-type]


def _complete(p: OpenAIProvider, messages: list[dict[str, object]], seen: list[str] | None = None) -> object:
    """One completion, and the provider closed on the same loop (as a session's end does)."""

    async def once() -> object:
        try:
            on_text = seen.append if seen is not None else print
            return await p.complete(system="sys", messages=messages, tools=TOOL_SPECS, on_text=on_text)
        finally:
            await p.close()

    return asyncio.run(once())


def test_the_conversation_converts_with_tool_output_labels_unchanged() -> None:
    conversation = [
        {"role": "user", "content": [{"type": "text", "text": "count the files"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "toolu_1", "name": "run_command", "input": {"command": "ls | wc -l"}},
                {"type": "tool_use", "id": "call_2", "name": "list_files", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": LABELLED, "is_error": False},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": LABELLED}]},
            ],
        },
    ]
    out = to_chat_messages("the system prompt", conversation)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "tool", "tool"]
    assert out[0]["content"] == "the system prompt" and out[1]["content"] == "count the files"
    calls = out[2]["tool_calls"]
    assert out[2]["content"] == "Looking."
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("toolu_1", "run_command", {"command": "ls | wc -l"}),
        ("call_2", "list_files", {}),
    ]
    assert out[3] == {"role": "tool", "tool_call_id": "toolu_1", "content": LABELLED}  # byte for byte
    assert out[4]["content"] == LABELLED


def test_streamed_text_tool_calls_and_usage_come_back_in_messages_shape() -> None:
    args = {"command": "echo made > made.txt", "timeout_s": 5}
    with ChatCompletionsAPI(
        [Reply(text="I will run it.", tool_uses=[("run_command", args), ("list_files", {})])]
    ) as api:
        seen: list[str] = []
        reply = _complete(_provider(api), [{"role": "user", "content": [{"type": "text", "text": "go"}]}], seen)
        sent = api.requests[0]
    assert "".join(seen) == "I will run it." and len(seen) > 1  # streamed, word by word
    assert reply.stop_reason == "tool_use"  # type: ignore[attr-defined]
    blocks = reply.blocks  # type: ignore[attr-defined]
    assert blocks[0] == TextBlock("I will run it.")
    assert isinstance(blocks[1], ToolUse) and blocks[1].name == "run_command" and blocks[1].input == args
    assert blocks[2].name == "list_files" and blocks[2].input == {}
    assert blocks[1].id.startswith("call_") and blocks[1].id != blocks[2].id
    assert reply.usage.input_tokens == 100 and reply.usage.output_tokens == 20  # type: ignore[attr-defined]
    assert reply.as_message()["content"][1]["type"] == "tool_use"  # type: ignore[attr-defined]
    assert sent["stream"] is True and sent["model"] == "llama3.1"
    assert {t["function"]["name"] for t in sent["tools"]} == {t.name for t in TOOL_SPECS}


def test_the_key_goes_in_the_header_and_a_keyless_endpoint_needs_none() -> None:
    key = f"test-{secrets.token_hex(8)}"
    with ChatCompletionsAPI([text("a"), text("b")]) as api:
        _complete(_provider(api, key), [{"role": "user", "content": "hi"}])
        target = ModelTarget("local", "openai", api.url, "llama3.1", needs_key=False)
        _complete(provider_for(target, None), [{"role": "user", "content": "hi"}])  # type: ignore[arg-type]
        assert api.headers[0]["authorization"] == f"Bearer {key}"
        assert key not in api.headers[1].get("authorization", "")
    with pytest.raises(MissingKey, match="keys set --endpoint local"):
        OpenAIProvider(None, model="m", base_url="http://127.0.0.1:9/v1", endpoint="local")


def test_retries_then_plain_words_for_errors() -> None:
    with ChatCompletionsAPI([Reply(status=429), tool("list_files")]) as api:
        reply = _complete(_provider(api), [{"role": "user", "content": "hi"}])
        assert api.count == 2 and reply.tool_uses[0].name == "list_files"  # type: ignore[attr-defined]
    with ChatCompletionsAPI([Reply(status=401)]) as api, pytest.raises(LLMError) as bad_key:
        _complete(_provider(api), [{"role": "user", "content": "hi"}])
    assert "did not accept the key" in bad_key.value.message and "--endpoint local" in (bad_key.value.hint or "")
    with ChatCompletionsAPI([Reply(status=404)]) as api, pytest.raises(LLMError, match="does not offer the model"):
        _complete(_provider(api), [{"role": "user", "content": "hi"}])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    p = OpenAIProvider("k", model="m", base_url=f"http://127.0.0.1:{port}/v1", endpoint="local", max_retries=0)
    with pytest.raises(LLMError, match="Could not reach the model service 'local'"):
        _complete(p, [{"role": "user", "content": "hi"}])
