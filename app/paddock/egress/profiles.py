"""What a model-API grant lets through (standard library only; runs in the gateway).

A grant that attaches the person's key names the API it serves (``api``); each profile is an
allowlist: the paths, query keys and request fields the assistant needs, nothing that makes
the provider fetch, upload or call out by itself (server-side tools, MCP connectors, files by
id, images or documents by URL, batch and file endpoints). With the key attached, any of those
would carry folder data to an address the guest chose.

The body is read the way the upstream will read it, and bounded first: at most ``MAX_BODY``
bytes of UTF-8 JSON, nested at most ``MAX_DEPTH`` deep (checked before parsing, so nothing
recurses without limit), no field named twice (the upstream might keep the other one), no
number longer than ``MAX_NUMBER`` characters, no NaN or Infinity; every value's type is checked
before it is used.

Written from the APIs' own references: the Anthropic Messages API
(``POST /v1/messages``, ``/v1/messages/count_tokens``) and the OpenAI Chat Completions API
(``POST /chat/completions``, the ``openai`` SDK's ``CompletionCreateParams``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

MAX_BODY = 10 * 1024 * 1024
MAX_DEPTH = 64
MAX_NUMBER = 40
PROFILES = ("anthropic-messages", "openai-chat")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class Refused(ValueError):
    """Why a request may not pass, in plain words."""


# ---------------------------------------------------------------------------------------- JSON


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise Refused(f"the request body names the field {key[:40]!r} twice")
        out[key] = value
    return out


def _number(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER:
            raise Refused("the request body has a number too long to be read safely")
        return kind(text)

    return parse


def _constant(name: str) -> Any:
    raise Refused(f"the request body uses {name}, which is not JSON")


def read_json(body: bytes) -> Any:
    """The body as JSON, read within bounds; ``Refused`` when it cannot be read safely."""
    if len(body) > MAX_BODY:
        raise Refused("the request body is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("the request body is not UTF-8 text") from None
    if text.startswith("\ufeff"):
        raise Refused("the request body starts with a byte-order mark")
    brackets = _STRING.sub("", text).encode().translate(None, _NOT_BRACKETS)  # what is left outside strings
    if brackets and max(accumulate(1 if b in b"[{" else -1 for b in brackets)) > MAX_DEPTH:
        raise Refused(f"the request body is nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_int=_number(int),
                          parse_float=_number(float), parse_constant=_constant)  # fmt: skip
    except Refused:
        raise
    except (ValueError, RecursionError):
        raise Refused("the request body is not JSON") from None


# ------------------------------------------------------------------------------------- helpers


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refused(f"{what} is not a JSON object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise Refused(f"{what} is not a list")
    return value


def _fields(data: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        names = ", ".join(name[:40] for name in extra[:5])
        raise Refused(f"{what} asks for {names}, which this grant does not allow")


def _kind(block: Any, allowed: frozenset[str], what: str) -> tuple[str, dict[str, Any]]:
    obj = _obj(block, what)
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in allowed:
        shown = kind[:40] if isinstance(kind, str) else type(kind).__name__
        raise Refused(f"{what} of type {shown!r} is not allowed on this grant")
    if "file_id" in obj:
        raise Refused("the request names a stored file (file_id)")
    return kind, obj


# ------------------------------------------------------------------------- Anthropic Messages

ANTHROPIC_FIELDS = frozenset({
    "model", "messages", "system", "max_tokens", "tools", "tool_choice", "temperature", "top_p", "top_k",
    "stop_sequences", "stream", "metadata", "thinking", "service_tier",
})  # fmt: skip
_ANTHROPIC_BLOCKS = frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"})
_INNER_BLOCKS = frozenset({"text", "image", "document"})  # inside a tool result or a content source
_INLINE_SOURCES = frozenset({"base64", "text", "content"})  # never "url" or "file": the provider would fetch


def _anthropic_block(block: Any, allowed: frozenset[str]) -> None:
    kind, obj = _kind(block, allowed, "a message block")
    if kind in ("image", "document"):
        source_kind, source = _kind(obj.get("source"), _INLINE_SOURCES, f"the {kind}'s source")
        if source_kind == "content" and not isinstance(source.get("content"), str):
            for inner in _list(source.get("content"), "a document's content"):
                _anthropic_block(inner, _INNER_BLOCKS)
    elif kind == "tool_result" and not isinstance(obj.get("content", ""), str):
        for inner in _list(obj.get("content"), "a tool result's content"):
            _anthropic_block(inner, _INNER_BLOCKS)


def anthropic_body(data: Any) -> None:
    body = _obj(data, "the request body")
    _fields(body, ANTHROPIC_FIELDS, "the request")
    for message in _list(body.get("messages", []), "messages"):
        msg = _obj(message, "a message")
        _fields(msg, frozenset({"role", "content"}), "a message")
        if msg.get("role") not in ("user", "assistant"):
            raise Refused("a message has a role other than user or assistant")
        if not isinstance(msg.get("content"), str):
            for block in _list(msg.get("content"), "a message's content"):
                _anthropic_block(block, _ANTHROPIC_BLOCKS)
    if not isinstance(body.get("system", ""), str):
        for block in _list(body.get("system"), "system"):
            _kind(block, frozenset({"text"}), "a system block")
    for tool in _list(body.get("tools", []), "tools"):
        t = _obj(tool, "a tool")
        if t.get("type", "custom") != "custom":
            kind = t.get("type")
            shown = kind[:40] if isinstance(kind, str) else type(kind).__name__
            raise Refused(f"the request asks for the provider's own tool {shown!r}, which this grant does not allow")
        _fields(t, frozenset({"type", "name", "description", "input_schema", "cache_control", "strict"}), "a tool")
    if "tool_choice" in body:
        _kind(body["tool_choice"], frozenset({"auto", "any", "tool", "none"}), "tool_choice")
    if "metadata" in body:
        _fields(_obj(body["metadata"], "metadata"), frozenset({"user_id"}), "metadata")


# ---------------------------------------------------------------------- OpenAI Chat Completions

# From CompletionCreateParams. Left out: web_search_options (the provider searches the web),
# audio and modalities (spoken output), store and metadata (keeps the conversation at the
# provider), prediction, moderation and prompt-cache options (not needed by the assistant).
OPENAI_FIELDS = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stop", "stream",
    "stream_options", "tools", "tool_choice", "parallel_tool_calls", "response_format", "seed",
    "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs", "user",
    "reasoning_effort", "functions", "function_call", "verbosity", "service_tier", "safety_identifier",
})  # fmt: skip
_OPENAI_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_OPENAI_MESSAGE = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "function_call", "refusal"})
_OPENAI_PARTS = frozenset({"text", "image_url", "input_audio", "file", "refusal"})


def _openai_part(part: Any) -> None:
    kind, obj = _kind(part, _OPENAI_PARTS, "a message part")
    if kind == "image_url":
        image = _obj(obj.get("image_url"), "an image part's image_url")
        url = image.get("url")
        if not isinstance(url, str) or not url.startswith("data:"):
            raise Refused("an image is given by its web address, which the provider would fetch")
    elif kind == "file":
        file = _obj(obj.get("file"), "a file part's file")
        if "file_id" in file or not isinstance(file.get("file_data"), str):
            raise Refused("the request names a stored file (file_id) instead of including it")


def openai_body(data: Any) -> None:
    body = _obj(data, "the request body")
    _fields(body, OPENAI_FIELDS, "the request")
    for message in _list(body.get("messages", []), "messages"):
        msg = _obj(message, "a message")
        _fields(msg, _OPENAI_MESSAGE, "a message")
        if msg.get("role") not in _OPENAI_ROLES:
            raise Refused("a message has a role this grant does not know")
        content = msg.get("content")
        if content is not None and not isinstance(content, str):
            for part in _list(content, "a message's content"):
                _openai_part(part)
        for call in _list(msg.get("tool_calls", []), "tool_calls"):
            _kind(call, frozenset({"function", "custom"}), "a tool call")
    for tool in _list(body.get("tools", []), "tools"):
        _kind(tool, frozenset({"function", "custom"}), "a tool")
    for function in _list(body.get("functions", []), "functions"):
        _obj(function, "a function")
    choice = body.get("tool_choice", "auto")
    if not isinstance(choice, str):
        _kind(choice, frozenset({"function", "custom", "allowed_tools"}), "tool_choice")
    if "response_format" in body:
        _kind(body["response_format"], frozenset({"text", "json_object", "json_schema"}), "response_format")


# ---------------------------------------------------------------------------------- the profile

# (method, how the path ends) each profile allows; a prefix before it (a proxy's, Azure's) is fine.
_ROUTES: dict[str, tuple[tuple[str, re.Pattern[str], Callable[[Any], None] | None], ...]] = {
    "anthropic-messages": (
        ("POST", re.compile(r"(/.*)?/v1/messages(/count_tokens)?"), anthropic_body),
        ("GET", re.compile(r"(/.*)?/v1/models(/[A-Za-z0-9._:-]+)?"), None),
    ),
    "openai-chat": (
        ("POST", re.compile(r"(/.*)?/chat/completions"), openai_body),
        ("GET", re.compile(r"(/.*)?/models(/[A-Za-z0-9._:/-]+)?"), None),
    ),
}
_QUERY = {"anthropic-messages": frozenset({"beta"}), "openai-chat": frozenset({"api-version"})}


def request_problem(api: str, method: str, path: str, *, query_keys: list[str], headers: dict[str, str],
                    body: bytes) -> str | None:  # fmt: skip
    """Why this request may not pass a grant serving ``api`` (None: it may). ``path`` is the
    cleaned path without its query; ``headers`` lower-case names."""
    if api not in _ROUTES:
        return f"this grant serves an API Paddock does not know ({api[:40]!r})"
    route = next((r for r in _ROUTES[api] if r[0] == method and r[1].fullmatch(path)), None)
    if route is None:
        return f"{method} {path[:200]} is not part of the {api} API this grant serves"
    extra = sorted({k.lower() for k in query_keys} - _QUERY[api])
    if extra:
        return f"the request's address asks for {', '.join(k[:40] for k in extra[:5])}, which this grant does not allow"
    check = route[2]
    if check is None:
        return None if not body else "this request may not carry a body"
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        return f"a {encoding[:40]}-compressed request body is not allowed on this grant"
    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return "the request body is not declared as JSON (content-type application/json)"
    try:
        check(read_json(body))
    except Refused as exc:
        return str(exc)
    return None
