"""Run the benchmarks, print a Markdown table and write benchmarks/results/latest.json.

    .venv/bin/python -m benchmarks [--boots 5] [--execs 100] [--undo-mb 1024] [--out FILE]

Every figure is a median over repeated runs in this one process, next to a
baseline measured in the same run (a plain host subprocess, and bubblewrap
when it is installed), so ratios stay meaningful on a busy or slower machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from benchmarks import headless, idle, sandbox, turn, undo, window

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boots", type=int, default=5, help="cold boots to time (default 5)")
    parser.add_argument("--execs", type=int, default=100, help="exec round trips to time (default 100)")
    parser.add_argument("--turns", type=int, default=30, help="agent turns to time (default 30)")
    parser.add_argument("--undo-mb", type=int, default=1024, help="folder size for restore points (0: skip)")
    parser.add_argument("--undo-files", type=int, default=10_000, help="files in that folder (default 10,000)")
    parser.add_argument("--windows", type=int, default=3, help="window starts to time (default 3; 0: skip)")
    parser.add_argument("--idle-runs", type=int, default=3, help="waiting sandboxes to time (default 3; 0: skip)")
    parser.add_argument("--idle-window", type=float, default=15.0, help="seconds each is timed (default 15)")
    parser.add_argument(
        "--headless-runs",
        type=int,
        default=3,
        help="paddock run's first command, woken ahead / woken / cold (default 3; 0: skip)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json", help="where to write the JSON")
    ns = parser.parse_args()
    started = time.monotonic()
    load_start = os.getloadavg()[0]  # the machine's load: on a shared machine, timings swing with it
    results = sandbox.measure(boots=ns.boots, execs=ns.execs)
    turns = turn.measure(ns.turns)
    results.update(turns)
    results["runs"]["turn_overhead_ms"] = turns["turns"]
    if ns.idle_runs:
        results.update(idle.measure(ns.idle_runs, ns.idle_window))
        for key in ("idle_cpu_pct", "idle_pool_cpu_pct", "idle_unpaused_cpu_pct", "exec_after_idle_ms"):
            results["runs"][key] = ns.idle_runs
    if ns.headless_runs:
        results.update(headless.measure(ns.headless_runs))
        for key in ("run_first_exec_ahead_s", "run_first_exec_woken_s", "run_first_exec_cold_s"):
            results["runs"][key] = ns.headless_runs
    if ns.windows:
        results.update(window.measure(ns.windows))
        results["runs"]["window_shown_s"] = ns.windows
    rows = [
        ("cold boot to ready agent", "cold_boot_s", "s", None),
        ("folder chosen to first command answered, cold boot (baseline)", "first_exec_cold_s", "s", "first_exec_s"),
        ("saved sandbox woken, shares attached, claimed", "restore_s", "s", None),
        ("folder chosen to first command answered (woken)", "first_exec_s", "s", None),
        ("folder chosen to first command answered (woken ahead: the window's pool)", "first_exec_pooled_s", "s", None),
        (
            "`paddock run`: session composed to first command answered (woken ahead)",
            "run_first_exec_ahead_s",
            "s",
            None,
        ),
        (
            "`paddock run`, the same, woken after the session is decided (baseline)",
            "run_first_exec_woken_s",
            "s",
            "run_first_exec_ahead_s",
        ),
        ("`paddock run`, the same, cold (baseline)", "run_first_exec_cold_s", "s", "run_first_exec_ahead_s"),
        ("exec round trip (`true` in the guest)", "exec_rtt_ms", "ms", None),
        ("exec round trip, host subprocess (baseline)", "exec_rtt_subprocess_ms", "ms", "exec_rtt_ms"),
        ("exec round trip, bubblewrap (baseline)", "exec_rtt_bwrap_ms", "ms", "exec_rtt_ms"),
        ("exec floor: a shell in the guest starting the same binary (baseline)", "exec_floor_ms", "ms", "exec_rtt_ms"),
        ("guest agent unary call (Health)", "unary_rtt_ms", "ms", None),
        ("virtiofs write, 64 MiB with fsync", "virtiofs_write_mbps", "MB/s", None),
        ("host disk write (baseline)", "host_write_mbps", "MB/s", "virtiofs_write_mbps"),
        ("virtiofs read, 64 MiB (read through the share each time)", "virtiofs_read_mbps", "MB/s", None),
        ("host disk read (baseline)", "host_read_mbps", "MB/s", "virtiofs_read_mbps"),
        ("host memory per session (QEMU + virtiofsd RSS, shared pages in each)", "session_rss_mb", "MB", None),
        ("host memory per session (QEMU + virtiofsd PSS, a woken session)", "session_pss_mb", "MB", None),
        ("host memory per session (PSS, a session from the pool)", "pooled_session_pss_mb", "MB", None),
        ("held by the idle woken sandbox, no folder open (PSS)", "idle_warm_pss_mb", "MB", None),
        ("egress gateway, when a session has one (PSS)", "gateway_pss_mb", "MB", None),
        ("a waiting session, between turns: CPU (% of one core)", "idle_cpu_pct", "%", None),
        ("the same, pausing off (baseline)", "idle_unpaused_cpu_pct", "%", None),
        ("the window's woken sandbox waiting for a folder: CPU (% of one core)", "idle_pool_cpu_pct", "%", None),
        ("the command after a wait (`true`; resumed first)", "exec_after_idle_ms", "ms", None),
        ("the command after a wait, pausing off (baseline)", "exec_after_idle_unpaused_ms", "ms", "exec_after_idle_ms"),
        ("window shown after `paddock` starts", "window_shown_s", "s", None),
        ("agent turn, wall (model server + one guest command + host)", "turn_wall_ms", "ms", None),
        ("agent turn, host overhead (not model server, not guest)", "turn_overhead_ms", "ms", None),
    ]
    who = "root" if os.geteuid() == 0 else "an ordinary user"
    print(f"\n### Paddock benchmarks ({platform.node()}, {results['accel']}, as {who})\n")
    print("| measure | median | runs | guest ÷ baseline |")
    print("|---|---:|---:|---:|")
    for label, key, unit, ratio_of in rows:
        value = results.get(key)
        if value is None:
            continue
        runs = results["runs"].get(key, "")
        ratio = ""
        if ratio_of and value:
            r = results[ratio_of] / value
            ratio = f"{r:.2f}×" if r < 1 else f"{r:.1f}×"
        shown = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
        print(f"| {label} | {shown} {unit} | {runs} | {ratio} |")
    print("\nWhere the first command's time goes (medians, ms):\n")
    print(stages_table(results["stages_ms"]))
    if ns.undo_mb:
        undo_results = undo.measure(ns.undo_mb, ns.undo_files, min(100, ns.undo_mb // 2))
        results.update(undo_results)
        print("\n" + undo.table(undo_results))
    results["total_s"] = round(time.monotonic() - started, 1)
    results["load_average"] = {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}
    results["medians_of"] = "median"
    results["user"] = "root" if os.geteuid() == 0 else "ordinary user"
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n(wrote {ns.out} in {results['total_s']} s, as {results['user']})")
    return 0


def stages_table(stages: dict[str, dict[str, float]]) -> str:
    """One column per path (cold, woken, woken ahead), one row per stage."""
    names = list(dict.fromkeys(k for path in stages.values() for k in path))
    lines = ["| stage | " + " | ".join(stages) + " |", "|---|" + "---:|" * len(stages)]
    for name in names:
        cells = [f"{path[name]:,.1f}" if name in path else "" for path in stages.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
