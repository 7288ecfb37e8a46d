"""A grant that attaches a credential says which API it serves: without ``api`` it is refused
(naming the field); with ``api: any`` it is allowed, and ``paddock policy check`` and
``paddock doctor`` warn about it in plain words."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paddock.policy import PolicyError, load
from paddock.session.doctor import grants_check

ADMIN = os.geteuid()  # the tests stand in for the administrator (see tests/policy/test_policy.py)


def _policy(tmp_path: Path, grant: dict[str, object]) -> Path:
    path = tmp_path / "managed.json"
    path.write_text(
        json.dumps(
            {
                "egress": {
                    "grants": [
                        {
                            "id": "model",
                            "host": "api.example.com",
                            "methods": ["POST"],
                            "path_pattern": "/v1/messages",
                            "credential": "model-key",
                            **grant,
                        }
                    ]
                }
            }
        )
    )
    path.chmod(0o644)
    return path


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paddock.cli", "policy", "check", str(path)], capture_output=True, text=True, timeout=60
    )


def test_a_credentialed_grant_without_an_api_is_refused_naming_the_field(tmp_path: Path) -> None:
    path = _policy(tmp_path, {})
    with pytest.raises(PolicyError) as info:
        load(managed=path, recommended=tmp_path / "r", user=tmp_path / "u", admin_uid=ADMIN)
    assert "egress.grants.0.api" in info.value.message and "which API it serves" in info.value.message
    proc = _check(path)
    assert proc.returncode != 0
    assert "egress.grants.0.api" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize("api", ["anthropic-messages", "openai-chat"])
def test_a_grant_naming_its_api_is_valid_without_warnings(tmp_path: Path, api: str) -> None:
    path = _policy(tmp_path, {"api": api})
    proc = _check(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning" not in proc.stdout.lower()
    policy = load(managed=path, recommended=tmp_path / "r", user=tmp_path / "u", admin_uid=ADMIN)
    assert grants_check(policy).ok


def test_an_api_any_grant_with_a_credential_is_warned_about(tmp_path: Path) -> None:
    path = _policy(tmp_path, {"api": "any"})
    proc = _check(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning: The grant 'model' attaches the credential 'model-key' to any request" in proc.stdout
    policy = load(managed=path, recommended=tmp_path / "r", user=tmp_path / "u", admin_uid=ADMIN)
    check = grants_check(policy)
    assert not check.ok and not check.required
    assert "'model'" in check.detail and check.fix and "anthropic-messages" in check.fix


def test_a_grant_without_a_credential_needs_no_api(tmp_path: Path) -> None:
    path = tmp_path / "managed.json"
    path.write_text(json.dumps({"egress": {"grants": [{"id": "charts", "host": "charts.example.com"}]}}))
    policy = load(managed=path, recommended=tmp_path / "r", user=tmp_path / "u", admin_uid=ADMIN)
    assert policy.grants[0].api == "any" and grants_check(policy).ok
