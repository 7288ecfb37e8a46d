"""Model endpoints in policy: the built-in two, endpoints the managed tier names, tiers that only
narrow, the old list of base URLs, and choosing ENDPOINT:MODEL. No VM, nothing sent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from paddock.policy import EffectivePolicy, ModelRefused, PolicyError, load
from paddock.policy.models import choose

ADMIN = os.geteuid()
LOCAL = {
    "name": "local",
    "kind": "openai",
    "base_url": "http://127.0.0.1:11434/v1",
    "models": ["llama3.1", "qwen2.5:7b"],
}
CORP = {"name": "corp", "kind": "anthropic", "base_url": "https://llm.corp.example/anthropic", "key": "corp-key"}


def _load(tmp_path: Path, managed: object = None, user: object = None) -> EffectivePolicy:
    def write(name: str, data: object) -> Path:
        p = tmp_path / name
        if data is not None:
            p.write_text(json.dumps(data))
        return p

    return load(
        managed=write("m.json", managed),
        recommended=tmp_path / "none-r.json",
        user=write("u.json", user),
        home=tmp_path,
        admin_uid=ADMIN,
    )


def _refused(eff: EffectivePolicy, requested: str | None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ModelRefused) as exc:
        choose(eff, requested, env or {})
    return exc.value.reason


def test_with_no_policy_two_endpoints_are_built_in(tmp_path: Path) -> None:
    eff = _load(tmp_path)
    assert [e.name for e in eff.model_endpoints] == ["anthropic", "openai"]
    default = choose(eff, None, {})
    assert (default.endpoint.name, default.base_url) == ("anthropic", "https://api.anthropic.com")
    ollama = choose(eff, "openai:llama3.1:8b", {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1/"})
    assert (ollama.model, ollama.base_url) == ("llama3.1:8b", "http://127.0.0.1:11434/v1")  # the SDK's variable
    assert choose(eff, "claude-x", {}).label == "anthropic:claude-x"
    assert "Name the model" in _refused(eff, "openai:")
    assert "no model endpoint called 'nope'" in _refused(eff, "nope:x")


def test_the_managed_tier_names_the_endpoints_and_lower_tiers_only_narrow(tmp_path: Path) -> None:
    managed = {"models": {"endpoints": [LOCAL, CORP], "default": "local:llama3.1"}}
    user = {
        "models": {
            "endpoints": [
                {**LOCAL, "models": ["qwen2.5:7b", "mistral"]},  # narrows local's models; cannot add mistral
                {"name": "mine", "kind": "openai", "base_url": "http://evil.example/v1"},  # cannot add an endpoint
            ]
        }
    }
    eff = _load(tmp_path, managed, user)
    assert [(e.name, e.models) for e in eff.model_endpoints] == [("local", ("qwen2.5:7b",))]
    assert eff.sources["model_endpoints"] == "managed, narrowed by user" and eff.endpoints_managed
    assert choose(eff, None, {}).label == "local:qwen2.5:7b"  # the default llama3.1 is no longer allowed there
    assert "not allowed on the endpoint 'local'" in _refused(eff, "local:llama3.1")
    assert "no model endpoint called 'mine'" in _refused(eff, "mine:x")
    assert "no model endpoint called 'openai'" in _refused(eff, "openai:gpt-5")  # built-ins are gone


def test_base_url_variables_may_point_only_where_a_managed_policy_allows(tmp_path: Path) -> None:
    eff = _load(tmp_path, {"models": {"endpoints": [LOCAL, CORP]}})
    assert choose(eff, "corp:claude-x", {"ANTHROPIC_BASE_URL": "https://llm.corp.example/anthropic/"}).base_url == (
        "https://llm.corp.example/anthropic"
    )
    assert "ANTHROPIC_BASE_URL points to http://127.0.0.1:9" in _refused(
        eff, "corp:claude-x", {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    )
    assert "OPENAI_BASE_URL" in _refused(eff, "local:llama3.1", {"OPENAI_BASE_URL": "https://api.openai.com/v1"})


def test_the_old_list_of_base_urls_restricts_the_built_in_endpoints(tmp_path: Path) -> None:
    eff = _load(tmp_path, {"models": {"endpoints": ["https://api.anthropic.com"]}})
    assert choose(eff, None, {}).base_url == "https://api.anthropic.com"
    assert "ANTHROPIC_BASE_URL points to http://127.0.0.1:9" in _refused(
        eff, None, {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    )
    assert "only to https://api.anthropic.com" in _refused(eff, "openai:gpt-5")


def test_models_allowed_applies_on_every_endpoint(tmp_path: Path) -> None:
    eff = _load(tmp_path, {"models": {"endpoints": [LOCAL], "allowed": ["llama3.1"]}})
    assert choose(eff, "local:llama3.1", {}).model == "llama3.1"
    assert "not allowed by policy" in _refused(eff, "local:qwen2.5:7b")


def test_a_folder_may_not_define_an_endpoint(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    (folder / ".claude").mkdir(parents=True)
    (folder / ".claude" / "settings.json").write_text(json.dumps({"paddock": {"models": {"endpoints": [LOCAL]}}}))
    with pytest.raises(PolicyError, match="may only narrow the endpoints"):
        load(
            managed=tmp_path / "x",
            recommended=tmp_path / "y",
            user=tmp_path / "z",
            folder=folder,
            folder_trusted=True,
            home=tmp_path,
            admin_uid=ADMIN,
        )


def test_a_bad_endpoint_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"models\.endpoints\.0\..*base_url"):
        _load(tmp_path, {"models": {"endpoints": [{**LOCAL, "base_url": "file:///etc/passwd"}]}})


def test_a_managed_policy_naming_a_built_in_endpoint_pins_its_address(tmp_path: Path) -> None:
    """Naming ``anthropic`` in the managed tier must not leave ANTHROPIC_BASE_URL free to send the
    person's key anywhere (review finding: it did)."""
    eff = _load(tmp_path, {"models": {"endpoints": ["anthropic"]}})
    assert choose(eff, None, {}).base_url == "https://api.anthropic.com"
    assert "https://evil.example" in _refused(eff, None, {"ANTHROPIC_BASE_URL": "https://evil.example"})


