"""How long each unit of the suite took when last measured, for the scheduler and tests/README.md.

``tests/framework/durations.json`` holds, per unit (a module; all of ``tests/remote``, see
``parallel.unit_of``), the seconds its tests took (setup, call and teardown) in a whole run. The
parallel scheduler hands out the longest units first (``parallel.scheduler``), so a long module
never starts last while the other worker has nothing left to do. A unit not in the file (a new
module) counts ``UNKNOWN_PER_TEST_S`` per test.

Measure again after a change that moves the times (a whole run with ``--durations=0``)::

    ./scripts/test.sh -q -m "not package" --durations=0 2>&1 | tee run.log
    .venv/bin/python -m tests.framework.durations run.log   # writes the file, prints the table
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

from tests.framework.parallel import unit_of

FILE = Path(__file__).with_name("durations.json")
UNKNOWN_PER_TEST_S = 3.0
_LINE = re.compile(r"^([0-9.]+)s (setup|call|teardown)\s+(\S+)")


def load() -> dict[str, float]:
    try:
        data = json.loads(FILE.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def expected(unit: str, tests: int, known: dict[str, float]) -> float:
    """The seconds ``unit`` (of ``tests`` tests) is expected to take."""
    return known.get(unit, tests * UNKNOWN_PER_TEST_S)


def measure(log: str) -> dict[str, float]:
    """Seconds per module from pytest's ``--durations=0`` report."""
    per: dict[str, float] = defaultdict(float)
    for line in log.splitlines():
        m = _LINE.match(line.strip())
        if m:
            per[m.group(3).split("::", 1)[0]] += float(m.group(1))
    return dict(per)


def units(per_module: dict[str, float]) -> dict[str, float]:
    per: dict[str, float] = defaultdict(float)
    for module, s in per_module.items():
        per[unit_of(module)] += s
    return {u: round(s, 1) for u, s in sorted(per.items(), key=lambda kv: -kv[1])}


def table(per_module: dict[str, float], top: int = 12) -> str:
    """The README's table: the slowest modules, then each folder's total."""
    folders: dict[str, float] = defaultdict(float)
    for module, s in per_module.items():
        folders[module.split("/")[1] if module.count("/") > 1 else module] += s
    rows = sorted(per_module.items(), key=lambda kv: -kv[1])[:top]
    out = ["| slowest modules | s | | folder | s |", "|---|--:|---|---|--:|"]
    folder_rows = sorted(folders.items(), key=lambda kv: -kv[1])
    for i in range(max(len(rows), len(folder_rows))):
        left = f"| `{rows[i][0].removeprefix('tests/')}` | {rows[i][1]:.0f} |" if i < len(rows) else "| | |"
        right = f" | {folder_rows[i][0]} | {folder_rows[i][1]:.0f} |" if i < len(folder_rows) else " | | |"
        out.append(left + right)
    out.append(f"| **all** | **{sum(per_module.values()):.0f}** | | | |")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.framework.durations RUN_LOG (a whole run with --durations=0)", file=sys.stderr)
        return 2
    per_module = measure(Path(argv[0]).read_text(errors="replace"))
    if not per_module:
        print(f"no --durations=0 report in {argv[0]}", file=sys.stderr)
        return 1
    FILE.write_text(json.dumps(units(per_module), indent=1) + "\n")
    print(table(per_module))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
