"""The benchmark harness: workloads, figures, and the child process that runs one workload.

A benchmark module (``benchmarks/bench_*.py``) declares

* workloads, with the ``@workload`` decorator: a function ``fn(ctx) -> dict`` that only uses the
  MLflow client API (``ctx.client``), so that the same code runs under asynctrack and under
  MLflow 3.18. It returns its figures and the verification of what was stored (``ok``, counts);
* ``FIGURES``: the rows of the report table, each naming a workload's output field, its unit,
  which direction is better and (optionally) a target.

``run_all.py`` imports the modules for this metadata only, then runs every workload in a fresh
child interpreter with a fresh temporary store:

    <python> benchmarks/_common.py --module <bench_x.py> --workload <name> --impl <asynctrack|mlflow>

with cwd = a new temporary directory and the store ``sqlite:///<tmpdir>/mlflow.db``. The child
prints one JSON line (prefixed with ``RESULT_PREFIX``). Nothing here imports asynctrack or MLflow
at module level: the child imports the library named by ``--impl``.

This file must run under the oracle's interpreter too (Python >= 3.10, standard library only).
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULT_PREFIX = "ASYNCTRACK-BENCH-RESULT "
IMPLS = ("asynctrack", "mlflow")
IMPL_LABELS = {"asynctrack": "asynctrack", "mlflow": "MLflow 3.18"}


# -- declarations ---------------------------------------------------------------------------------
@dataclass
class Workload:
    name: str
    fn: Callable[["Context"], dict]
    sizes: dict[str, int]  # points/calls per implementation: MLflow is far slower
    doc: str = ""
    timeout_s: float = 900.0
    module: str = ""  # filled in by the module loader


@dataclass
class Figure:
    """One row of the report: ``field`` of ``workload``'s result."""

    workload: str
    field: str
    label: str
    unit: str  # "us", "ms", "points/s", "MB"
    higher_is_better: bool
    # A target is a ratio measured in the same run, never an absolute figure (this VM's speed
    # swings threefold within a day): ``target_of="floor"``, the least share of the floor
    # figure (``floor``, "workload.field": the cheapest raw way to do the same work, on the same
    # Python and SQLite) that asynctrack reaches; ``"mlflow"``, the least number of times
    # better than MLflow 3.18; ``"value"``, a bound on a figure that is itself a ratio.
    target: float | None = None
    target_of: str = "floor"
    floor: str = ""
    comparable: bool = True  # False when the two sides are not measured on the same amount
    note: str = ""

    def target_text(self) -> str:
        if self.target is None:
            return "—"
        if self.target_of == "floor":
            return f"≥ {self.target:g} × floor"
        if self.target_of == "mlflow":
            return f"≥ {self.target:g}× MLflow"
        op = "≥" if self.higher_is_better else "≤"
        return f"{op} {self.target:,g} {self.unit}"

    def share(self, value: float, other: float) -> float:
        """How ``value`` compares with ``other`` (a floor, or MLflow): above 1 is better."""
        return value / other if self.higher_is_better else other / value

    def meets(self, ratio: float) -> bool:
        """``ratio``: the figure itself for target_of="value", else its share (see share)."""
        assert self.target is not None
        if self.target_of == "value" and not self.higher_is_better:
            return ratio <= self.target
        return ratio >= self.target


_REGISTRY: dict[str, Workload] = {}


def workload(name: str, *, sizes: dict[str, int], timeout_s: float = 900.0):
    """Register ``fn(ctx) -> dict`` as a workload run once per implementation."""

    def register(fn: Callable[["Context"], dict]) -> Callable[["Context"], dict]:
        _REGISTRY[name] = Workload(name, fn, dict(sizes), (fn.__doc__ or "").strip(), timeout_s)
        return fn

    return register


def load_module(path: str | os.PathLike) -> tuple[list[Workload], list[Figure]]:
    """Import one bench module by path; return its workloads (in order) and its figures."""
    path = Path(path).resolve()
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    before = set(_REGISTRY)
    name = f"_asynctrack_bench_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    # Bench modules ``from _common import workload``: that must be this very module (the child
    # registers itself as ``_common`` before loading them) for the registry to be this one.
    found = [w for n, w in _REGISTRY.items() if n not in before]
    for w in found:
        w.module = str(path)
    return found, list(getattr(module, "FIGURES", []))


def discover(bench_dir: Path = BENCH_DIR) -> list[Path]:
    return sorted(bench_dir.glob("bench_*.py"))


# -- formatting -----------------------------------------------------------------------------------
def format_value(value: float, unit: str) -> str:
    if unit.endswith("/s"):  # points/s, calls/s
        return f"{value:,.0f} {unit}"
    if unit == "us":
        return f"{value:,.2f} µs" if value < 100 else f"{value:,.0f} µs"
    if unit == "ms":
        return f"{value:,.1f} ms" if value < 1000 else f"{value:,.0f} ms"
    if unit == "MB":
        return f"{value:,.0f} MB"
    return f"{value:,.3g} {unit}"


