"""Property-based fuzzing (hypothesis) of the parsers that take untrusted input: the policy
parser and the egress grants. (The guest agent's path confinement is the agent's own Go test,
TestPathsNeverLeaveTheWorkspace in guest_image/agent/src, run by the image build.)"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from paddock.policy import PolicyError, PolicyFile
from paddock.policy.effective import parse

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
policy_keys = st.sampled_from(["version", "mounts", "egress", "models", "hooks", "audit", "keychain", "grants", "x"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(policy_keys, json_values, max_size=5) | json_values)
def test_policy_parser_never_crashes(data: object) -> None:
    try:
        result = parse(json.dumps(data), Path("fuzz.json"))
    except PolicyError as exc:
        assert exc.message.startswith("fuzz.json: ")
    else:
        assert isinstance(result, PolicyFile)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_policy_parser_on_arbitrary_text(raw: str) -> None:
    try:
        parse(raw, Path("fuzz.json"))
    except PolicyError:
        pass


# ------------------------------------------------------------------ the gateway's rules

from paddock.egress.rules import blocked_address, clean_path, match_grant  # noqa: E402

GRANTS = [
    {
        "id": "msgs",
        "scheme": "https",
        "host": "api.example.com",
        "port": 443,
        "methods": ["POST"],
        "path_pattern": "/v1/messages",
    },
    {
        "id": "charts",
        "scheme": "https",
        "host": "charts.example.com",
        "port": 443,
        "methods": ["GET", "POST"],
        "path_pattern": "/api/charts/*",
    },
]
path_parts = st.sampled_from(
    [
        "v1",
        "messages",
        "files",
        "api",
        "charts",
        "..",
        ".",
        "%2e%2e",
        "%2f",
        "",
        "x",
        "%00",
        "\\",
        "a%2Fb",
        ";",
        "?q=1",
        "#f",
    ]
)


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(path_parts, max_size=6),
    st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    st.sampled_from(["api.example.com", "API.EXAMPLE.COM", "charts.example.com", "evil.example.com"]),
)
def test_a_grant_never_admits_another_path_method_or_host(parts: list[str], method: str, host: str) -> None:
    path = "/" + "/".join(parts)
    grant = match_grant(GRANTS, "https", host, 443, method=method, path=path)
    if grant is None:
        return
    cleaned = clean_path(path)
    assert cleaned is not None and ".." not in cleaned.split("/")
    assert method in grant["methods"] and host.lower() == grant["host"]
    if grant["id"] == "msgs":
        assert cleaned == "/v1/messages"
    else:
        assert cleaned.startswith("/api/charts/")


def test_dot_segments_and_encodings_never_reach_a_wildcard_grant() -> None:
    for path in (
        "/api/charts/../../v1/files",
        "/api/charts/%2e%2e/x",
        "/api/charts/a%2fb",
        "/api/charts//x",
        "/api/charts/.\\x",
        "/api/charts/x%00",
    ):
        assert match_grant(GRANTS, "https", "charts.example.com", 443, method="GET", path=path) is None, path
    assert match_grant(GRANTS, "https", "charts.example.com", 443, method="GET", path="/api/charts/ok?x=1")


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses())
def test_only_public_addresses_pass(addr: object) -> None:
    import ipaddress

    ip = ipaddress.ip_address(str(addr))
    if blocked_address(str(addr)):
        assert not ip.is_global or ip.is_multicast or ip.is_reserved
    else:
        assert not (ip.is_private or ip.is_loopback or ip.is_link_local)
