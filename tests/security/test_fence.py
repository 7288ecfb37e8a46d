"""Tries to break the fence of DESIGN.md and checks the host afterwards.

Each test asserts on the environment (a canary file's content never reached
the guest, a host listener received nothing, the host file is unchanged),
never on what a command printed alone.
"""

from __future__ import annotations

import os
import socket
import stat
import threading

import pytest

from paddock.guest import GuestDenied, GuestError, PathOutsideWorkspace
from tests.conftest import Booted

pytestmark = pytest.mark.vm

CANARY = "CANARY-OUTSIDE-WORKSPACE"


def _everything_the_guest_can_read(booted: Booted, where: str) -> str:
    out, err, _ = booted.sh(f"cat {where} 2>&1; ls -la {where} 2>&1")
    return out + err


def test_guest_root_sees_no_host_file_outside_the_shares(booted_as_guest_root: Booted) -> None:
    booted = booted_as_guest_root
    marker = booted.outside / f"paddock-host-marker-{os.getpid()}"
    marker.write_text("host file")
    try:
        out, _, _ = booted.sh(
            f"find / -path /proc -prune -o -path /sys -prune -o -name {marker.name} -print 2>/dev/null; "
            f"cat /proc/mounts"
        )
        assert marker.name not in out
        mounts = [line.split()[:3] for line in out.splitlines() if "virtiofs" in line]
        assert sorted(m[0] for m in mounts) == ["profile", "workspace"], mounts
    finally:
        marker.unlink()


@pytest.mark.parametrize(
    "path",
    [
        "../outside/canary.txt",
        "/workspace/../outside/canary.txt",
        "../../outside/canary.txt",
        "/workspace/../../outside/canary.txt",
    ],
)
def test_dotdot_from_the_workspace_reaches_nothing(booted: Booted, path: str) -> None:
    assert CANARY not in _everything_the_guest_can_read(booted, path)


def test_symlinks_made_on_the_host_do_not_lead_out(booted: Booted) -> None:
    canary = booted.outside / "canary.txt"
    (booted.workspace / "abs-link").symlink_to(canary)
    rel = os.path.relpath(canary, booted.workspace)
    (booted.workspace / "rel-link").symlink_to(rel)
    (booted.workspace / "dir-link").symlink_to(booted.outside)
    try:
        for link in ("abs-link", "rel-link", "dir-link/canary.txt"):
            assert CANARY not in _everything_the_guest_can_read(booted, link)
            with pytest.raises((PathOutsideWorkspace, GuestError)):
                data, _, _ = booted.engine.run(booted.sandbox.guest.read_file(link))
                assert CANARY.encode() not in data
    finally:
        for name in ("abs-link", "rel-link", "dir-link"):
            (booted.workspace / name).unlink()


def test_symlinks_made_in_the_guest_are_not_followed_by_the_file_api(booted: Booted) -> None:
    out, _, code = booted.sh("ln -s /etc/passwd guest-abs && ln -s ../../../../etc/shadow guest-rel && echo ok")
    assert code == 0, out
    guest = booted.sandbox.guest
    try:
        for link in ("guest-abs", "guest-rel"):
            with pytest.raises(PathOutsideWorkspace):
                booted.engine.run(guest.read_file(link))
        # Writing to a link replaces the link; the target (the guest's own /etc/passwd) is untouched.
        booted.engine.run(guest.write_file("guest-abs", b"replaced"))
        assert (booted.workspace / "guest-abs").read_bytes() == b"replaced"
        assert not (booted.workspace / "guest-abs").is_symlink()
        assert "root:" in booted.sh("cat /etc/passwd")[0]
    finally:
        for name in ("guest-abs", "guest-rel"):
            (booted.workspace / name).unlink(missing_ok=True)


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside/canary.txt", "a/../../outside/canary.txt", "x\x00y"])
def test_file_api_refuses_paths_outside_the_workspace(booted: Booted, path: str) -> None:
    guest = booted.sandbox.guest
    with pytest.raises(PathOutsideWorkspace):
        booted.engine.run(guest.read_file(path))
    with pytest.raises(PathOutsideWorkspace):
        booted.engine.run(guest.write_file(path, b"escaped"))
    assert (booted.outside / "canary.txt").read_text() == CANARY + "\n"
    assert not (booted.outside / "escaped").exists()


