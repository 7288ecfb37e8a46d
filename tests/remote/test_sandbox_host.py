"""Sandbox hosts over SSH, against a real OpenSSH server on loopback (tests/remote/conftest.py):
the VM runs as the server account with the installed Paddock there, the guest agent's gRPC rides
the SSH channel, the folder goes there and back over SSH (``paddock remote files``).

Real: sshd, paramiko, the VM and guest agent (on the "server", as another account), the keychain
(gnome-keyring holds the SSH key), the egress gateway on this side. No fake.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shlex
import time
from pathlib import Path

import pytest

from paddock import cli
from paddock.audit import AuditLog
from paddock.core.paths import data_dir
from paddock.guest import ExecOutput
from paddock.policy import effective
from paddock.sandbox import Sandbox, SandboxFailed
from tests.remote.conftest import SshHost

pytestmark = [pytest.mark.vm, pytest.mark.timeout(600)]
SESSIONS = ".local/state/paddock-remote/sessions"
API = "api.example.test"


def _sessions_on(test_host: SshHost, account: str = "paddock-remote") -> list[str]:
    _code, out = test_host.shell(f"ls ~/{SESSIONS} 2>/dev/null || true", account)
    return out.split()


def _search_server(needles: list[bytes]) -> str:
    """A command for the server account: every file it owns or can read in its home and its
    runtime folder, searched for each needle (raw, hex and base64)."""
    import base64

    forms = [f for n in needles for f in (n, n.hex().encode(), base64.b64encode(n))]
    script = (
        "import os,sys,tempfile\n"
        f"forms=[bytes.fromhex(h) for h in {[f.hex() for f in forms]!r}]\n"
        "roots=[os.path.expanduser('~'), f'{tempfile.gettempdir()}/paddock-{os.getuid()}']\n"
        "for root in roots:\n"
        "  for d, _, names in os.walk(root):\n"
        "    for n in names:\n"
        "      p=os.path.join(d,n)\n"
        "      try:\n"
        "        if os.path.islink(p) or not os.path.isfile(p): continue\n"
        "        data=open(p,'rb').read()\n"
        "      except OSError: continue\n"
        "      if any(f in data for f in forms): print('FOUND', p)\n"
        "print('searched')\n"
    )
    return f"python3 -c {shlex.quote(script)}"


def _wait_cleaned(test_host: SshHost, timeout_s: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while (left := _sessions_on(test_host)) and time.monotonic() < deadline:
        time.sleep(1)
    return left


def test_sandbox_exec_on_a_host_brings_the_file_back(
    test_host: SshHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    """``paddock sandbox exec --folder DIR --host NAME -- CMD`` through the real sshd: the command
    reads the person's file on the server and writes one that comes back to the local folder."""
    folder = tmp_path / "work"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "in.txt").write_text("from the laptop\n")
    policy_dir = tmp_path / "etc"
    policy_dir.mkdir()
    test_host.policy(policy_dir, test_host.host())  # writes the managed file
    monkeypatch.setattr(effective, "MANAGED_FILE", policy_dir / "managed-policy.json")
    monkeypatch.setattr(effective, "RECOMMENDED_FILE", policy_dir / "none")
    monkeypatch.setattr(effective, "ROOT_UID", __import__("os").getuid())  # the test user plays the admin
    script = "cat sub/in.txt; hostname; uname -n > /dev/null; echo made-on-the-host > sub/out.txt"
    code = cli.main(["sandbox", "exec", "--quiet", "--folder", str(folder), "--host", "lab", "--", "sh", "-c", script])
    out = capfdbinary.readouterr()
    assert code == 0, out.err.decode(errors="replace")
    assert b"from the laptop" in out.out
    assert (folder / "sub" / "out.txt").read_text() == "made-on-the-host\n"
    assert not [p for p in folder.rglob("*") if ".paddock-" in p.name], "a temporary file was left behind"
    assert _wait_cleaned(test_host) == [], "the server kept the session's folder after it ended"
    subjects = [r["attributes"].get("paddock.policy.subject") for r in AuditLog(data_dir() / "audit").records()]
    assert "run the sandbox on the host lab" in subjects  # where the folder went is in the audit trail


