"""The folder on a sandbox host, there and back over SFTP, against the real sshd (no VM: the
server's copy is changed by a shell as the server account, as a command in the guest would).

Real: sshd, paramiko's SFTP, ``paddock remote manifest`` run by the server account. No fake."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from paddock.remote import Connection, FolderSync, safe_rel
from tests.remote.conftest import SshHost

SESSIONS = ".local/state/paddock-remote/sessions"


@pytest.fixture
def synced(test_host: SshHost, tmp_path: Path) -> Iterator[tuple[FolderSync, str]]:
    session = secrets.token_hex(8)
    code, out = test_host.shell(f"mkdir -p ~/{SESSIONS}/{session}/workspace && cd ~/{SESSIONS}/{session} && pwd")
    assert code == 0, out
    folder = tmp_path / "work"
    folder.mkdir()
    conn = Connection.open(test_host.host(), test_host.private_key)
    sync = FolderSync(conn, session, folder, out.strip() + "/workspace")
    try:
        yield sync, f"~/{SESSIONS}/{session}/workspace"
    finally:
        sync.close()
        conn.close()
        test_host.shell(f"rm -rf ~/{SESSIONS}/{session}")


def test_only_what_differs_travels_and_changes_come_back(synced: tuple[FolderSync, str], test_host: SshHost) -> None:
    sync, there = synced
    (sync.folder / "a").mkdir()
    (sync.folder / "a" / "one.txt").write_text("one")
    (sync.folder / "two.txt").write_text("two")
    first = sync.push()
    assert sorted(first.sent) == ["a/one.txt", "two.txt"]
    (sync.folder / "two.txt").write_text("two, edited")
    assert sync.push().sent == ["two.txt"]  # by hash: the unchanged file stays put
    test_host.shell(f"cd {there} && echo new > a/new.txt && rm two.txt && echo changed > a/one.txt")
    back = sync.pull()
    assert sorted(back.changed) == ["a/new.txt", "a/one.txt"] and back.removed == ["two.txt"]
    assert (sync.folder / "a" / "one.txt").read_text() == "changed\n"
    assert not (sync.folder / "two.txt").exists()
    assert not [p for p in sync.folder.rglob("*") if p.name.startswith(".paddock")]


def test_a_file_changed_here_meanwhile_is_kept_and_reported(synced: tuple[FolderSync, str], test_host: SshHost) -> None:
    sync, there = synced
    (sync.folder / "report.txt").write_text("first draft")
    sync.push()
    test_host.shell(f"echo the sandbox version > {there}/report.txt")
    (sync.folder / "report.txt").write_text("the person's edit")
    back = sync.pull()
    assert back.conflicts == ["report.txt"] and back.changed == []
    assert (sync.folder / "report.txt").read_text() == "the person's edit"


def test_names_and_links_from_the_server_cannot_reach_outside_the_folder(
    synced: tuple[FolderSync, str], test_host: SshHost, tmp_path: Path
) -> None:
    """The guest controls the server's copy: a link to elsewhere there is not followed, a link
    planted here is not written through, and a name that is not a plain path is refused."""
    sync, there = synced
    outside = tmp_path / "outside"
    outside.mkdir()
    (sync.folder / "sub").symlink_to(outside)  # the person's own link, or one left earlier
    sync.push()
    test_host.shell(
        f"cd {there} && ln -s /etc etc-link && mkdir -p sub && echo planted > sub/x.txt && "
        "printf bad > \"$(printf 'new\\nline')\""
    )
    back = sync.pull()
    assert not (outside / "x.txt").exists(), "a file was written through a link"
    assert "sub/x.txt" in " ".join(back.refused), back
    assert any("new" in r for r in back.refused), back
    assert not (sync.folder / "etc-link").exists()


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../b", "a//b", "./a", "", "a\x00b", "a\nb", "x" * 300])
def test_safe_rel_refuses_what_is_not_a_plain_path(name: str) -> None:
    assert safe_rel(name) is None


def test_safe_rel_keeps_a_plain_path() -> None:
    assert safe_rel("docs/Q3 report (final).xlsx") == "docs/Q3 report (final).xlsx"
