"""The gateway's header and authority rules, as pure functions (no gateway, no VM)."""

from __future__ import annotations

import json

import pytest

from paddock.egress.profiles import request_problem
from paddock.egress.rules import authority_matches, forwardable

GRANT = {"id": "api", "forward_headers": ["anthropic-beta"]}


@pytest.mark.parametrize(
    "authority",
    ["api.example.com", "API.example.com", "api.example.com:443", " api.example.com "],
)
def test_the_granted_authority_matches(authority: str) -> None:
    assert authority_matches(authority, "api.example.com", 443, "https")


@pytest.mark.parametrize(
    "authority",
    [
        "api.example.com:443@evil.example",
        "user@api.example.com",
        "evil.example",
        "api.example.com.evil.example",
        "api.example.com:8443",
        "api.example.com:",
        "api.example.com:443:443",
        "api.example.com/x",
        "api.example.com evil.example",
        "[::1]",
        "127.0.0.1",
        "api.example.com%00",
        "",
    ],
)
def test_any_other_authority_is_refused(authority: str) -> None:
    assert not authority_matches(authority, "api.example.com", 443, "https")


def test_only_plain_and_granted_headers_are_forwarded() -> None:
    for plain in ("Content-Type", "accept", "User-Agent", "anthropic-version", "anthropic-beta"):
        assert forwardable(plain, GRANT), plain
    for credential in (
        "X-Auth-Token",
        "PRIVATE-TOKEN",
        "Ocp-Apim-Subscription-Key",
        "x_api_key",
        "x-api-key",
        "authorization",
        "cookie",
        "api-key",
        "x-goog-api-key",
        "proxy-authorization",
    ):
        assert not forwardable(credential, GRANT), credential
    assert not forwardable("anthropic-beta", {"id": "other"})


def _messages(body: bytes, path: str = "/v1/messages") -> str | None:
    return request_problem(
        "anthropic-messages", "POST", path, query_keys=[], headers={"content-type": "application/json"}, body=body
    )


def _chat(body: object, path: str = "/v1/chat/completions") -> str | None:
    return request_problem(
        "openai-chat",
        "POST",
        path,
        query_keys=[],
        headers={"content-type": "application/json"},
        body=json.dumps(body).encode(),
    )


def test_a_plain_messages_body_passes_and_a_fetching_one_does_not() -> None:
    plain = b'{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}'
    assert _messages(plain) is None
    assert _messages(plain, "/proxy/v1/messages/count_tokens") is None
    for body in (
        b'{"model": "m", "mcp_servers": []}',
        b'{"tools": [{"type": "code_execution_20250825", "name": "x"}]}',
        b'{"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "u"}}]}]}',
        b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "file_id": "f"}]}]}',
        b'{"tools": 5}',
        b'{"messages": {"role": "user"}}',
        b'{"messages": [5]}',
        b'{"system": [{"type": "x"}]}',
        b"not json",
        b"[]",
        b"\xff",
        b"\xef\xbb\xbf{}",
        b'{"a": 1, "a": 2}',
        b'{"max_tokens": NaN}',
        b'{"max_tokens": 1' + b"0" * 100 + b"}",
        b'{"messages": ' + b"[" * 100 + b"]" * 100 + b"}",
    ):
        assert _messages(body), body
    assert _messages(plain, "/v1/messages/batches") and _messages(plain, "/v1/files")


def test_an_openai_chat_body_passes_only_with_what_the_assistant_needs() -> None:
    plain = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                ],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "run", "parameters": {}}}],
        "stream": True,
    }
    assert _chat(plain) is None
    assert _chat(plain, "/openai/deployments/gpt/chat/completions") is None
    for extra in (
        {"web_search_options": {}},
        {"store": True},
        {"audio": {"voice": "x"}},
        {"tools": [{"type": "web_search"}]},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://e.x/"}}]}]},
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]},
        {"messages": [{"role": "assistant", "audio": {"id": "a"}}]},
        {"messages": [{"role": "root", "content": ""}]},
    ):
        assert _chat({**plain, **extra}), extra
    for path in ("/v1/responses", "/v1/files", "/v1/batches", "/v1/embeddings", "/v1/chat/completions/abc"):
        assert _chat(plain, path), path