def test_profile_is_read_only_even_for_root_in_the_guest(booted_as_guest_root: Booted) -> None:
    booted = booted_as_guest_root
    before = {p.name: p.read_bytes() for p in booted.profile.iterdir()}
    out, _, _ = booted.sh("cat /home/agent/.claude/CLAUDE.md")
    assert out == "profile instructions\n"
    script = (
        "echo poisoned > /home/agent/.claude/CLAUDE.md; "
        "mount -o remount,rw /home/agent/.claude; "
        "echo poisoned > /home/agent/.claude/CLAUDE.md; echo new > /home/agent/.claude/new.md; "
        "umount /home/agent/.claude; mkdir -p /tmp/p; mount -t virtiofs profile /tmp/p; "
        "echo poisoned > /tmp/p/CLAUDE.md; echo new > /tmp/p/new.md; true"
    )
    booted.sh(script)
    after = {p.name: p.read_bytes() for p in booted.profile.iterdir()}
    assert after == before, "the guest changed the read-only agent profile on the host"


def _listen() -> tuple[socket.socket, list[str]]:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen(8)
    hits: list[str] = []

    def accept() -> None:
        while True:
            try:
                conn, addr = srv.accept()
            except OSError:
                return
            hits.append(str(addr))
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return srv, hits


def test_guest_has_no_network_to_the_host_or_beyond(booted: Booted) -> None:
    srv, hits = _listen()
    port = srv.getsockname()[1]
    try:
        probe = (
            "import socket\n"
            "for host in ('127.0.0.1', '10.0.2.2', '10.0.2.3', '192.168.1.1', '1.1.1.1', '169.254.169.254'):\n"
            "    try:\n"
            f"        socket.create_connection((host, {port}), timeout=2).close(); print('CONNECTED', host)\n"
            "    except OSError as e:\n"
            "        print('refused', host, e)\n"
            "try:\n"
            "    print('RESOLVED', socket.getaddrinfo('example.com', 80))\n"
            "except OSError as e:\n"
            "    print('no dns', e)\n"
        )
        out, err, _ = booted.run(["python3", "-c", probe], timeout_s=60)
        assert "CONNECTED" not in out and "RESOLVED" not in out, out + err
        links, _, _ = booted.sh("ls /sys/class/net")
        assert links.split() == ["lo"], f"the guest has a network interface: {links}"
    finally:
        srv.close()
    assert hits == [], f"the host listener was reached from the guest: {hits}"


def test_agent_socket_is_owner_only(booted: Booted) -> None:
    sock = booted.sandbox.vm.agent_socket
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(sock.parent.parent.stat().st_mode) == 0o700


def test_calls_without_this_boots_key_are_refused(booted: Booted) -> None:
    """Over the real channel: a missing or wrong boot key, or a second Claim, is refused."""
    guest = booted.sandbox.guest
    rightful = guest._metadata

    async def attempts() -> list[str]:
        outcomes = []
        for metadata in ((), (("paddock-boot-key", "00" * 32),), (("paddock-boot-key", rightful[0][1][:-2]),)):
            guest._metadata = metadata  # type: ignore[assignment]
            for call in (guest.info(), guest.read_file("x"), guest.run(["touch", "intruder-was-here"])):
                try:
                    await call
                    outcomes.append("ALLOWED")
                except GuestDenied:
                    outcomes.append("denied")
        guest._metadata = rightful
        try:
            await guest.claim(b"k" * 32)
            outcomes.append("ALLOWED")
        except GuestDenied:
            outcomes.append("denied")
        return outcomes

    try:
        outcomes = booted.engine.run(attempts(), timeout=60)
    finally:
        guest._metadata = rightful
    assert outcomes == ["denied"] * 10
    assert not (booted.workspace / "intruder-was-here").exists()
    assert booted.run(["true"])[2] == 0  # the rightful key still works
