"""Do the write path's tuned constants hold on other Pythons? A sweep, as ratios to the default.

    python benchmarks/constants.py [--python PATH ...] [--repeat N] [--only PAGE_SIZE ...]
                                   [--sqlite stdlib|pysqlite3] [--out bench-out/constants]

Each constant below was chosen on one machine, one Python (3.11) and one SQLite (3.40). For each
interpreter (venvs made as ``matrix.py`` makes them), each round runs every value of every
constant on the workloads it affects, interleaved, each in a fresh child on a fresh store; a
figure is then divided by the default value's figure **in the same round**. A default holds
where no other value beats it by more than the rounds' spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from matrix import BENCH_DIR, default_pythons, venv_python

W = "asynctrack.writer._writer"
S = "asynctrack.store._sqlite"
# constant: (how it is set, the values tried with the default first, the workloads it moves)
CONSTANTS = {
    "GIL hand-off every N records past high water (YIELD_MASK + 1)": (
        f"{W}:YIELD_MASK", [63, 255, 1023, 2**62 - 1], ["async_1m"]),
    "flush interval, s (ASYNCTRACK_FLUSH_INTERVAL)": (
        "ASYNCTRACK_FLUSH_INTERVAL", [0.05, 0.01, 0.2], ["async_1m", "sync_log_metric"]),
    "page size of new files, bytes (PAGE_SIZE)": (
        f"{S}.schema:PAGE_SIZE", [4096, 8192, 16384], ["log_batch", "sync_log_metric", "async_1m"]),
    "rows committed between WAL checkpoints (CHECKPOINT_ROWS)": (
        f"{S}.writes:CHECKPOINT_ROWS", [20_000, 5_000, 80_000], ["log_batch", "async_1m"]),
    "records per transaction (MAX_BATCH)": (
        f"{W}:MAX_BATCH", [50_000, 10_000, 200_000], ["async_1m"]),
}
FIELDS = {"async_1m": ("points_per_s", True), "log_batch": ("points_per_s", True),
          "sync_log_metric": ("call_mean_us", False)}


def run(python: str, setting: str, value, workloads: list[str], out: Path,
        sqlite: str = "stdlib") -> dict[str, dict]:
    env = dict(os.environ)
    if ":" in setting:
        env["ASYNCTRACK_BENCH_SET"] = f"{setting}={value!r}"
    else:
        env[setting] = str(value)
    jsonl = out / f"run-{time.time_ns()}.jsonl"
    cmd = [sys.executable, str(BENCH_DIR / "run_all.py"), "--only", "asynctrack", "--no-scaling",
           "--python", python, "--sqlite", sqlite, "--out", str(jsonl)]
    for w in workloads:
        cmd += ["--workload", w]
    subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return {r["workload"]: r for r in map(json.loads, jsonl.read_text().splitlines())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-venv", action="store_true")
    parser.add_argument("--sqlite", choices=("stdlib", "pysqlite3"), default="stdlib")
    parser.add_argument("--only", action="append",
                        help="only the constants whose setting contains this (e.g. PAGE_SIZE)")
    parser.add_argument("--out", default="bench-out/constants")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pythons = [p if args.no_venv else venv_python(p, out) for p in (args.python or default_pythons())]
    constants = {label: c for label, c in CONSTANTS.items()
                 if not args.only or any(word in c[0] for word in args.only)}

    # (constant, value, workload, python version) -> ratios to the default in the same round
    ratios: dict[tuple, list[float]] = {}
    versions: dict[str, str] = {}
    for round_no in range(args.repeat):
        for python in pythons:
            for label, (setting, values, workloads) in constants.items():
                print(f"round {round_no + 1}: {python}: {label}", file=sys.stderr, flush=True)
                figures = [run(python, setting, v, workloads, out, args.sqlite) for v in values]
                base = figures[0]
                for value, results in zip(values, figures):
                    for wl in workloads:
                        field, higher = FIELDS[wl]
                        a, b = results.get(wl, {}), base.get(wl, {})
                        if not (a.get("ok") and b.get("ok")):
                            continue
                        versions[python] = f"Python {a.get('python')}, SQLite {a.get('sqlite')}"
                        r = a[field] / b[field] if higher else b[field] / a[field]
                        ratios.setdefault((label, value, wl, versions[python]), []).append(r)

    lines = []
    for label, (_, values, workloads) in constants.items():
        lines += [f"**{label}**, default {values[0]!r}", "",
                  "| value | workload | " + " | ".join(sorted(set(versions.values()))) + " |",
                  "|" + " --- |" * (2 + len(set(versions.values())))]
        for value in values:
            for wl in workloads:
                cells = []
                for ver in sorted(set(versions.values())):
                    v = ratios.get((label, value, wl, ver))
                    cells.append(f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})" if v else "FAILED")
                shown = "never" if value == 2**62 - 1 else f"{value!r}"
                lines.append(f"| {shown} | {wl} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"Each cell: the figure (points/s; sync `log_metric`: 1 / mean µs) ÷ the default "
                 f"value's in the same round, median (range) of {args.repeat} rounds; above 1 is "
                 "better than the default.")
    report = "\n".join(lines)
    print(report)
    (out / "constants.md").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
