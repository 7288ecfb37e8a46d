"""The folder on a sandbox host, there and back over SSH, against the real sshd (no VM: the
server's copy is changed by a shell as the server account, as a command in the guest would).

Real: sshd, paramiko, ``paddock remote manifest``/``files`` run by the server account. No fake."""

from __future__ import annotations

import hashlib
import secrets
import shlex
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from paddock.remote import Connection, FolderSync, safe_rel
from paddock.remote.ssh import RemoteError, Result
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


def test_a_guest_swapping_a_folder_for_a_link_mid_sync_reaches_nothing_outside(
    synced: tuple[FolderSync, str], test_host: SshHost
) -> None:
    """The guest can keep a process running in the workspace: here a shell as the server account
    (what the guest's files are on the server) swaps the folder ``d`` for a link to ``..`` (the
    session folder) as fast as it can while the laptop sends and brings back files under ``d``.
    Nothing may be written outside the workspace, and nothing outside it may come back."""
    sync, there = synced
    (sync.folder / "d").mkdir()
    for i in range(20):
        (sync.folder / "d" / f"f{i}.txt").write_text(f"v0 {i}")
    sync.push()
    test_host.shell(f"echo session-secret > {there}/../secret.txt")
    swapper = (
        f"cd {there} && end=$(($(date +%s)+6)); while [ $(date +%s) -lt $end ]; do "
        "mv d d.real 2>/dev/null; ln -s .. d 2>/dev/null; rm -f d; mv d.real d 2>/dev/null; done"
    )
    conn = Connection.open(test_host.host(), test_host.private_key)
    chan = conn.transport.open_session()
    chan.exec_command(swapper)
    try:
        for round_ in range(1, 6):
            for i in range(20):
                (sync.folder / "d" / f"f{i}.txt").write_text(f"v{round_} {i}")
            sync.push(ask=True)
            test_host.shell(
                f"cd {there} && echo guest{round_} > g{round_}.txt"
            )  # not under d: a shell follows links, a guest sees only its workspace
            sync.pull()
    finally:
        chan.recv_exit_status()
        conn.close()
    code, listing = test_host.shell(f"cd {there}/.. && ls -A")
    assert code == 0, listing
    assert sorted(listing.split()) == ["hashes.json", "secret.txt", "workspace"], listing
    assert not list(sync.folder.rglob("secret.txt")), "a file outside the workspace came back"
    assert not [p for p in sync.folder.rglob("*") if p.name.startswith(".paddock")]


def test_a_large_file_travels_in_chunks_both_ways(synced: tuple[FolderSync, str], test_host: SshHost) -> None:
    """A 40 MiB file is streamed (1 MiB at a time, hashed on the way), there and back, intact, with
    its executable bit kept."""
    sync, there = synced
    big = sync.folder / "big.bin"
    big.write_bytes(secrets.token_bytes(40 << 20))
    big.chmod(0o755)
    assert sync.push().sent == ["big.bin"]
    code, out = test_host.shell(f"cd {there} && sha256sum big.bin && printf x >> big.bin && stat -c %a big.bin")
    assert code == 0 and out.split()[0] == hashlib.sha256(big.read_bytes()).hexdigest(), out
    expected = big.read_bytes() + b"x"
    assert sync.pull().changed == ["big.bin"]
    assert big.read_bytes() == expected and big.stat().st_mode & 0o100


def test_a_file_the_server_cannot_read_now_is_neither_removed_here_nor_brought_back(
    synced: tuple[FolderSync, str], test_host: SshHost
) -> None:
    """A file the listing cannot open (here mode 000; in life EMFILE or a race) used to be left out
    of the listing, and the laptop then removed its own copy."""
    sync, there = synced
    (sync.folder / "keep.txt").write_text("the person's file")
    sync.push()
    test_host.shell(f"chmod 000 {there}/keep.txt")
    try:
        back = sync.pull()
    finally:
        test_host.shell(f"chmod 600 {there}/keep.txt")
    assert back.removed == [] and (sync.folder / "keep.txt").read_text() == "the person's file"
    assert any("keep.txt" in r for r in back.refused), back