def test_an_empty_list_left_by_two_tiers_is_not_widened_by_a_third(tmp_path: Path) -> None:
    """Managed allows one URL, the user another: nothing is left, and the folder's tier cannot
    bring a URL back (review finding: an empty tuple was read as "no limit")."""
    folder = tmp_path / "work"
    (folder / ".claude").mkdir(parents=True)
    (folder / ".claude" / "settings.json").write_text(
        json.dumps({"paddock": {"models": {"endpoints": ["https://evil.example"]}}})
    )
    eff = load(
        managed=_write(tmp_path, "m.json", {"models": {"endpoints": ["https://a.example"]}}),
        recommended=tmp_path / "none-r.json",
        user=_write(tmp_path, "u.json", {"models": {"endpoints": ["https://b.example"]}}),
        home=tmp_path,
        admin_uid=ADMIN,
        folder=folder,
        folder_trusted=True,
    )
    for e in eff.model_endpoints:
        assert e.allowed_urls == (), e
    assert "evil.example" in _refused(eff, None, {"ANTHROPIC_BASE_URL": "https://evil.example"})


def test_a_personal_key_variable_never_goes_to_an_endpoint_the_admin_named(tmp_path: Path) -> None:
    from paddock.llm import ModelTarget
    from paddock.session.model_choice import api_key

    eff = _load(tmp_path, {"models": {"endpoints": [CORP]}})
    target = ModelTarget("corp", "anthropic", CORP["base_url"], "m", True)
    env = {"ANTHROPIC_API_KEY": "personal-key-for-the-public-service"}
    assert api_key(eff, target, env) != env["ANTHROPIC_API_KEY"]


def _write(tmp_path: Path, name: str, data: object) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_a_base_url_compares_case_blind_only_in_scheme_and_host() -> None:
    from paddock.policy.models import norm_url

    assert norm_url("HTTPS://Models.Example.COM/v1/") == "https://models.example.com/v1"
    assert norm_url("https://models.example.com/V1") != norm_url("https://models.example.com/v1")


def test_only_a_loopback_address_counts_as_a_local_model_server() -> None:
    from paddock.session.model_choice import _loopback

    for url in ("http://127.0.0.1:11434", "http://127.8.0.1/v1", "http://[::1]:8000", "http://localhost:1234"):
        assert _loopback(url), url
    for url in ("http://127.example.com", "http://127.0.0.1.example.com/v1", "https://10.0.0.1"):
        assert not _loopback(url), url
