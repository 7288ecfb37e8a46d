"""Every VM a test boots leaves its logs on failure (#31), the sandbox host's too: the VMs the
server boots for tests/remote run as its accounts, in their own runtime folders, which the test
user cannot open. The server keeps their run folders (scripts/remote_test_host.sh), and a failed
test here keeps their logs, read as the account over SFTP (tests/remote/conftest.py; the hook
calls ``SshHost.keep_vm_logs`` as this test does).

Real: sshd, the server account's Paddock and VM, SFTP. No fake."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from paddock.sandbox import Sandbox
from tests.remote.conftest import SshHost

pytestmark = [pytest.mark.vm, pytest.mark.timeout(600)]


def test_a_server_vms_logs_are_kept_from_where_only_its_account_reads(test_host: SshHost, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    policy = test_host.policy(tmp_path, test_host.host())
    since = time.time()

    async def run() -> str:
        async with Sandbox.open(folder, policy=policy, host="lab") as sandbox:
            out, _err, result = await sandbox.guest.run(["sh", "-c", "echo hello from the server"])
            assert result.exit_code == 0 and b"hello" in out
            return sandbox.vm.id

    session = asyncio.run(run())
    with pytest.raises(PermissionError):  # the account's runtime folder stays its own
        os.listdir(test_host.runtime())

    kept = test_host.keep_vm_logs(tmp_path / "kept", since=since)
    assert kept, f"no run folder of the server's VM was kept (session {session})"
    account, run_dir = kept[-1].split("/")
    logs = {p.name for p in (tmp_path / "kept" / account / run_dir).iterdir()}
    assert {"qemu.log", "console.log"} <= logs, logs
    assert any(name.startswith("virtiofsd") for name in logs), logs
