"""Cold boots in a row: how many reach a ready agent, how long they take, and why any did not.

    .venv/bin/python -m benchmarks.boots [--boots 50] [--out FILE]

Each boot is a whole sandbox on an empty folder (QEMU, both shares, the guest agent answering
one command), booted cold (no saved sandbox), then closed. A boot that fails is counted with the
last lines of the guest's console (a kernel panic shows there), and the run goes on. Prints a
Markdown table with the QEMU and virtiofsd versions, so runs on two releases can be set side by
side (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from paddock.sandbox import SNAPSHOT_ENV, Sandbox
from paddock.vm.host import HostTools


def _release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


async def _run(n: int, folder: Path) -> dict[str, Any]:
    os.environ[SNAPSHOT_ENV] = "0"
    ready: list[float] = []
    failures: list[str] = []
    for i in range(n):
        t0 = time.monotonic()
        try:
            sandbox = await Sandbox.boot(folder)
        except Exception as exc:  # noqa: BLE001 - a failed boot is the figure being measured
            failures.append(f"boot {i + 1}: {exc}")
            continue
        try:
            await sandbox.guest.run(["true"])
            ready.append(time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001
            failures.append(f"boot {i + 1}, first command: {exc}")
        finally:
            await sandbox.close()
    tools = HostTools.find()
    return {
        "release": _release(),
        "qemu": tools.qemu_version(),
        "virtiofsd": tools.sharing.label,
        "boots": n,
        "ready": len(ready),
        "failed": len(failures),
        "failures": failures,
        "cold_first_command_s_median": round(statistics.median(ready), 3) if ready else None,
        "cold_first_command_s_max": round(max(ready), 3) if ready else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boots", type=int, default=50, help="cold boots in a row (default 50)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paddock-boots-") as tmp:
        result = asyncio.run(_run(ns.boots, Path(tmp)))
    print("| release | QEMU | folder sharing | boots | ready | failed | cold boot → first command, median (max) |")
    print("|---|---|---|---:|---:|---:|---:|")
    print(
        f"| {result['release']} | {result['qemu']} | {result['virtiofsd']} | {result['boots']} "
        f"| {result['ready']} | {result['failed']} "
        f"| {result['cold_first_command_s_median']} s ({result['cold_first_command_s_max']} s) |"
    )
    for line in result["failures"]:
        print(f"- {line}")
    if ns.out:
        ns.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
