"""Sandbox hosts over SSH beside a sandbox on this computer: exec round trip and folder sync.

    scripts/remote_test_host.sh start        (as root: the test sshd on loopback, as in tests/remote)
    .venv/bin/python -m benchmarks.remote [--execs 50] [--mb 32]   (as the test user, in a keyring session)

Figures (medians): exec of ``true`` here (the gRPC call, and through ``Sandbox.exec``); the same
over the SSH channel (gRPC relayed by
``paddock remote connect``); a whole ``Sandbox.exec`` there, which sends the folder's changes
before and brings changes back after; the first send of a folder of ``--mb`` MiB (``paddock remote files``, by hash);
bringing back a file of that size the command wrote on the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from paddock.credentials import Keychain
from paddock.policy import EffectivePolicy, SandboxHost
from paddock.sandbox import Sandbox

SSHD = Path(os.environ.get("PADDOCK_TEST_SSHD") or "/tmp/paddock-test-sshd")  # scripts/test.sh: its run's own
KEY_ENTRY = "bench-ssh-key"


def _host(image_root: str) -> SandboxHost:
    fields = dict(line.split("=", 1) for line in (SSHD / "info").read_text().splitlines() if "=" in line)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{tmp}/id"], check=True)
        (SSHD / "keys" / "paddock-remote").write_text(Path(f"{tmp}/id.pub").read_text())
        Keychain().set(KEY_ENTRY, Path(f"{tmp}/id").read_text())
    command = f"env PADDOCK_GUEST_IMAGE={image_root} {sys.executable} -m paddock.cli"
    return SandboxHost(
        name="bench", address="127.0.0.1", port=int(fields["port"]), host_key=fields["host_key"],
        account="paddock-remote", sessions=2, command=command, key=KEY_ENTRY, who=["nobody"],
    )  # fmt: skip


async def _rtt(sandbox: Sandbox, n: int, *, whole: bool) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        if whole:
            async for _ev in sandbox.exec(["true"]):
                pass
        else:
            await sandbox.guest.run(["true"])
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


async def measure(execs: int, mb: int) -> dict[str, Any]:
    from paddock.vm import find_image

    image = find_image()
    host = _host(str(image.root))
    policy = EffectivePolicy(sandbox_hosts=[host])
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "work"
        folder.mkdir()
        async with Sandbox.open(folder, policy=EffectivePolicy()) as here:
            out["exec_rtt_local_ms"] = await _rtt(here, execs, whole=False)
            out["exec_rtt_local_sandbox_exec_ms"] = await _rtt(here, execs, whole=True)
        for i in range(mb):
            (folder / f"f{i:03}.bin").write_bytes(os.urandom(1 << 20))
        t0 = time.perf_counter()
        async with Sandbox.open(folder, policy=policy, host="bench") as there:
            out["boot_remote_with_first_send_s"] = round(time.perf_counter() - t0, 1)
            out["exec_rtt_remote_channel_ms"] = await _rtt(there, execs, whole=False)
            out["exec_rtt_remote_with_sync_ms"] = await _rtt(there, max(5, execs // 5), whole=True)
            report = await there.sync(back=False)
            assert report is not None and not report.sent
            for i in range(mb):  # the whole folder again, as new content
                (folder / f"f{i:03}.bin").write_bytes(os.urandom(1 << 20))
            t0 = time.perf_counter()
            report = await there.sync(back=False)
            out["push_mbps"] = round(mb / (time.perf_counter() - t0), 1)
            cmd = f"head -c {mb << 20} /dev/urandom > back.bin"
            await there.guest.run(["sh", "-c", cmd])
            t0 = time.perf_counter()
            report = await there.sync(back=True)
            assert report is not None and report.changed == ["back.bin"], report
            out["pull_mbps"] = round(mb / (time.perf_counter() - t0), 1)
    Keychain().remove(KEY_ENTRY)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--execs", type=int, default=50)
    parser.add_argument("--mb", type=int, default=32)
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    ns = parser.parse_args()
    figures = asyncio.run(measure(ns.execs, ns.mb))
    text = json.dumps({"execs": ns.execs, "mb": ns.mb, **figures}, indent=2)
    print(text)
    if ns.out:
        ns.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