def test_concurrent_syncs_are_taken_one_at_a_time(synced: tuple[FolderSync, str], test_host: SshHost) -> None:
    """Tool calls run concurrently; their syncs share what both sides held. Several threads
    pushing and pulling at once finish without error, and the folder ends as the server has it."""
    sync, there = synced
    for i in range(10):
        (sync.folder / f"f{i}.txt").write_text(str(i))
    sync.push()
    test_host.shell(f"cd {there} && rm f1.txt f2.txt && echo new > f3.txt")
    with ThreadPoolExecutor(4) as pool:
        for fut in [
            pool.submit(sync.pull if n % 2 else sync.push, **({} if n % 2 else {"ask": False})) for n in range(8)
        ]:
            fut.result()
    sync.pull()
    _code, listing = test_host.shell(f"cd {there} && ls")
    assert sorted(p.name for p in sync.folder.iterdir()) == sorted(listing.split())


def test_a_command_that_writes_much_to_stderr_does_not_stall(test_host: SshHost) -> None:
    """stdout used to be read to its end before stderr: over 2 MiB on stderr filled the channel's
    window and both sides waited for ever (here bounded by the test's timeout)."""
    script = "__import__('os').write(2, bytes(3000000)) and print('done')"  # the "server command" here
    conn = Connection.open(test_host.host(command=f"python3 -c {shlex.quote(script)}"), test_host.private_key)
    results: list[Result] = []
    worker = threading.Thread(target=lambda: results.append(conn.run("load")), daemon=True)
    worker.start()
    worker.join(60)
    conn.close()
    assert results, "the command stalled"
    result = results[0]
    assert result.code == 0 and result.out == b"done\n" and len(result.err) == 3_000_000


def test_a_file_this_computer_cannot_write_is_named_not_a_dropped_connection(
    synced: tuple[FolderSync, str], test_host: SshHost
) -> None:
    """A local error (here a folder without write permission; in life a full disk) is named per
    file in the report; the other files still come back and nothing raises."""
    sync, there = synced
    (sync.folder / "locked").mkdir()
    sync.push()
    test_host.shell(f"cd {there} && mkdir -p locked && echo a > locked/a.txt && echo b > b.txt")
    (sync.folder / "locked").chmod(0o555)
    try:
        back = sync.pull()
    finally:
        (sync.folder / "locked").chmod(0o755)
    assert back.changed == ["b.txt"], back
    assert any(r.startswith("locked/a.txt") for r in back.refused), back


def test_a_file_the_server_marks_executable_comes_back_without_the_bit(
    synced: tuple[FolderSync, str], test_host: SshHost
) -> None:
    """Before #30 a file brought back was made executable here whenever the server said so (#30)."""
    sync, there = synced
    (sync.folder / "notes.txt").write_text("plain")
    (sync.folder / "tool.sh").write_text("#!/bin/sh\n")
    (sync.folder / "tool.sh").chmod(0o755)  # the person's own executable stays executable
    sync.push()
    test_host.shell(f"cd {there} && printf '#!/bin/sh\\nrm -rf ~\\n' > run-me.sh && chmod 755 run-me.sh "
                    "&& echo edited >> notes.txt && chmod 755 notes.txt && echo edited >> tool.sh")  # fmt: skip
    back = sync.pull()
    assert sorted(back.changed) == ["notes.txt", "run-me.sh", "tool.sh"]
    assert (sync.folder / "run-me.sh").stat().st_mode & 0o777 == 0o644
    assert (sync.folder / "notes.txt").stat().st_mode & 0o111 == 0
    assert (sync.folder / "tool.sh").stat().st_mode & 0o777 == 0o755


def test_an_answer_larger_than_its_bound_is_refused_not_read(test_host: SshHost) -> None:
    """A listing is read whole into memory and parsed: before #30 it had no bound (#30)."""
    script = "[__import__('sys').stdout.buffer.write(bytes(1048576)) for _ in range(100)]"  # a 100 MiB "listing"
    conn = Connection.open(test_host.host(command=f"python3 -c {shlex.quote(script)}"), test_host.private_key)
    try:
        with pytest.raises(RemoteError, match="sent more than"):
            conn.run("manifest", "--session", "x")
    finally:
        conn.close()