# -- the interpreters -----------------------------------------------------------------------------
def child_env() -> dict[str, str]:
    """The environment of a child: MLflow's own variables dropped, its telemetry off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    env["PYTHONWARNINGS"] = "ignore"
    env["GIT_PYTHON_REFRESH"] = "quiet"
    env.pop("PYTHONSTARTUP", None)
    return env


@functools.lru_cache(maxsize=None)
def oracle_python() -> str | None:
    """The interpreter that has MLflow 3.18 installed, or None."""
    candidates = [os.environ.get("ASYNCTRACK_MLFLOW_PYTHON"), str(ROOT / ".venv-oracle/bin/python")]
    for cand in candidates:
        if not cand or not Path(cand).exists():
            continue
        cand = os.path.abspath(cand)  # children run in a temporary directory; no symlink resolved
        try:
            probe = subprocess.run(
                [cand, "-c", "import mlflow; print(mlflow.__version__)"],
                capture_output=True,
                text=True,
                env=child_env(),
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and probe.stdout.strip().startswith("3.18"):
            return cand
    return None


def asynctrack_python() -> str:
    # sys.executable is the real binary (``python3`` may be a pyenv shim, a shell script whose
    # start-up would be counted in the import figure).
    return sys.executable


# -- what a workload gets -------------------------------------------------------------------------
@dataclass
class Context:
    impl: str  # "asynctrack" or "mlflow"
    lib: Any  # the imported module: ``asynctrack`` or ``mlflow``
    client: Any  # lib.MlflowClient(uri)
    uri: str
    tmpdir: Path
    size: int
    Metric: Any  # lib.entities.Metric
    extra: dict = field(default_factory=dict)

    def new_run(self, name: str) -> str:
        """An experiment and a run, with a param and a tag to check afterwards."""
        exp = self.client.create_experiment(f"bench-{name}")
        run = self.client.create_run(exp, run_name=name)
        run_id = run.info.run_id
        self.client.log_param(run_id, "workload", name)
        self.client.log_param(run_id, "size", self.size)
        self.client.set_tag(run_id, "bench", "asynctrack-benchmarks")
        return run_id

    def wait_stored(self, last_ops: Any = None) -> None:
        """Return once everything logged so far is stored.

        asynctrack: ``client.flush()``. MLflow: ``wait()`` on the last RunOperations, then
        ``mlflow.flush_async_logging()`` (MLflow's async queue logs batches from a pool of
        threads, so the last handle alone does not cover the earlier ones).
        """
        if last_ops is not None:
            last_ops.wait()
        if self.impl == "mlflow":
            self.lib.flush_async_logging()
        else:
            self.client.flush()


def rss_mb() -> dict[str, float]:
    """Current and peak resident set size of this process, in MB."""
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    if "VmHWM" not in out:
        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rss_mb": out.get("VmRSS", float("nan")), "peak_rss_mb": out["VmHWM"]}


def latency_stats(samples_ns: list[int], prefix: str) -> dict[str, float]:
    """Median, mean, p99 and max of per-call times, in µs."""
    s = sorted(samples_ns)
    n = len(s)
    if not n:
        return {}
    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    p99 = s[min(n - 1, math.ceil(0.99 * n) - 1)]
    return {
        f"{prefix}_median_us": median / 1000,
        f"{prefix}_mean_us": sum(s) / n / 1000,
        f"{prefix}_p99_us": p99 / 1000,
        f"{prefix}_max_us": s[-1] / 1000,
    }


def timer_overhead_ns(n: int = 20_000) -> float:
    """Median cost of the timing itself (two perf_counter_ns calls around nothing)."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t0 = clock()
        samples.append(clock() - t0)
    samples.sort()
    return samples[n // 2]


# -- verification ---------------------------------------------------------------------------------
class Checks:
    """Collects what was expected against what was stored; ``ok`` only if everything matched."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.counts: dict[str, Any] = {}

    def expect(self, what: str, got: Any, want: Any) -> None:
        if got != want:
            self.problems.append(f"{what}: stored {got!r}, expected {want!r}")

    def history(
        self,
        client: Any,
        run_id: str,
        key: str,
        n: int,
        value_of: Callable[[int], float],
        samples: int = 200,
    ) -> list:
        """The stored history of ``key`` must hold steps 0..n-1 with ``value_of(step)``."""
        hist = client.get_metric_history(run_id, key)
        self.counts[f"stored_{key}"] = len(hist)
        self.expect(f"points of {key!r}", len(hist), n)
        by_step = {m.step: m.value for m in hist}
        self.expect(f"distinct steps of {key!r}", len(by_step), n)
        stride = max(1, n // samples)
        wrong = [
            s for s in list(range(0, n, stride)) + [n - 1] if by_step.get(s) != value_of(s)
        ]
        if wrong:
            self.problems.append(
                f"{key!r}: {len(wrong)} sampled values wrong or missing, e.g. step {wrong[0]}: "
                f"{by_step.get(wrong[0])!r} != {value_of(wrong[0])!r}"
            )
        return hist

    def run(self, ctx: Context, run_id: str, name: str, metrics: dict[str, float] | None = None):
        """Params, tags and status of the run (call after ``set_terminated``)."""
        run = ctx.client.get_run(run_id)
        self.expect("param 'workload'", run.data.params.get("workload"), name)
        self.expect("param 'size'", run.data.params.get("size"), str(ctx.size))
        self.expect("tag 'bench'", run.data.tags.get("bench"), "asynctrack-benchmarks")
        self.expect("run status", run.info.status, "FINISHED")
        for key, value in (metrics or {}).items():
            self.expect(f"latest {key!r}", run.data.metrics.get(key), value)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": not self.problems, **self.counts}
        if self.problems:
            out["problems"] = self.problems[:10]
        return out


# -- the child ------------------------------------------------------------------------------------
SQLITE_BUILDS = ("stdlib", "pysqlite3")


def set_constants(spec: str) -> dict[str, Any]:
    """Set module constants for a sweep (``constants.py``): ``"module:NAME=value;..."``, each
    value a Python literal, set on the imported module before the workload starts."""
    import ast
    import importlib

    done: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        target, _, literal = item.partition("=")
        module_name, _, name = target.partition(":")
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            raise AttributeError(f"{module_name} has no constant {name}")
        setattr(module, name, ast.literal_eval(literal))
        done[target] = getattr(module, name)
    return done


def use_sqlite_build(build: str) -> None:
    """Make ``build`` the ``sqlite3`` that everything in this process imports: ``pysqlite3``
    (the pysqlite3-binary wheel, its own recent SQLite) stands in for the standard library's
    module before anything imports it, asynctrack, aiosqlite and the floor workloads alike."""
    if build == "stdlib":
        return
    if "sqlite3" in sys.modules:
        raise RuntimeError("sqlite3 was imported before the SQLite build could be swapped")
    import pysqlite3  # the bench extra's pysqlite3-binary
    import pysqlite3.dbapi2

    sys.modules["sqlite3"] = pysqlite3
    sys.modules["sqlite3.dbapi2"] = pysqlite3.dbapi2


def _child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--module", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--impl", choices=IMPLS, required=True)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--sqlite", choices=SQLITE_BUILDS, default="stdlib")
    args = parser.parse_args(argv)

    out: dict[str, Any] = {"workload": args.workload, "impl": args.impl, "ok": False}
    try:
        use_sqlite_build(args.sqlite)
        import sqlite3

        out["python"] = "%d.%d.%d" % sys.version_info[:3]
        out["sqlite"] = sqlite3.sqlite_version + ("" if args.sqlite == "stdlib" else f" ({args.sqlite})")
        workloads, _ = load_module(args.module)
        wl = next(w for w in workloads if w.name == args.workload)
        out["bench"] = Path(wl.module).stem
        size = args.size if args.size is not None else wl.sizes[args.impl]
        out["size"] = size
        tmpdir = Path.cwd()
        uri = f"sqlite:///{tmpdir / 'mlflow.db'}"
        if args.impl == "asynctrack":
            sys.path.insert(0, str(ROOT))  # this checkout, whatever is installed
            import asynctrack as lib
            from asynctrack.entities import Metric

            out["constants"] = set_constants(os.environ.get("ASYNCTRACK_BENCH_SET", ""))
        else:
            import logging

            import mlflow as lib
            from mlflow.entities import Metric

            logging.getLogger("mlflow").setLevel(logging.WARNING)
            logging.getLogger("alembic").setLevel(logging.WARNING)
            lib.set_tracking_uri(uri)  # mlflow.flush_async_logging() acts on this store
        out["version"] = getattr(lib, "__version__", "?")
        client = lib.MlflowClient(uri)
        ctx = Context(args.impl, lib, client, uri, tmpdir, size, Metric)
        gc.collect()
        started = time.perf_counter()
        out.update(wl.fn(ctx))
        out["workload_s"] = round(time.perf_counter() - started, 3)
    except BaseException as exc:  # noqa: BLE001 - reported as a failed figure
        out["ok"] = False
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc(limit=8)[-3000:]
    sys.stdout.write(RESULT_PREFIX + json.dumps(out, default=str) + "\n")
    sys.stdout.flush()
    if out.get("hung"):
        os._exit(0)  # threads stuck in the library would hang the interpreter's exit too
    return 0


if __name__ == "__main__":
    sys.modules.setdefault("_common", sys.modules["__main__"])
    raise SystemExit(_child_main(sys.argv[1:]))