def test_a_changed_host_key_is_refused_before_anything_is_sent(test_host: SshHost, tmp_path: Path) -> None:
    """A server whose key is not the pinned one (replaced, or someone in between) is refused with
    a plain message; the log in is never attempted, so no key and no folder reach it."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "secret.txt").write_text("not for an impostor")
    other = "SHA256:" + "A" * 43
    policy = test_host.policy(tmp_path, test_host.host(host_key=other))
    log_before = test_host.log.read_text()

    async def boot() -> None:
        async with Sandbox.open(folder, policy=policy, host="lab"):
            pass

    with pytest.raises(SandboxFailed, match="did not prove to be the server your organisation named") as info:
        asyncio.run(boot())
    assert other in str(info.value) and test_host.host_key in str(info.value)
    new_log = test_host.log.read_text()[len(log_before) :]
    assert "Accepted publickey" not in new_log and "Failed publickey" not in new_log, new_log
    assert _sessions_on(test_host) == []


def test_dropped_connection_isolation_and_no_secrets_on_the_server(test_host: SshHost, tmp_path: Path) -> None:
    """A connection killed mid-command fails in plain words with the local folder intact, and a new
    session recovers; meanwhile a second account on the server cannot read the session's workspace,
    and no real key and no token signing key is anywhere in the server account's files."""
    from paddock.egress import TokenAuthority, gateway
    from paddock.policy import EgressGrant
    from tests.egress.upstream import Upstream

    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "keep.txt").write_text("the person's work\n")
    real_key = "sk-real-" + secrets.token_hex(12)
    host = test_host.host()
    policy = test_host.policy(tmp_path, host)
    policy.grants = [
        EgressGrant(id="api", host=API, methods=["GET"], credential="cred", credential_header="x-api-key", api="any")
    ]
    upstream = Upstream(tmp_path, API)  # stands for the granted API, on this computer's loopback
    gateway.LOOPBACK_UPSTREAMS[API], gateway.UPSTREAM_CA = f"127.0.0.1:{upstream.port}", upstream.ca

    async def scenario() -> None:
        sandbox = await Sandbox.boot(folder, policy=policy, host="lab", secrets={"cred": real_key})
        try:
            assert sandbox.gateway is not None and sandbox.token is not None  # egress stays here
            # The remote guest's only exit: the channel back to this computer's gateway, which
            # attaches the real key here.
            fetch = "import os,urllib.request as u; print(u.urlopen('https://" + API + "/v1/x', timeout=30).status)"
            out, err, _ = await sandbox.guest.run(["python3", "-c", fetch], timeout_s=60)
            assert out.strip() == b"200", err
            assert upstream.hits and upstream.hits[-1]["headers"]["x-api-key"] == real_key
            # Isolation: the other account cannot list or read this session's workspace.
            _code, out = await asyncio.to_thread(
                test_host.shell,
                f"ls ~paddock-remote/{SESSIONS}/{sandbox.vm.id}/workspace; "
                f"cat ~paddock-remote/{SESSIONS}/{sandbox.vm.id}/workspace/keep.txt",
                "paddock-remote2",
            )
            assert "the person's work" not in out and re.search("Permission denied", out), out
            # No secret on the server: the real key, the signing key, the boot key.
            _code, mode = await asyncio.to_thread(test_host.shell, f"stat -c %a ~/{SESSIONS}/{sandbox.vm.id}")
            assert mode.strip() == "700", mode
            # The search reaches the session's files (it finds the folder's own words there) ...
            _code, out = await asyncio.to_thread(test_host.shell, _search_server([b"the person's work"]))
            assert f"{sandbox.vm.id}/workspace/keep.txt" in out, out
            # ... and finds no real key, no token signing key, no session token.
            needles = [real_key.encode(), TokenAuthority()._key(), sandbox.token.value.encode()]
            _code, out = await asyncio.to_thread(test_host.shell, _search_server(needles))
            assert out.strip().endswith("searched"), out
            assert "FOUND" not in out, f"a secret is on the server: {out}"
            # Kill the connection mid-command (as a network that goes away would).
            events = sandbox.exec(["sh", "-c", "echo changed > keep.txt.new; echo started; sleep 60"])
            async for ev in events:
                if isinstance(ev, ExecOutput) and b"started" in ev.data:
                    break
            sandbox.vm.connection.transport.sock.close()  # type: ignore[union-attr]
            with pytest.raises(SandboxFailed, match="connection to the sandbox host 'lab' dropped"):
                async for _ in events:
                    pass
        finally:
            await sandbox.close()
        assert (folder / "keep.txt").read_text() == "the person's work\n"
        assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
        # What a session killed outright would leave (its folder, its lock held by nobody) ...
        stale = f"~/{SESSIONS}/deadbeefdeadbeef"
        made = f"mkdir -p {stale}/workspace && touch {stale}.lock {stale}/workspace/x"
        await asyncio.to_thread(test_host.shell, made)
        # Recovered: a new session on the same host works, with the folder as it was ...
        async with Sandbox.open(folder, policy=policy, host="lab") as again:
            assert "deadbeefdeadbeef" not in await asyncio.to_thread(_sessions_on, test_host)  # ... and swept
            out, _err, result = await again.guest.run(["cat", "/workspace/keep.txt"])
            assert result.exit_code == 0 and out == b"the person's work\n"

    try:
        asyncio.run(scenario())
    finally:
        gateway.LOOPBACK_UPSTREAMS.clear()
        gateway.UPSTREAM_CA = None
        upstream.close()
    assert _wait_cleaned(test_host) == [], "the dropped session's folder was not cleaned up on the server"


