"""The write path on every Python and two SQLite builds: one table of ratios to the raw floor.

    python benchmarks/matrix.py [--python PATH ...] [--sqlite stdlib --sqlite pysqlite3]
                                [--repeat N] [--out bench-out/matrix]

For each interpreter (default: every CPython 3.10-3.14 that pyenv or PATH has) it makes a venv
under ``--out`` with asynctrack's dependencies and pysqlite3-binary (``pip install -e
".[bench-sqlite]"``; ``--no-venv`` uses the interpreters as they are), then for each SQLite build
(the standard library's, and pysqlite3-binary's newer one swapped in before anything imports
``sqlite3``) runs the write-path workloads and their floors through ``run_all.py``, each in a
fresh child on a fresh store, ``--repeat`` times interleaved. A figure and its floor always come
from the same round, so a row is a ratio measured in one run, whatever the machine's speed
that minute; the table gives the median ratio and its range over the rounds.
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

# (label, workload, field, floor workload, floor field): all are rates, higher is better
RATIOS = [
    ("`log_batch` of 1,000 metrics ÷ floor", "log_batch", "points_per_s", "floor_log_batch", "points_per_s"),
    ("1,000,000 async points ÷ floor", "async_1m", "points_per_s", "floor_bulk", "points_per_s"),
    ("async `log_metrics` of 5 ÷ floor", "fluent_log_metrics", "points_per_s", "floor_bulk", "points_per_s"),
]
WORKLOADS = sorted({w for _, w, _, f, _ in RATIOS} | {f for _, _, _, f, _ in RATIOS})


def default_pythons() -> list[str]:
    found = []
    for minor in range(10, 15):
        paths = sorted(glob.glob(f"/root/.pyenv/versions/3.{minor}.*/bin/python"))
        which = shutil.which(f"python3.{minor}")
        if paths or which:
            found.append(paths[-1] if paths else which)
    return found or [sys.executable]


def venv_python(python: str, out: Path) -> str:
    """A venv of ``python`` with asynctrack's dependencies and pysqlite3-binary (made once)."""
    version = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    venv = out / "venvs" / f"py{version}"
    exe = venv / "bin" / "python"
    if not exe.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(exe), "-m", "pip", "install", "-q", "-e", f"{ROOT}[bench-sqlite]"], check=True)
    return str(exe)


def one_round(python: str, sqlite: str, out: Path) -> dict[str, dict]:
    jsonl = out / f"round-{int(time.time() * 1000)}.jsonl"
    cmd = [sys.executable, str(BENCH_DIR / "run_all.py"), "--only", "asynctrack", "--no-scaling",
           "--python", python, "--sqlite", sqlite, "--out", str(jsonl)]
    for w in WORKLOADS:
        cmd += ["--workload", w]
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    results = {}
    for line in jsonl.read_text().splitlines():
        r = json.loads(line)
        results[r["workload"]] = r
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", help="an interpreter (repeatable)")
    parser.add_argument("--sqlite", action="append", choices=("stdlib", "pysqlite3"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-venv", action="store_true",
                        help="run the interpreters as they are (they need asynctrack's dependencies)")
    parser.add_argument("--out", default="bench-out/matrix")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pythons = [p if args.no_venv else venv_python(p, out) for p in (args.python or default_pythons())]
    builds = args.sqlite or ["stdlib", "pysqlite3"]

    rows: dict[tuple[str, str], dict[str, list[float]]] = {}
    failures: list[str] = []
    for round_no in range(args.repeat):  # interleaved: each round visits every combination
        for python in pythons:
            for sqlite in builds:
                print(f"round {round_no + 1}/{args.repeat}: {python} {sqlite}", file=sys.stderr, flush=True)
                results = one_round(python, sqlite, out)
                any_result = next(iter(results.values()))
                key = (any_result.get("python", "?"), any_result.get("sqlite", "?"))
                cells = rows.setdefault(key, {label: [] for label, *_ in RATIOS})
                for label, wl, field, floor_wl, floor_field in RATIOS:
                    a, f = results.get(wl, {}), results.get(floor_wl, {})
                    if a.get("ok") and f.get("ok"):
                        cells[label].append(a[field] / f[floor_field])
                    else:
                        failures.append(f"{key}: {wl}: {a.get('error') or a.get('problems')}"
                                        f" / {floor_wl}: {f.get('error') or f.get('problems')}")

    head = "| Python | SQLite | " + " | ".join(label for label, *_ in RATIOS) + " |"
    lines = [head, "|" + " --- |" * (2 + len(RATIOS))]
    for (py, sq), cells in sorted(rows.items()):
        shown = []
        for label, *_ in RATIOS:
            v = cells[label]
            shown.append(f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})" if v else "FAILED")
        lines.append(f"| {py} | {sq} | " + " | ".join(shown) + " |")
    report = "\n".join(lines)
    report += (f"\n\nMedian (range) over {args.repeat} interleaved rounds of asynctrack's figure ÷ the raw "
               "sqlite3 floor measured in the same round, on the same Python and SQLite build "
               "(benchmarks/README.md says what each floor does).")
    if failures:
        report += "\n\nFailures:\n" + "\n".join(f"- {f}" for f in failures)
    print(report)
    (out / "matrix.md").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
