"""What the change guard costs with the folder-sharing daemon this host runs (QEMU's C virtiofsd or
the Rust one): a real sandbox, the guest's own commands, timed inside the guest.

    .venv/bin/python -m benchmarks.guard_daemon [--calls 300] [--turn-mb 100] [--runs 3]

* one guarded call: a ``chmod`` of a file no point recorded (the guard looks and lets it go),
  guarded and unguarded, per call;
* a turn that changes ``--turn-mb`` MB in place (one file, written through once) right after a
  point: guarded (the guard copies the file before the first write) and unguarded;
* the point itself: a listing, 0 bytes copied.

``PADDOCK_VIRTIOFSD`` picks the daemon where both are installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from paddock.sandbox import Sandbox
from paddock.undo.keeper import LazyKeeper
from paddock.undo.store import MB, UndoStore
from paddock.vm import VirtualMachine

CALLS = r"""
import os, sys, time
os.chdir("/workspace")
open("fresh.txt", "w").close()
n = int(sys.argv[1])
t0 = time.perf_counter()
for i in range(n):
    os.chmod("fresh.txt", 0o644 if i % 2 else 0o600)
print((time.perf_counter() - t0) / n)
"""
TURN = r"""
import os, time
t0 = time.perf_counter()
with open("/workspace/big.bin", "r+b") as f:
    block = b"C" * (1 << 20)
    for _ in range(os.path.getsize("/workspace/big.bin") >> 20):
        f.write(block)
print(time.perf_counter() - t0)
"""


def _big(path: Path, mb: int) -> None:
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(MB))


async def _one(folder: Path, store_root: Path, guarded: bool, calls: int, turn_mb: int) -> dict[str, Any]:
    _big(folder / "big.bin", turn_mb)
    keeper = None
    store = UndoStore(folder, budget_mb=10 * turn_mb, root=store_root)
    if guarded:
        keeper = LazyKeeper(store)
        store.on_point = keeper.arm
    sandbox = await Sandbox.boot(folder, keeper=keeper)
    try:
        vm = sandbox.vm
        if not isinstance(vm, VirtualMachine):
            raise RuntimeError("a local sandbox is measured here, not a sandbox host")
        guard = vm.guards.get("workspace")
        if guarded and guard is None:
            raise RuntimeError(f"no change guard: {vm.guard_failures}")
        out, err, res = await sandbox.guest.run(["python3", "-c", CALLS, str(calls)])
        if res.shell_code != 0:
            raise RuntimeError(err.decode())
        per_call = float(out)
        t0 = time.monotonic()
        made = store.make("turn", "t", "s", lazy=guarded, eager=guard.writers if guard else None)
        point_s = time.monotonic() - t0
        out, err, res = await sandbox.guest.run(["python3", "-c", TURN])
        if res.shell_code != 0:
            raise RuntimeError(err.decode())
        return {
            "daemon": vm.config.tools.sharing.label,
            "call_us": per_call * 1e6,
            "turn_s": float(out),
            "point_s": point_s,
            "point_copied_mb": made.copied_bytes / MB,
            "kept_mb": (keeper.kept_bytes / MB) if keeper else 0.0,
        }
    finally:
        await sandbox.close()


async def measure(calls: int, turn_mb: int, runs: int) -> dict[str, Any]:
    rows: dict[str, list[dict[str, Any]]] = {"guarded": [], "unguarded": []}
    for _ in range(runs):
        for kind in rows:
            with tempfile.TemporaryDirectory(prefix="paddock-guard-bench-") as tmp:
                folder = Path(tmp) / "work"
                folder.mkdir()
                rows[kind].append(await _one(folder, Path(tmp) / "undo", kind == "guarded", calls, turn_mb))
    out: dict[str, Any] = {"daemon": rows["guarded"][0]["daemon"], "turn_mb": turn_mb, "runs": rows}
    for kind, rs in rows.items():
        for key in ("call_us", "turn_s", "point_s", "point_copied_mb", "kept_mb"):
            vals = [r[key] for r in rs]
            out[f"{kind}_{key}"] = [round(min(vals), 4), round(statistics.median(vals), 4), round(max(vals), 4)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--turn-mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.calls, args.turn_mb, args.runs)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
