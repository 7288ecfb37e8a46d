"""The person's own folders: data, cache and runtime are theirs alone (mode 0700)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from paddock.core.paths import cache_dir, data_dir, runtime_dir


def test_data_cache_and_runtime_folders_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PADDOCK_DATA_DIR", "PADDOCK_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    (tmp_path / "cache" / "paddock").mkdir(parents=True, mode=0o755)  # left open by an older version
    (tmp_path / "cache" / "paddock").chmod(0o755)
    for folder in (data_dir(), cache_dir(), runtime_dir()):
        assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert data_dir() == tmp_path / "share" / "paddock"


@pytest.mark.parametrize("xdg", [True, False], ids=["xdg-set", "xdg-unset"])
def test_the_folders_are_where_they_always_were(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, xdg: bool) -> None:
    """platformdirs finds the same folders the hand-written XDG rules did, so nothing a person
    already has (conversations, trust, restore points, saved sandboxes) is left behind."""
    for var in ("PADDOCK_DATA_DIR", "PADDOCK_CACHE_DIR", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if xdg:
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def before(var: str, default: str) -> Path:  # what paddock.core.paths computed by hand until now
        return Path(os.environ.get(var) or str(Path.home() / default)) / "paddock"

    assert data_dir() == before("XDG_DATA_HOME", ".local/share")
    assert cache_dir() == before("XDG_CACHE_HOME", ".cache")
    assert data_dir() == (tmp_path / "share" if xdg else tmp_path / "home" / ".local" / "share") / "paddock"
    monkeypatch.setenv("PADDOCK_DATA_DIR", str(tmp_path / "elsewhere" / "data"))
    monkeypatch.setenv("PADDOCK_CACHE_DIR", str(tmp_path / "elsewhere" / "cache"))
    assert (data_dir(), cache_dir()) == (tmp_path / "elsewhere" / "data", tmp_path / "elsewhere" / "cache")
    assert stat.S_IMODE(data_dir().stat().st_mode) == 0o700


def test_the_log_scrubs_keys_and_tokens() -> None:
    import secrets as _secrets

    from paddock.core.logs import redact, scrub

    key = f"registered-{_secrets.token_hex(12)}"
    redact(key)
    line = scrub(
        f"key {key}; sk-ant-api03-{'x' * 30}; proxy http://paddock:tok.e30.abc123@127.0.0.1:3128; "
        "Authorization: Bearer abcdefghijklmnop; x-api-key=qwertyuiop"
    )
    for secret in (key, "x" * 30, "tok.e30.abc123", "abcdefghijklmnop", "qwertyuiop"):
        assert secret not in line, line
    assert line.count("[redacted]") >= 5
