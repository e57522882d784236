"""Run every workload of every ``benchmarks/bench_*.py`` against asynctrack and MLflow 3.18.

    python benchmarks/run_all.py [--only asynctrack|mlflow] [--out results.jsonl]
                                 [--bench engine] [--workload async_1m ...]
                                 [--no-scaling] [--scaling-max N] [--mlflow-scaling-max N]
                                 [--python PATH] [--sqlite stdlib|pysqlite3]

Each workload runs in a fresh child interpreter (the system one for asynctrack, the oracle's for
MLflow) in a fresh temporary directory with a fresh store ``sqlite:///<tmpdir>/mlflow.db``; the
child prints one JSON line, which goes to ``--out`` as it is. Then a Markdown table:
figure | asynctrack | MLflow 3.18 | ratio | of floor | target (every target a ratio measured in
the same run: to the raw-SQLite floor or to MLflow), then the scaling table (``scaling.py``) and
the machine it ran on; the same report goes to ``results.md`` and the scaling plot to
``scaling.png``, next to ``--out``. A figure from a run whose stored data did not
check out is shown as FAILED, never as a number. Benchmarks print figures; they are not tests:
the exit status is 0 unless the harness itself broke.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import scaling  # noqa: E402
from _common import (  # noqa: E402
    IMPL_LABELS,
    IMPLS,
    RESULT_PREFIX,
    SQLITE_BUILDS,
    Figure,
    Workload,
    asynctrack_python,
    child_env,
    discover,
    format_value,
    load_module,
    oracle_python,
)


def run_one(wl: Workload, impl: str, python: str, size: int | None = None,
            sqlite: str = "stdlib") -> dict:
    """One workload in a fresh interpreter on a fresh store; its JSON result."""
    with tempfile.TemporaryDirectory(prefix=f"asynctrack-bench-{wl.name}-{impl}-") as tmp:
        cmd = [python, _common.__file__, "--module", wl.module, "--workload", wl.name,
               "--impl", impl]
        if size is not None:
            cmd += ["--size", str(size)]
        if impl == "asynctrack":  # the floor workloads run on asynctrack's side, its SQLite
            cmd += ["--sqlite", sqlite]
        started = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=child_env(), capture_output=True, text=True,
                                  timeout=wl.timeout_s)
        except subprocess.TimeoutExpired:
            return {"workload": wl.name, "impl": impl, "ok": False,
                    "error": f"timed out after {wl.timeout_s:.0f} s"}
        wall = time.perf_counter() - started
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
    if result is None:
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        result = {"workload": wl.name, "impl": impl, "ok": False,
                  "error": f"no result (exit status {proc.returncode}): {tail}"}
    elif proc.returncode != 0:
        result["ok"] = False
        result.setdefault("error", f"exit status {proc.returncode}: {proc.stderr.strip()[-800:]}")
    result["wall_s"] = round(wall, 2)
    result.setdefault("bench", Path(wl.module).stem)
    return result


def _cell(fig: Figure, result: dict | None, sizes_differ: bool) -> str:
    if result is None:
        return "not run"
    if not result.get("ok"):
        why = result.get("error") or "; ".join(result.get("problems", []))[:160]
        return f"FAILED ({why})" if why else "FAILED"
    value = result.get(fig.field)
    if not isinstance(value, (int, float)):
        return "n/a"
    text = format_value(value, fig.unit)
    if sizes_differ and "size" in result:
        text += f" (n={result['size']:,})"
    return text


def _ratio(fig: Figure, at: dict | None, ml: dict | None) -> str:
    """How many times better asynctrack is: > 1 means asynctrack wins."""
    if not fig.comparable:
        return "n/a"
    if not (at and ml and at.get("ok") and ml.get("ok")):
        return "—"
    a, m = at.get(fig.field), ml.get(fig.field)
    if not isinstance(a, (int, float)) or not isinstance(m, (int, float)) or a <= 0 or m <= 0:
        return "—"
    r = a / m if fig.higher_is_better else m / a
    return f"{r:,.1f}×" if r >= 10 else f"{r:,.2f}×"


def _value(result: dict | None, field: str) -> float | None:
    if not (result and result.get("ok")):
        return None
    value = result.get(field)
    return value if isinstance(value, (int, float)) and value > 0 else None


def _floor_share(fig: Figure, at: dict | None, results: dict[tuple[str, str], dict]) -> float | None:
    """asynctrack's figure as a share of its floor, measured in the same run (above 1: faster
    than the cheapest raw way found, which does less)."""
    if not fig.floor:
        return None
    workload, field = fig.floor.split(".")
    value, floor = _value(at, fig.field), _value(results.get((workload, "asynctrack")), field)
    return None if value is None or floor is None else fig.share(value, floor)


def _target(fig: Figure, at: dict | None, ml: dict | None,
            results: dict[tuple[str, str], dict]) -> str:
    if fig.target is None:
        return "—"
    text = fig.target_text()
    if not at:
        return f"{text}: not run"
    if not at.get("ok"):
        return f"{text}: **MISSED** (failed)"
    value = _value(at, fig.field)
    if fig.target_of == "floor":
        ratio = _floor_share(fig, at, results)
        missing = f"{fig.floor.split('.')[0]} not run"
    elif fig.target_of == "mlflow":
        other = _value(ml, fig.field)
        ratio = None if value is None or other is None else fig.share(value, other)
        missing = "MLflow not run"
    else:
        ratio, missing = value, "n/a"
    if ratio is None:
        return f"{text}: {missing}"
    return f"{text}: met" if fig.meets(ratio) else f"{text}: **MISSED**"


def table(figures: list[Figure], workloads: dict[str, Workload],
          results: dict[tuple[str, str], dict], impls: list[str]) -> str:
    lines = [
        "| figure | asynctrack | MLflow 3.18 | ratio | of floor | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for fig in figures:
        at = results.get((fig.workload, "asynctrack"))
        ml = results.get((fig.workload, "mlflow"))
        wl = workloads.get(fig.workload)
        differ = bool(wl and wl.sizes.get("asynctrack") != wl.sizes.get("mlflow"))
        at_cell = _cell(fig, at, differ) if "asynctrack" in impls else "skipped"
        ml_cell = _cell(fig, ml, differ) if "mlflow" in impls else "skipped"
        share = _floor_share(fig, at, results)
        floor_cell = "—" if share is None else f"{share:.2f}"
        lines.append(f"| {fig.label} | {at_cell} | {ml_cell} | {_ratio(fig, at, ml)} "
                     f"| {floor_cell} | {_target(fig, at, ml, results)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=IMPLS, help="run one implementation only")
    parser.add_argument("--out", default="bench-out/results.jsonl",
                        help="where the raw JSON lines go (default: bench-out/results.jsonl)")
    parser.add_argument("--bench", action="append",
                        help="only bench_<BENCH>.py (repeatable; default: every bench_*.py)")
    parser.add_argument("--workload", action="append", help="only this workload (repeatable)")
    parser.add_argument("--no-scaling", action="store_true",
                        help="skip the scaling table (async_10m at 10^4..10^7 points)")
    parser.add_argument("--scaling-max", type=int, default=10_000_000,
                        help="asynctrack's largest scaling size (default 10,000,000)")
    parser.add_argument("--python", default=None,
                        help="the interpreter for asynctrack's side and the floor (default: this "
                             "one); it needs asynctrack's dependencies (pip install -e .)")
    parser.add_argument("--sqlite", choices=SQLITE_BUILDS, default="stdlib",
                        help="the SQLite build of asynctrack's side and the floor: the standard "
                             "library's, or pysqlite3-binary's (pip install \".[bench]\")")
    parser.add_argument("--mlflow-scaling-max", type=int, default=10_000,
                        help="MLflow's largest scaling size (default 10,000: ~1 min at its "
                             "~170 points/s; 100,000 takes ~10 min more)")
    args = parser.parse_args(argv)

    modules = discover()
    if args.bench:
        wanted = {b if b.startswith("bench_") else f"bench_{b}" for b in args.bench}
        modules = [m for m in modules if m.stem in wanted]
    workloads: dict[str, Workload] = {}
    figures: list[Figure] = []
    for path in modules:
        wls, figs = load_module(path)
        for w in wls:
            workloads[w.name] = w
        figures += figs
    if args.workload:
        unknown = set(args.workload) - set(workloads)
        if unknown:
            parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(workloads)}")
        workloads = {n: w for n, w in workloads.items() if n in args.workload}
        figures = [f for f in figures if f.workload in workloads]

    impls = [args.only] if args.only else list(IMPLS)
    pythons: dict[str, str] = {}
    notes: list[str] = []
    if "asynctrack" in impls:
        pythons["asynctrack"] = args.python or asynctrack_python()
    if "mlflow" in impls:
        oracle = oracle_python()
        if oracle is None:
            notes.append("MLflow 3.18 skipped: no oracle interpreter (.venv-oracle or "
                         "ASYNCTRACK_MLFLOW_PYTHON); see benchmarks/README.md to install it.")
            impls.remove("mlflow")
        else:
            pythons["mlflow"] = oracle

    results: dict[tuple[str, str], dict] = {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    total = time.perf_counter()
    load_before = os.getloadavg()
    with out.open("w") as sink:
        for wl in workloads.values():
            for impl in impls:
                print(f"[{time.perf_counter() - total:6.1f} s] {wl.name} / {IMPL_LABELS[impl]} "
                      f"(size {wl.sizes[impl]:,}) ...", file=sys.stderr, flush=True)
                result = run_one(wl, impl, pythons[impl], sqlite=args.sqlite)
                results[(wl.name, impl)] = result
                sink.write(json.dumps(result) + "\n")
                sink.flush()
                _report_status(result)
        scale = None
        if scaling.WORKLOAD in workloads and not args.no_scaling:
            scale = _run_scaling(workloads[scaling.WORKLOAD], impls, pythons, results, args, sink)

    report = [table(figures, workloads, results, impls), ""]
    report += _notes(figures, workloads, impls, notes)
    if scale is not None:
        report += ["", "### Scaling: asynchronous `log_metric`, 10^4 to 10^7 points", "",
                   scaling.table(scale, impls), ""]
        if "asynctrack" in impls:
            report += [scaling.verdict(scale)]
        report += [scaling.plot(scale, impls, out.with_name("scaling.png"))]
    report += ["", machine(pythons, load_before, results)]
    print("\n".join(report))
    md = out.with_name("results.md")
    md.write_text("\n".join(report) + "\n")
    print(f"Raw results: {out}; this report: {md} ({time.perf_counter() - total:.0f} s in all).")
    return 0


def _report_status(result: dict) -> None:
    status = "ok" if result.get("ok") else f"FAILED: {result.get('error') or result.get('problems')}"
    print(f"          {status} in {result.get('wall_s', '?')} s", file=sys.stderr, flush=True)


def _run_scaling(wl: Workload, impls: list[str], pythons: dict[str, str],
                 results: dict[tuple[str, str], dict], args: argparse.Namespace, sink):
    """The scaling sweep, reusing the main table's run of the same workload at its size."""
    reuse = {impl: results[(wl.name, impl)] for impl in impls if (wl.name, impl) in results}
    limits = {"asynctrack": args.scaling_max, "mlflow": args.mlflow_scaling_max}

    def run(impl: str, size: int) -> dict:
        result = run_one(wl, impl, pythons[impl], size, sqlite=args.sqlite)
        _report_status(result)
        return result

    return scaling.sweep(run, impls, reuse, limits, sink)


