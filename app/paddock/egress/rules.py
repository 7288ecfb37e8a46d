"""The gateway's rules as pure functions (standard library only), shared by the mitmproxy
addon and the tests that fuzz them. What a model-API grant lets through is ``profiles``."""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

# The headers every grant passes upstream; every other header the guest sends is dropped, so a
# credential in a header no one thought of (X-Auth-Token, PRIVATE-TOKEN, …) never leaves.
# A grant may name more (``forward_headers``); its credential header is set by the gateway.
FORWARD_HEADERS = frozenset({
    "host", "content-type", "content-length", "content-encoding", "transfer-encoding", "accept",
    "accept-encoding", "accept-language", "user-agent", "cache-control", "pragma", "connection", "te",
    "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "range", "anthropic-version",
})  # fmt: skip
STRIP_QUERY = ("key", "api_key", "apikey", "access_token", "token", "auth", "sig", "signature")
_SUSPICIOUS = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)


def blocked_address(addr: str) -> bool:
    """Private, loopback, link-local and other non-public addresses are never reached."""
    ip = ipaddress.ip_address(addr)
    return bool(ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified)  # fmt: skip


_AUTHORITY = re.compile(r"([a-z0-9.-]+)(?::([0-9]{1,5}))?")


def authority_matches(authority: str, host: str, port: int, scheme: str) -> bool:
    """A Host header (or URL authority) names exactly ``host`` and ``port``: no user-info
    (``granted:443@evil``), no second host, nothing but a name and an optional port."""
    m = _AUTHORITY.fullmatch(authority.strip().lower())
    if m is None or m.group(1) != host.lower():
        return False
    default = 443 if scheme == "https" else 80
    return int(m.group(2) or default) == port


# The framing headers a grant passes carry what RFC 9110 lets them carry and nothing else: a
# Content-Encoding the upstream cannot decode, or a Content-Type that is no media type, is free text
# the gateway would otherwise hand on untouched (a guest's own key in it reached the upstream).
CODINGS = frozenset({"identity", "gzip", "x-gzip", "deflate", "br", "zstd", "compress", "x-compress"})
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"(?:[^\"\\\x00-\x08\x0a-\x1f\x7f]|\\.)*\"))*[ \t]*"
)


def framing_problem(headers: Sequence[tuple[str, str]]) -> str | None:
    """Why the request's Content-Encoding or Content-Type is refused (None: both are well formed
    or absent). ``headers``: every (name, value) the request carries, in any case."""
    for name, value in headers:
        key = name.lower()
        if key == "content-encoding":
            codings = [c.strip().lower() for c in value.split(",")]
            if not all(c in CODINGS or not c for c in codings):
                return "the request's Content-Encoding names no compression Paddock knows"
        elif key == "content-type" and _MEDIA_TYPE.fullmatch(value.strip()) is None:
            return "the request's Content-Type is not a media type"
    return None


def forwardable(header: str, grant: dict[str, Any]) -> bool:
    name = header.lower()
    return name in FORWARD_HEADERS or name in grant.get("forward_headers", ())


def clean_path(path: str) -> str | None:
    """The request path without its query, or None when it could mean another path upstream
    (dot segments, encoded dots or slashes, backslashes, empty segments, control characters)."""
    raw = path.split("?", 1)[0].split("#", 1)[0]
    if not raw.startswith("/") or _SUSPICIOUS.search(raw):
        return None
    decoded = unquote(raw)
    if "\\" in decoded or "//" in decoded or any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        return None
    if any(seg in (".", "..") for seg in decoded.split("/")):
        return None
    return decoded


def match_grant(
    grants: Sequence[dict[str, Any]], scheme: str, host: str, port: int, *, method: str | None, path: str | None
) -> dict[str, Any] | None:
    """The first grant that allows this request (method/path None: any, for a CONNECT)."""
    if path is not None:
        cleaned = clean_path(path)
        if cleaned is None:
            return None
        path = cleaned
    for g in grants:
        if g["scheme"] != scheme or g["host"] != host.lower() or int(g["port"]) != port:
            continue
        if method is not None and method not in g["methods"]:
            continue
        if path is not None and not fnmatch.fnmatchcase(path, g["path_pattern"]):
            continue
        return g
    return None
