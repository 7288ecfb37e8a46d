"""Property-based fuzzing (hypothesis) of the parsers that take untrusted input:
the policy parser, and the guest agent's path confinement."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paddock.policy import PolicyError, PolicyFile
from paddock.policy.effective import parse

REPO = Path(__file__).resolve().parents[2]

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


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> object:
    """The guest agent's module, imported on the host with a workspace of our own."""
    workspace = tmp_path_factory.mktemp("ws")
    (workspace / "sub").mkdir()
    (workspace / "sub" / "in").symlink_to("../sub")
    (workspace / "out").symlink_to("/etc")
    (workspace / "up").symlink_to("..")
    os.environ["PADDOCK_WORKSPACE"] = str(workspace)
    sys.path.insert(0, str(REPO / "guest_image" / "agent"))
    try:
        import paddock_agent  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    paddock_agent.WORKSPACE = str(workspace)
    return paddock_agent


segments = st.sampled_from(["..", ".", "sub", "in", "out", "up", "x", "", "a/b", "/", "//", "\x00", "é"])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(segments, max_size=8), st.booleans())
def test_agent_paths_never_leave_the_workspace(agent: object, parts: list[str], absolute: bool) -> None:
    path = ("/" if absolute else "") + "/".join(parts)
    root = os.path.realpath(agent.WORKSPACE)  # type: ignore[attr-defined]
    for resolve in (agent.resolve, agent.resolve_follow):  # type: ignore[attr-defined]
        try:
            full = resolve(path)
        except agent.PathError:  # type: ignore[attr-defined]
            continue
        except FileNotFoundError:
            continue
        if full == root:
            continue
        # resolve() leaves the last component unfollowed (callers open it with O_NOFOLLOW);
        # resolve_follow() follows it. Either way, what is used lies inside the workspace.
        follow = resolve is agent.resolve_follow  # type: ignore[attr-defined]
        used = os.path.realpath(full if follow else os.path.dirname(full))
        assert used == root or used.startswith(root + "/"), (path, full)
