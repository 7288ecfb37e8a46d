"""Host memory of a session's processes as PSS (``/proc/PID/smaps_rollup``): a page shared
between processes (guest RAM mapped by QEMU and by each virtiofsd) is counted once, split
between them. Each process's descendants count too (virtiofsd runs inside bubblewrap)."""

from __future__ import annotations

import os
from pathlib import Path


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.setdefault(ppid, []).append(int(entry))
    return out


def tree(pids: list[int]) -> list[int]:
    """``pids`` and all their descendants."""
    children = _children()
    seen: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo.extend(children.get(pid, []))
    return seen


def pss_mb(pids: list[int]) -> float:
    """Summed PSS of ``pids`` and their descendants, MB. A process whose figures cannot be read
    raises (a figure that silently leaves one out would flatter)."""
    total_kb = 0
    for pid in tree(pids):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except FileNotFoundError:
            continue  # exited meanwhile
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total_kb += int(line.split()[1])
    return round(total_kb / 1024, 1)


def rss_mb(pids: list[int]) -> float:
    """Summed RSS (shared pages counted in each process), MB, for comparison with earlier runs."""
    total_kb = 0
    for pid in tree(pids):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return round(total_kb / 1024, 1)
