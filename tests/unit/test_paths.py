"""The person's own folders: data, cache and runtime are theirs alone (mode 0700)."""

from __future__ import annotations

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
