"""Window shown after ``paddock`` starts: the command run as a person runs it (offscreen Qt),
timed from the process's start to the window's "window shown" log line (the event loop has
shown it). The process is then stopped. A throwaway data, config and runtime folder."""

from __future__ import annotations

import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SHOWN = "window shown"  # paddock.ui.app.SHOWN
TIMEOUT_S = 60.0


def _once(home: Path) -> float:
    paddock = shutil.which("paddock", path=str(Path(sys.executable).parent)) or "paddock"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PADDOCK_LOG_LEVEL="INFO", PADDOCK_SNAPSHOTS="0",
               HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               PADDOCK_DATA_DIR=str(home / "data" / "paddock"))  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.Popen([paddock], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    try:
        while time.monotonic() - t0 < TIMEOUT_S:
            ready, _, _ = select.select([proc.stderr], [], [], 1.0)
            if not ready:
                continue
            line = proc.stderr.readline()
            if not line:
                raise RuntimeError(f"paddock stopped before showing its window (code {proc.wait()})")
            if SHOWN in line:
                return time.monotonic() - t0
        raise RuntimeError("paddock did not show its window within a minute")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(runs: int) -> dict[str, Any]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="paddock-bench-window-") as tmp:
            times.append(_once(Path(tmp)))
    return {"window_shown_s": round(statistics.median(times), 3), "raw_window_shown_s": [round(t, 3) for t in times]}


if __name__ == "__main__":
    print(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
