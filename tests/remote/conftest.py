"""A real OpenSSH server on loopback that plays the sandbox host, logging into the accounts
``paddock-remote`` and ``paddock-remote2`` (made, with the server, by scripts/remote_test_host.sh,
which scripts/test.sh runs as root before handing the suite to the test user).

The server keeps its VMs' run folders (``PADDOCK_KEEP_RUN_DIR``, in a temporary folder of the
server's own: ``SshHost.runtime``); when a test here fails, the logs of the server VMs of the
test (and of those still running) are kept in ``PADDOCK_TEST_ARTIFACTS/<test>/<account>/vm-<id>/``,
read as the account over SFTP (``tests.framework.vms.copy_server_logs``)."""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from paddock.credentials import Keychain
from paddock.policy import EffectivePolicy, SandboxHost, load
from paddock.remote import Connection
from paddock.vm import GuestImage
from tests.framework import parallel
from tests.framework.fixtures import ARTIFACTS
from tests.framework.vms import copy_server_logs

SSHD = Path(os.environ.get("PADDOCK_TEST_SSHD") or "/tmp/paddock-test-sshd")  # scripts/test.sh: its run's own
KEY_ENTRY = "lab-ssh-key"


@dataclass
class SshHost:
    port: int
    host_key: str
    private_key: str
    image: GuestImage
    log: Path
    accounts: tuple[str, ...] = ("paddock-remote",)

    def host(self, name: str = "lab", account: str = "paddock-remote", **kw: object) -> SandboxHost:
        command = f"env PADDOCK_GUEST_IMAGE={shlex.quote(str(self.image.root))} {sys.executable} -m paddock.cli"
        fields: dict[str, object] = {
            "name": name, "address": "127.0.0.1", "port": self.port, "host_key": self.host_key,
            "account": account, "sessions": 2, "command": command, "key": KEY_ENTRY, "who": ["nobody"],
        }  # fmt: skip
        fields.update(kw)
        return SandboxHost.model_validate(fields)

    def policy(self, tmp: Path, *hosts: SandboxHost) -> EffectivePolicy:
        """A managed policy naming ``hosts``, read through the real loader."""
        import json

        managed = tmp / "managed-policy.json"
        managed.write_text(json.dumps({"version": 1, "sandbox_hosts": [h.model_dump() for h in hosts]}))
        return load(managed=managed, recommended=tmp / "none", user=tmp / "none-user", admin_uid=os.getuid())

    def shell(self, command: str, account: str = "paddock-remote") -> tuple[int, str]:
        """Run a shell command on the server as ``account`` (what a person there could do)."""
        conn = Connection.open(self.host(account=account), self.private_key)
        try:
            chan = conn.transport.open_session()
            chan.exec_command(command)
            out = chan.makefile("rb").read().decode(errors="replace")
            out += chan.makefile_stderr("rb").read().decode(errors="replace")
            return chan.recv_exit_status(), out
        finally:
            conn.close()

    def runtime(self, account: str = "paddock-remote") -> str:
        """The account's runtime folder under this server (its sessions' TMPDIR, which
        scripts/remote_test_host.sh sets): its VMs' run folders, kept after they stop."""
        return f"{SSHD}/tmp/paddock-{pwd.getpwnam(account).pw_uid}"

    def keep_vm_logs(self, dest: Path, *, since: float) -> list[str]:
        """The logs of the VMs each account booted since ``since`` (or still runs), read as the
        account over SFTP, into ``dest/<account>/vm-<id>/``; which were kept."""
        kept = []
        for account in self.accounts:
            conn = Connection.open(self.host(account=account), self.private_key)
            try:
                files = paramiko.SFTPClient.from_transport(conn.transport)
                assert files is not None
                with files:
                    runs = copy_server_logs(files, self.runtime(account), dest / account, since=since)
                kept += [f"{account}/{run}" for run in runs]
            finally:
                conn.close()
        return kept


_host: SshHost | None = None  # the server, once a test has asked for it
_since = 0.0  # when the current test's set-up began


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    global _since
    _since = time.time()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield  # the test's sandboxes are closed: their server VMs stopped (or left running)
    failed = any(getattr(getattr(item, f"rep_{when}", None), "failed", False) for when in ("setup", "call"))
    if failed and _host is not None:
        try:
            _host.keep_vm_logs(ARTIFACTS / parallel.folder_name(item.nodeid), since=_since)
        except Exception as exc:  # noqa: BLE001 - the test's own failure is the news; say why these are missing
            warnings.warn(f"the sandbox host's VM logs could not be kept: {exc}", stacklevel=1)


@pytest.fixture(scope="session")
def test_host(guest_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHost]:
    info = SSHD / "info"
    if not info.exists():
        if os.environ.get("CI"):
            pytest.fail("the test sshd is not running (scripts/test.sh starts it with scripts/remote_test_host.sh)")
        pytest.skip("needs the test sshd: run scripts/remote_test_host.sh start as root")
    fields = dict(line.split("=", 1) for line in info.read_text().splitlines() if "=" in line)
    keydir = tmp_path_factory.mktemp("ssh")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keydir / "id")], check=True)
    public = (keydir / "id.pub").read_text()
    for account in fields["accounts"].split():
        (SSHD / "keys" / account).write_text(public)
    private = (keydir / "id").read_text()
    (keydir / "id").unlink()  # from here on only in the keychain
    Keychain().set(KEY_ENTRY, private)
    global _host
    accounts = tuple(fields["accounts"].split())
    _host = SshHost(int(fields["port"]), fields["host_key"], private, guest_image, SSHD / "sshd.log", accounts)
    yield _host  # left set: the last test's failure is collected after this fixture ends
    Keychain().remove(KEY_ENTRY)