def _notes(figures: list[Figure], workloads: dict[str, Workload], impls: list[str],
           notes: list[str]) -> list[str]:
    sizes = "; ".join(
        f"{w.name}: " + ", ".join(f"{IMPL_LABELS[i]} {w.sizes[i]:,}" for i in impls)
        for w in workloads.values()
    )
    lines = [f"Sizes (points, calls or repetitions): {sizes}.",
             "ratio = how many times better asynctrack is (> 1: asynctrack faster / smaller); "
             "figures are per call or per point, so differing sizes compare."]
    lines += [f"{fig.label}: {fig.note}." for fig in figures if fig.note]
    return lines + notes


def _probe(python: str) -> str:
    """Python and SQLite versions of an interpreter."""
    code = "import sys, sqlite3; print(sys.version.split()[0], sqlite3.sqlite_version)"
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
        py, sq = proc.stdout.split()
        return f"Python {py}, SQLite {sq}"
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return "versions unknown"


def versions(impl: str, python: str, results: dict[tuple[str, str], dict]) -> str:
    """The Python and SQLite a side's children ran on, as they reported them (a swapped SQLite
    build included), else as its interpreter says."""
    seen = sorted({(r["python"], r["sqlite"]) for (_, i), r in results.items()
                   if i == impl and "python" in r and "sqlite" in r})
    if not seen:
        return _probe(python)
    return " / ".join(f"Python {py}, SQLite {sq}" for py, sq in seen)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine(pythons: dict[str, str], load_before: tuple[float, float, float],
            results: dict[tuple[str, str], dict]) -> str:
    """Where the figures were taken: CPUs, CPU model, Python/SQLite of each side, date, load."""
    sides = "; ".join(f"{IMPL_LABELS[i]}: {versions(i, p, results)}" for i, p in pythons.items())
    load_after = os.getloadavg()
    return (f"Machine: {os.cpu_count()} CPUs (nproc), {_cpu_model()}; {sides}; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
            f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min).")

if __name__ == "__main__":
    raise SystemExit(main())
