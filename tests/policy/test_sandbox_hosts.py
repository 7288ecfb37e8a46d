"""Sandbox hosts in policy: only the managed tier names them; each field is checked with a plain
error naming the file and the field; which hosts serve which person."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from paddock.policy import PolicyError, load
from paddock.remote import assigned

KEY = "SHA256:" + "Ab3/" * 10 + "xyz"
HOST: dict[str, Any] = {"name": "lab-1", "address": "sandbox.example.org", "host_key": KEY, "account": "paddock"}


def _load(tmp_path: Path, tier: str, data: dict[str, Any]) -> Any:
    path = tmp_path / f"{tier}.json"
    path.write_text(json.dumps({"version": 1, **data}))
    files = {"managed": tmp_path / "m", "recommended": tmp_path / "r", "user": tmp_path / "u", tier: path}
    return load(**files, admin_uid=os.getuid())


def test_the_managed_tier_names_hosts(tmp_path: Path) -> None:
    policy = _load(tmp_path, "managed", {"sandbox_hosts": [HOST, {**HOST, "name": "lab-2", "who": ["ana"]}]})
    assert [h.name for h in policy.sandbox_hosts] == ["lab-1", "lab-2"]
    first = policy.sandbox_hosts[0]
    assert (first.port, first.sessions, first.command, first.who) == (22, 4, "paddock", "no-virtualisation")
    assert [h.name for h in assigned(policy, user="ana", virtualises=True)] == ["lab-2"]
    assert [h.name for h in assigned(policy, user="bo", virtualises=False)] == ["lab-1"]
    assert assigned(policy, user="bo", virtualises=True) == []
    assert next((k, t) for k, _v, t in policy.describe() if k == "sandbox_hosts") == ("sandbox_hosts", "managed")


@pytest.mark.parametrize("tier", ["user", "recommended"])
def test_only_the_managed_tier_may_name_hosts(tmp_path: Path, tier: str) -> None:
    with pytest.raises(PolicyError, match="sandbox_hosts may be set only in the managed policy"):
        _load(tmp_path, tier, {"sandbox_hosts": [HOST]})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host_key": "ab:cd:ef"}, "sandbox_hosts.0.host_key: .*SHA256 fingerprint"),
        ({"address": "-oProxyCommand=x"}, "sandbox_hosts.0.address: .*host name or an IP address"),
        ({"account": "Root Account"}, "sandbox_hosts.0.account: .*user name"),
        ({"command": "paddock; rm -rf ~"}, "sandbox_hosts.0.command: .*no shell operators"),
        ({"sessions": 0}, "sandbox_hosts.0.sessions"),
        ({"port": 70000}, "sandbox_hosts.0.port"),
        ({"who": "everyone"}, "sandbox_hosts.0.who"),
        ({"colour": "blue"}, "sandbox_hosts.0.colour: unknown field"),
    ],
)
def test_a_bad_host_is_a_plain_error(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        _load(tmp_path, "managed", {"sandbox_hosts": [{**HOST, **change}]})


def test_two_hosts_with_one_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="two sandbox hosts are called 'lab-1'"):
        _load(tmp_path, "managed", {"sandbox_hosts": [HOST, HOST]})
