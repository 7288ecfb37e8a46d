"""``sensitive.paths`` and ``sensitive.on_send`` in policy files, the per-grant ``sends_data``
marking, what counts as sensitive, and which requests can carry data out (no VM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from paddock.egress.taint import carries_data
from paddock.policy import PolicyError
from paddock.policy.sensitive import SensitiveMatcher, looks_like_private_key
from tests.policy.test_policy import _load, home

__all__ = ["home"]


def test_managed_and_user_tiers_add_paths_and_the_strictest_hold_wins(tmp_path: Path, home: Path) -> None:
    managed = {"sensitive": {"paths": ["HR/**", "**/payroll*"]},
               "egress": {"grants": [{"id": "mirror", "host": "pypi.example.com", "sends_data": False}]}}  # fmt: skip
    user = {"sensitive": {"paths": ["*.xlsx"], "on_send": "refuse"}}
    eff = _load(tmp_path, home, managed, user)
    assert eff.sensitive_paths == ["HR/**", "**/payroll*", "*.xlsx"]  # type: ignore[attr-defined]
    assert eff.on_sensitive_send == "refuse"  # type: ignore[attr-defined]
    assert eff.grants[0].sends_data is False  # type: ignore[attr-defined]
    assert _load(tmp_path, home, managed, {}).on_sensitive_send == "ask"  # type: ignore[attr-defined]
    # A lower tier asking to be laxer changes nothing.
    assert _load(tmp_path, home, {"sensitive": {"on_send": "refuse"}}, {"sensitive": {"on_send": "ask"}}
                 ).on_sensitive_send == "refuse"  # type: ignore[attr-defined]  # fmt: skip


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside/**", "", "x" * 300])
def test_a_path_outside_the_folder_or_too_long_is_refused_naming_the_field(
    tmp_path: Path,
    home: Path,
    bad: str,
) -> None:
    with pytest.raises(PolicyError, match=r"sensitive\.paths"):
        _load(tmp_path, home, {"sensitive": {"paths": [bad]}})
    with pytest.raises(PolicyError, match=r"on_send"):
        _load(tmp_path, home, {"sensitive": {"on_send": "maybe"}})


def test_built_in_and_policy_patterns() -> None:
    m = SensitiveMatcher(["HR/**", "**/payroll*"])
    for rel in ("HR/salaries.xlsx", "a/b/.env", ".env.local", "x/.ssh/id_rsa", ".aws/credentials", "keys/server.pem",
                "docs/payroll-2026.csv", "vault.kdbx", "export/bitwarden_export_2026.json", ".netrc",
                "repo/.git-credentials", "infra/terraform.tfstate"):  # fmt: skip
        assert m.matches(rel), rel
    for rel in ("notes.txt", "report.md", ".envrc", "HRX/a.txt", "src/environment.py", "README.md"):
        assert not m.matches(rel), rel
    assert looks_like_private_key(b"-----BEGIN OPENSSH " + b"PRIVATE KEY-----\nb3Blbn")
    assert looks_like_private_key(b"junk\n-----BEGIN " + b"PRIVATE KEY-----\n")
    assert not looks_like_private_key(b"-----BEGIN CERTIFICATE-----\nMIIB")


def test_the_quick_no_agrees_with_pathspec_on_every_path() -> None:
    """The matcher answers an ordinary path with one joined regular expression (#32: it runs on
    every read open); pathspec, pattern by pattern, is the reference, ``!`` exclusions included."""
    import pathspec

    extra = ["HR/**", "**/payroll*", "!HR/public/**", "secret?.txt", "[Bb]udget*.xlsx", "Finance/", "*.key"]
    m = SensitiveMatcher(extra)
    reference = pathspec.PathSpec.from_lines("gitignore", m.patterns)
    names = ["HR", "HR/public", "a", "Finance", "x/Finance", ".ssh", ".aws", "docs", "b/c/d", "id_rsa.d", ".opvault"]
    leaves = ["salaries.xlsx", "notes.txt", ".env", ".env.x", "payroll.csv", "secret1.txt", "secret12.txt",
              "Budget-2026.xlsx", "budget.xlsx", "credentials", "id_rsa.pub", "server.key", "config", "x.kdbx",
              "passwords.json", "my-password-list.csv", ".envrc", "README.md"]  # fmt: skip
    paths = leaves + [f"{d}/{leaf}" for d in names for leaf in leaves]
    assert sum(m.matches(p) for p in paths) > 50
    for p in paths:
        assert m.matches(p) == reference.match_file(p), p


def test_what_can_carry_data_out() -> None:
    plain: dict[str, object] = {"id": "g"}
    assert carries_data(plain, "POST", "/t", 0)  # any method but GET or HEAD
    assert carries_data(plain, "GET", "/t", 10)  # a body
    assert carries_data(plain, "GET", "/t?q=" + "a" * 300, 0)  # a long query
    assert not carries_data(plain, "GET", "/t?page=2", 0)
    assert not carries_data(plain, "HEAD", "/t", 0)
    assert carries_data({"sends_data": True}, "GET", "/t", 0)  # the policy marks the grant
    assert not carries_data({"sends_data": False}, "POST", "/t", 100)
