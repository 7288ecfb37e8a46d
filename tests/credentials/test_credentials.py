"""The keychain (a real gnome-keyring over D-Bus, started by the test command) and session tokens."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paddock.credentials import MODEL_KEY, Keychain, KeychainError, backend_status
from paddock.egress import TokenAuthority, TokenError

PADDOCK = [sys.executable, "-m", "paddock.cli"]


@pytest.fixture(autouse=True)
def _real_keychain() -> None:
    status = backend_status()
    assert status.acceptable and "SecretService" in status.name, (
        f"these tests need the real Secret Service (run them through scripts/test.sh): {status.name}"
    )


@pytest.fixture
def clean_key() -> object:
    Keychain().remove(MODEL_KEY)
    yield
    Keychain().remove(MODEL_KEY)


def _paddock(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    return subprocess.run(
        [*PADDOCK, *args], input=stdin, capture_output=True, text=True, timeout=60, env={**base, **(env or {})}
    )


def test_keys_set_status_remove_through_the_cli(clean_key: object) -> None:
    key = f"test-{secrets.token_hex(12)}"
    default = "  anthropic (any model)"  # with no policy: the built-in endpoints, anthropic first
    line = next(x for x in _paddock("keys", "status").stdout.splitlines() if x.startswith(default))
    assert line.endswith(": no key stored yet")
    stored = _paddock("keys", "set", stdin=key + "\n")  # no --endpoint: the default endpoint's entry
    assert stored.returncode == 0, stored.stderr
    assert Keychain().get(MODEL_KEY) == key
    status = _paddock("keys", "status")
    line = next(x for x in status.stdout.splitlines() if x.startswith(default))
    assert line.endswith(": key stored") and key not in status.stdout + status.stderr
    assert "  openai (any model)" in status.stdout
    assert _paddock("keys", "remove").returncode == 0
    assert Keychain().get(MODEL_KEY) is None
    other = _paddock("keys", "set", "--endpoint", "openai", stdin=key + "\n")
    assert other.returncode == 0 and Keychain().get("openai-api-key") == key and Keychain().get(MODEL_KEY) is None
    assert _paddock("keys", "remove", "--endpoint", "openai").returncode == 0
    assert Keychain().get("openai-api-key") is None
    nope = _paddock("keys", "set", "--endpoint", "nope", stdin=key + "\n")
    assert nope.returncode == 1 and "no model endpoint called 'nope'" in nope.stderr and "Traceback" not in nope.stderr


def test_the_key_is_never_taken_from_the_command_line() -> None:
    proc = _paddock("keys", "set", "sk-should-not-be-accepted")
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr


def test_plaintext_and_null_backends_are_refused_unless_policy_names_them(clean_key: object) -> None:
    proc = _paddock("keys", "set", stdin="test-key\n", env={"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})
    assert proc.returncode == 1
    assert "will not keep secrets" in proc.stderr and "fallback_backend" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_admin_named_fallback_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyring.backends import null

    monkeypatch.setattr(keyring, "get_keyring", lambda: null.Keyring())
    with pytest.raises(KeychainError):
        Keychain().get(MODEL_KEY)
    assert Keychain(allowed_fallback="keyring.backends.null").get(MODEL_KEY) is None


# ------------------------------------------------------------------ tokens


def test_tokens_are_bound_to_their_vm_grants_and_lifetime(tmp_path: Path) -> None:
    authority = TokenAuthority(tmp_path / "tokens")
    token = authority.mint("vm1", ["api"])
    assert authority.check(token.value, vm_id="vm1", grant_ids=["api"]).token_id == token.token_id
    cases = {
        "missing": (None, "vm1"),
        "malformed": ("not-a-token", "vm1"),
        "other_vm": (token.value, "vm2"),
        "bad_signature": (token.value[:-1] + ("0" if token.value[-1] != "0" else "1"), "vm1"),
        "expired": (authority.mint("vm1", ["api"], ttl_s=0).value, "vm1"),
    }
    for reason, (value, vm) in cases.items():
        with pytest.raises(TokenError) as info:
            authority.check(value, vm_id=vm, grant_ids=["api"])
        assert info.value.reason == reason
    with pytest.raises(TokenError) as info:
        authority.check(token.value, vm_id="vm1", grant_ids=["api", "files"])
    assert info.value.reason == "other_grants"
    # A token signed by another installation's key is refused.
    stranger = TokenAuthority(tmp_path / "other").mint("vm1", ["api"])
    with pytest.raises(TokenError, match="signature"):
        authority.check(stranger.value, vm_id="vm1")


def test_revocation_one_by_one_and_all_at_once_takes_effect_at_once(tmp_path: Path) -> None:
    authority = TokenAuthority(tmp_path / "tokens")
    a, b = authority.mint("vm1", []), authority.mint("vm1", [])
    authority.revoke(a.token_id)
    with pytest.raises(TokenError, match="revoked"):
        authority.check(a.value, vm_id="vm1")
    authority.check(b.value, vm_id="vm1")
    # `paddock keys revoke-sessions` in another process: the next check here refuses.
    env = {**os.environ, "PADDOCK_DATA_DIR": str(tmp_path)}
    proc = subprocess.run([*PADDOCK, "keys", "revoke-sessions"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(TokenError, match="revoked"):
        authority.check(b.value, vm_id="vm1")
    time.sleep(0.01)
    fresh = authority.mint("vm1", [])
    authority.check(fresh.value, vm_id="vm1")  # a session started after the revocation works


def test_a_damaged_revocation_list_refuses_every_token(tmp_path: Path) -> None:
    authority = TokenAuthority(tmp_path / "tokens")
    token = authority.mint("vm1", [])
    authority.revoke("nothing")
    (tmp_path / "tokens" / "revoked.json").write_text("{broken")
    with pytest.raises(TokenError, match="revoked"):
        authority.check(token.value, vm_id="vm1")
