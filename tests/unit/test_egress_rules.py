"""The gateway's header and authority rules, as pure functions (no gateway, no VM)."""

from __future__ import annotations

import pytest

from paddock.egress.rules import authority_matches, forwardable, messages_body_problem

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
        "api.example.com:443@evil.example", "user@api.example.com", "evil.example", "api.example.com.evil.example",
        "api.example.com:8443", "api.example.com:", "api.example.com:443:443", "api.example.com/x",
        "api.example.com evil.example", "[::1]", "127.0.0.1", "api.example.com%00", "",
    ],
)  # fmt: skip
def test_any_other_authority_is_refused(authority: str) -> None:
    assert not authority_matches(authority, "api.example.com", 443, "https")


def test_only_plain_and_granted_headers_are_forwarded() -> None:
    for plain in ("Content-Type", "accept", "User-Agent", "anthropic-version", "anthropic-beta"):
        assert forwardable(plain, GRANT), plain
    for credential in ("X-Auth-Token", "PRIVATE-TOKEN", "Ocp-Apim-Subscription-Key", "x_api_key", "x-api-key",
                       "authorization", "cookie", "api-key", "x-goog-api-key", "proxy-authorization"):  # fmt: skip
        assert not forwardable(credential, GRANT), credential
    assert not forwardable("anthropic-beta", {"id": "other"})


def test_a_plain_messages_body_passes_and_a_fetching_one_does_not() -> None:
    plain = b'{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}'
    assert messages_body_problem(plain) is None
    for body in (
        b'{"model": "m", "mcp_servers": []}',
        b'{"tools": [{"type": "code_execution_20250825", "name": "x"}]}',
        b'{"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "u"}}]}]}',
        b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "file_id": "f"}]}]}',
        b"not json", b"[]", b"\xff",
    ):  # fmt: skip
        assert messages_body_problem(body), body