def test_a_full_host_refuses_another_session(test_host: SshHost, tmp_path: Path) -> None:
    """The session count is the server's to hold: with its one slot taken (a process holding the
    slot's lock, as a running session does), a new session is refused in plain words, nothing boots."""
    folder = tmp_path / "work"
    folder.mkdir()
    slots = "~/.local/state/paddock-remote/slots"
    _code, holder = test_host.shell(
        f"mkdir -p {slots} && cd {slots} && (setsid flock 0.lock sleep 120 </dev/null >/dev/null 2>&1 & echo $!)"
    )
    policy = test_host.policy(tmp_path, test_host.host(sessions=1))

    async def boot() -> None:
        async with Sandbox.open(folder, policy=policy, host="lab"):
            pass

    try:
        with pytest.raises(SandboxFailed, match="already running its 1 sessions"):
            asyncio.run(boot())
        assert _sessions_on(test_host) == []
    finally:
        test_host.shell(f"kill -- -{int(holder)} || true")


def test_a_read_only_folder_is_sent_but_never_brought_back(test_host: SshHost, tmp_path: Path) -> None:
    """The policy makes the folder read-only: it goes to the host, but whatever the server's copy
    becomes (here changed by a shell as the server account, what a compromised host could do) is
    not brought back into the person's folder."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "report.txt").write_text("the person's\n")
    policy = test_host.policy(tmp_path, test_host.host())
    policy.read_only.append(folder.resolve())

    async def run() -> None:
        async with Sandbox.open(folder, policy=policy, host="lab") as sandbox:
            assert sandbox.read_only
            there = f"~/{SESSIONS}/{sandbox.vm.id}/workspace"  # type: ignore[attr-defined]
            code, out = await asyncio.to_thread(
                test_host.shell, f"cat {there}/report.txt && echo changed > {there}/report.txt && echo new > {there}/n"
            )
            assert code == 0 and "the person's" in out, out
            assert await sandbox.sync(back=True) is None

    asyncio.run(run())
    assert (folder / "report.txt").read_text() == "the person's\n"
    assert sorted(p.name for p in folder.iterdir()) == ["report.txt"]


def test_a_session_on_a_host_is_tainted_from_the_start(
    test_host: SshHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a sandbox host the folder is a copy there: no change guard here sees what the guest
    opens (#32). So the session counts as tainted from its start: a request that can carry data
    out is held (what arrived upstream proves it), one that cannot still goes. Before: the POST
    went through unseen."""
    from paddock.egress import gateway
    from paddock.policy import EgressGrant
    from tests.egress.upstream import Upstream

    folder = tmp_path / "work"
    folder.mkdir()
    (folder / ".env").write_text("DB_PASSWORD=not-real\n")
    policy = test_host.policy(tmp_path, test_host.host())
    policy.grants = [EgressGrant(id="api", host=API, methods=["GET", "POST"], path_pattern="/*")]
    upstream = Upstream(tmp_path, API)
    monkeypatch.setitem(gateway.LOOPBACK_UPSTREAMS, API, f"127.0.0.1:{upstream.port}")
    monkeypatch.setattr(gateway, "UPSTREAM_CA", upstream.ca)
    send = (
        "import sys, urllib.request as u, urllib.error as e\n"
        "body = open('/workspace/.env', 'rb').read() if sys.argv[1] == 'POST' else None\n"
        f"req = u.Request('https://{API}/v1/x', data=body, method=sys.argv[1])\n"
        "try:\n    print(u.urlopen(req, timeout=30).status)\n"
        "except e.HTTPError as x:\n    print(x.code, x.read()[:200])\n"
    )

    async def scenario() -> None:
        async with Sandbox.open(folder, policy=policy, host="lab") as sandbox:
            assert sandbox.reads_unwatched and sandbox.sensitive is None
            out, err, _ = await sandbox.guest.run(["python3", "-c", send, "POST"], timeout_s=60)
            assert out.startswith(b"403") and b"held" in out, out + err
            out, err, _ = await sandbox.guest.run(["python3", "-c", send, "GET"], timeout_s=60)
            assert out.strip() == b"200", out + err

    try:
        asyncio.run(scenario())
    finally:
        upstream.close()
    assert [h["method"] for h in upstream.hits] == ["GET"], "data left a session whose reads were not seen"
    assert _wait_cleaned(test_host) == []
