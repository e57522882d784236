"""Through a tracking server: asynctrack and MLflow 3.18, as clients and as servers, side by side.

    python benchmarks/servers.py [--clients 8] [--points 100000] [--workers 4] [--out bench-out/servers.md]

On one machine, over one SQLite build, in one run:

* ``asynctrack server`` and ``mlflow server`` (MLflow 3.18 from ``.venv-oracle``, or
  ``ASYNCTRACK_MLFLOW_PYTHON``), each over a fresh SQLite file, both with ``--workers``;
* ``--clients`` client processes, started together (a barrier after their imports and their
  ``start_run``), each logging points with ``log_metric(..., synchronous=False)`` and waiting
  until all are stored, for each pairing: asynctrack → asynctrack server, MLflow → mlflow server,
  asynctrack → mlflow server (what client-side batching alone buys), MLflow → asynctrack server;
  and asynctrack logging the same points into a local SQLite file (the share of local speed a
  server keeps). Each pairing logs as many points as it can in reasonable time (MLflow's client
  sends one request per point); the figures are points per second over the whole load, and
  every run's points are counted back through the server: a pairing that lost or duplicated a
  point shows FAILED;
* while each load runs, a probe sends ``runs/log-batch`` requests of 500 metrics (FastTrackML's
  ``LogMetricBatch500``), one every 0.1 s at most (paced, so that it adds the same small load
  to either server), and times each: p50 and p99 under load;
* ``search_runs`` of 1,000 runs and ``get_metric_history`` of 100,000 points through each server,
  with each client.

Every figure that has a target is a ratio measured in this run (this VM's speed swings
threefold within a day). The table gives Python and SQLite versions of every side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from _common import child_env, oracle_python  # noqa: E402

EXPERIMENT = "servers-bench"
PROBE_INTERVAL_S = 0.1  # the under-load probe: at most ten LogMetricBatch500 requests a second
RESULT = "ASYNCTRACK-SERVERS-RESULT "  # MLflow prints its own lines ("View run ...") on stdout


def read_result(stream) -> dict:
    """The child's result line; whatever else it printed is skipped."""
    for line in stream:
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    raise RuntimeError("a client ended without its result line")


# -- the child: one client process ----------------------------------------------------------------
def child_log(impl: str, uri: str, points: int, index: int) -> None:
    """Log ``points`` async points into a run of its own, after the parent's go; report times."""
    if impl == "mlflow":
        import mlflow as lib
    else:
        import asynctrack as lib
    lib.set_tracking_uri(uri)
    lib.set_experiment(EXPERIMENT)
    run = lib.start_run(run_name=f"client-{index}")
    print("READY", flush=True)
    sys.stdin.readline()  # the barrier: every client starts logging at once
    t0 = time.time()
    log = lib.log_metric
    for step in range(points):
        log("loss", step * 0.5, step=step, synchronous=False)
    if impl == "mlflow":
        lib.flush_async_logging()
    lib.end_run()  # asynctrack: waits until everything is stored
    if impl != "mlflow":
        lib.MlflowClient().flush()
    t1 = time.time()
    print(RESULT + json.dumps({"run_id": run.info.run_id, "t0": t0, "t1": t1}), flush=True)


def child_reads(impl: str, uri: str, experiment_id: str, run_id: str, repeat: int) -> None:
    """Time search_runs of the experiment's runs and get_metric_history of one run."""
    if impl == "mlflow":
        import mlflow as lib
    else:
        import asynctrack as lib
    client = lib.MlflowClient(uri)
    search, history = [], []
    rows = points = 0
    for _ in range(repeat):
        t = time.perf_counter()
        runs = client.search_runs([experiment_id], max_results=1000)
        search.append(time.perf_counter() - t)
        rows = len(runs)
        t = time.perf_counter()
        points = len(client.get_metric_history(run_id, "loss"))
        history.append(time.perf_counter() - t)
    print(RESULT + json.dumps({"search_ms": 1000 * statistics.median(search), "runs": rows,
                      "history_ms": 1000 * statistics.median(history), "points": points}), flush=True)


# -- servers --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, label: str, argv: list[str], port: int, env: dict[str, str]) -> None:
        self.label, self.url = label, f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{label} exited: {self.proc.stderr.read()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{label} did not answer /health in 120 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def start_servers(workers: int | None, tmp: Path, mlflow_py: str) -> dict[str, ServerProcess]:
    """Both servers, each with ``workers`` worker processes, or with its own default (None)."""
    servers = {}
    for label, py, argv_head in (
        ("asynctrack", sys.executable, [sys.executable, "-m", "asynctrack", "server"]),
        ("mlflow", mlflow_py, [mlflow_py, "-m", "mlflow", "server"]),
    ):
        root = tmp / f"server-{label}"
        root.mkdir()
        port = free_port()
        env = child_env()
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # MLflow's GenAI job runner: not tracking
        argv = argv_head + ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                            "--artifacts-destination", str(root / "mlartifacts"),
                            "--host", "127.0.0.1", "--port", str(port)]
        if workers is not None:
            argv += ["--workers", str(workers)]
        servers[label] = ServerProcess(label, argv, port, env)
    return servers


# -- REST, with the standard library (the parent imports neither library) --------------------------
def rest(url: str, path: str, body: dict | None = None, params: dict | None = None) -> dict:
    full = f"{url}/api/2.0/mlflow/{path}"
    if params:
        full += "?" + urllib.parse.urlencode(params)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(full, data=data, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as resp:
        return json.loads(resp.read() or b"{}")


def count_points(url: str, run_id: str) -> tuple[int, int]:
    """(points, distinct steps) of the run's ``loss``, every page of MLflow's history."""
    points, steps, token = 0, set(), None
    while True:
        params = {"run_id": run_id, "metric_key": "loss", "max_results": 25000}
        if token:
            params["page_token"] = token
        page = rest(url, "metrics/get-history", params=params)
        for m in page.get("metrics", []):
            points += 1
            steps.add(int(m.get("step", 0)))
        token = page.get("next_page_token")
        if not token:
            return points, len(steps)


# -- the probe: log-batch latency under load -------------------------------------------------------
class Probe(threading.Thread):
    """Sends 500-metric log-batch requests into a run of its own, timing each: back to back
    (the virtual users), or one every ``interval`` seconds at most (the probe under a load)."""

    def __init__(self, url: str, experiment: str = EXPERIMENT, interval: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.interval = interval  # seconds from one request's start to the next's; 0: back to back
        exp = rest(url, "experiments/get-by-name", params={"experiment_name": experiment})
        self.url = url
        self.errors = 0
        self.run_id = rest(url, "runs/create", {"experiment_id": exp["experiment"]["experiment_id"],
                                                "start_time": int(time.time() * 1000)})["run"]["info"]["run_id"]
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        step = 0
        while not self.stop.is_set():
            if self.interval and self.latencies:
                self.stop.wait(max(0.0, self.interval - self.latencies[-1] / 1000))
                if self.stop.is_set():
                    break
            now = int(time.time() * 1000)
            metrics = [{"key": f"probe{i}", "value": float(i), "timestamp": now, "step": step} for i in range(500)]
            t = time.perf_counter()
            try:
                rest(self.url, "runs/log-batch", {"run_id": self.run_id, "metrics": metrics})
            except (OSError, urllib.error.HTTPError):
                self.errors += 1
                continue
            self.latencies.append(1000 * (time.perf_counter() - t))
            step += 1


def virtual_users(url: str, users: int, seconds: float) -> dict:
    """FastTrackML's k6 scenario: ``users`` virtual users each sending LogMetricBatch500 back to
    back for ``seconds``; the latencies of all their requests."""
    experiment = f"vu-{time.time_ns()}"
    rest(url, "experiments/create", {"name": experiment})
    probes = [Probe(url, experiment) for _ in range(users)]
    for p in probes:
        p.start()
    time.sleep(seconds)
    for p in probes:
        p.stop.set()
    for p in probes:
        p.join(120)
    lat = sorted(x for p in probes for x in p.latencies)
    if not lat:
        return {"requests": 0, "errors": sum(p.errors for p in probes)}
    return {"requests": len(lat), "errors": sum(p.errors for p in probes), "mean_ms": statistics.fmean(lat),
            "p50_ms": lat[len(lat) // 2], "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))]}


# -- the parent -----------------------------------------------------------------------------------
def run_load(client_py: str, impl: str, uri: str, clients: int, points: int, probe_url: str | None) -> dict:
    """``clients`` processes logging ``points`` each into ``uri``; rate, counts, probe latencies."""
    env = child_env()
    env["PYTHONPATH"] = str(ROOT)
    if probe_url:  # made once here: eight clients racing set_experiment is not what is measured
        try:
            rest(probe_url, "experiments/create", {"name": EXPERIMENT})
        except urllib.error.HTTPError:
            pass  # made by an earlier pairing
    procs = [subprocess.Popen([client_py, __file__, "--child-log", impl, uri, str(points), str(i)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for i in range(clients)]
    for p in procs:
        line = p.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"{impl} client did not start: {line!r}")
    # Paced, not back to back: the probe measures the load's latency without adding a load of
    # its own that grows with the server's speed (a fast server would be sent more).
    probe = Probe(probe_url, interval=PROBE_INTERVAL_S) if probe_url else None
    if probe:
        probe.start()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    reports = [read_result(p.stdout) for p in procs]
    for p in procs:
        p.wait(600)
    if probe:
        probe.stop.set()
        probe.join(60)
    wall = max(r["t1"] for r in reports) - min(r["t0"] for r in reports)
    result = {"wall_s": wall, "points_per_s": clients * points / wall, "run_ids": [r["run_id"] for r in reports]}
    if probe and probe.latencies:
        lat = sorted(probe.latencies)
        result["p50_ms"] = lat[len(lat) // 2]
        result["p99_ms"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        result["probe_requests"] = len(lat)
    return result


def verify(url: str | None, local_db: Path | None, run_ids: list[str], points: int) -> str | None:
    """None when every run holds exactly ``points`` points at distinct steps, else what is wrong."""
    for run_id in run_ids:
        if url:
            got, steps = count_points(url, run_id)
        else:
            import sqlite3

            with sqlite3.connect(local_db) as db:
                got, steps = db.execute("SELECT count(*), count(DISTINCT step) FROM metrics "
                                        "WHERE run_uuid = ? AND key = 'loss'", (run_id,)).fetchone()
        if (got, steps) != (points, points):
            return f"run {run_id}: {got} points at {steps} steps stored, {points} logged"
    return None


def seed_reads(url: str, runs: int, history: int) -> tuple[str, str]:
    """An experiment of ``runs`` runs (a param, a metric, a tag each) and one run of ``history``
    points, written by raw REST requests; (experiment id, history run id)."""
    exp_id = rest(url, "experiments/create", {"name": f"reads-{time.time_ns()}"})["experiment_id"]
    now = int(time.time() * 1000)
    for i in range(runs):
        run_id = rest(url, "runs/create", {"experiment_id": exp_id, "start_time": now})["run"]["info"]["run_id"]
        rest(url, "runs/log-batch", {"run_id": run_id, "params": [{"key": "i", "value": str(i)}],
                                     "tags": [{"key": "t", "value": "x"}],
                                     "metrics": [{"key": "m", "value": i, "timestamp": now, "step": 0}]})
    history_run = run_id
    for start in range(0, history, 1000):
        rest(url, "runs/log-batch", {"run_id": history_run, "metrics": [
            {"key": "loss", "value": s * 0.5, "timestamp": now, "step": s} for s in range(start, min(history, start + 1000))]})
    return exp_id, history_run


def reads(client_py: str, impl: str, url: str, exp_id: str, run_id: str) -> dict:
    env = child_env()
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([client_py, __file__, "--child-reads", impl, url, exp_id, run_id, "5"],
                         capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode:
        raise RuntimeError(f"{impl} reads failed: {out.stderr[-2000:]}")
    return read_result(out.stdout.splitlines())


def versions(python: str) -> str:
    code = "import sys, sqlite3; print(sys.version.split()[0], sqlite3.sqlite_version)"
    py, sq = subprocess.check_output([python, "-c", code], text=True).split()
    return f"Python {py}, SQLite {sq}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--points", type=int, default=100_000, help="points per asynctrack client")
    parser.add_argument("--mlflow-points", type=int, default=500, help="points per MLflow client")
    parser.add_argument("--to-mlflow-points", type=int, default=20_000,
                        help="points per asynctrack client logging to mlflow server")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes of both servers (default: each its own default: 1 and 4)")
    parser.add_argument("--users", type=int, default=20, help="virtual users of the LogMetricBatch500 test")
    parser.add_argument("--user-seconds", type=float, default=10.0)
    parser.add_argument("--only", action="append", choices=("aa", "mm", "am", "ma", "local", "vu"),
                        help="run only these pairings (repeatable; default: all, and the reads)")
    parser.add_argument("--read-runs", type=int, default=1_000)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--out", default="bench-out/servers.md")
    args = parser.parse_args(argv)
    mlflow_py = oracle_python()
    if mlflow_py is None:
        print("MLflow 3.18 is not installed (.venv-oracle or ASYNCTRACK_MLFLOW_PYTHON): nothing to compare with.")
        return 1
    me = sys.executable
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="asynctrack-servers-"))
    servers = start_servers(args.workers, tmp, mlflow_py)
    loads: dict[str, dict] = {}
    try:
        pairings = [  # short, label, client interpreter, client impl, server (None: local), points a client
            ("aa", "asynctrack → asynctrack server", me, "asynctrack", "asynctrack", args.points),
            ("mm", "MLflow → mlflow server", mlflow_py, "mlflow", "mlflow", args.mlflow_points),
            ("am", "asynctrack → mlflow server", me, "asynctrack", "mlflow", args.to_mlflow_points),
            ("ma", "MLflow → asynctrack server", mlflow_py, "mlflow", "asynctrack", args.mlflow_points),
            ("local", "asynctrack, local SQLite (no server)", me, "asynctrack", None, args.points),
        ]
        for short, label, py, impl, server, points in pairings:
            if args.only and short not in args.only:
                continue
            print(f"{label}: {args.clients} clients × {points:,} points ...", file=sys.stderr, flush=True)
            if server:
                url = servers[server].url
                result = run_load(py, impl, url, args.clients, points, url)
                result["problem"] = verify(url, None, result["run_ids"], points)
            else:
                db = tmp / "local" / "mlflow.db"
                db.parent.mkdir()
                result = run_load(py, impl, f"sqlite:///{db}", args.clients, points, None)
                result["problem"] = verify(None, db, result["run_ids"], points)
            result["points"] = points
            loads[label] = result
        users = {}
        if not args.only or "vu" in args.only:
            for server in ("asynctrack", "mlflow"):
                print(f"{args.users} virtual users × LogMetricBatch500 → {server} server ...", file=sys.stderr, flush=True)
                users[server] = virtual_users(servers[server].url, args.users, args.user_seconds)
        read_figures = {}
        for server in ("asynctrack", "mlflow") if not args.only else ():
            url = servers[server].url
            print(f"reads through {server} server: seeding ...", file=sys.stderr, flush=True)
            exp_id, run_id = seed_reads(url, args.read_runs, args.history)
            for impl, py in (("asynctrack", me), ("mlflow", mlflow_py)):
                read_figures[(impl, server)] = reads(py, impl, url, exp_id, run_id)
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report = table(loads, read_figures, users, args, me, mlflow_py, load_before)
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report + "\n")
    return 0


def table(loads: dict, read_figures: dict, users: dict, args, me: str, mlflow_py: str, load_before: float) -> str:
    """The report. An asynctrack side that lost or duplicated a point is FAILED, with no ratio;
    an MLflow client that lost points keeps its rate (what it stored is what it did), marked."""
    def rate(label: str) -> float | None:
        r = loads.get(label)
        if r is None or (r["problem"] and label.startswith("asynctrack")):
            return None
        return r["points_per_s"]

    lines = ["| figure | value | ratio | target |", "| --- | --- | --- | --- |"]
    for label, r in loads.items():
        if r["problem"] and label.startswith("asynctrack"):
            shown = f"FAILED ({r['problem']})"
        elif r["problem"]:
            shown = f"{r['points_per_s']:,.0f} points/s, **lost points** ({r['problem']})"
        else:
            shown = f"{r['points_per_s']:,.0f} points/s"
        lines.append(f"| {label}: {args.clients} × {r['points']:,} async points, end to end | {shown} | | |")
    aa, mm = rate("asynctrack → asynctrack server"), rate("MLflow → mlflow server")
    am, ma = rate("asynctrack → mlflow server"), rate("MLflow → asynctrack server")
    local = rate("asynctrack, local SQLite (no server)")

    def ratio_row(text: str, a: float | None, b: float | None, target: float | None) -> None:
        if a is None or b is None:
            return
        x = a / b
        goal = "—" if target is None else f"≥ {target:g}×: " + ("met" if x >= target else "**MISSED**")
        lines.append(f"| {text} | | {x:,.2f}× | {goal} |")

    ratio_row("asynctrack → asynctrack server ÷ MLflow → mlflow server", aa, mm, 30)
    ratio_row("asynctrack → asynctrack server ÷ asynctrack local", aa, local, 0.5)
    ratio_row("MLflow → asynctrack server ÷ MLflow → mlflow server", ma, mm, 5)
    ratio_row("asynctrack → mlflow server ÷ MLflow → mlflow server (batching alone)", am, mm, None)
    for label, r in loads.items():
        if "p50_ms" in r:
            lines.append(f"| log-batch of 500 metrics under the load of {label}: p50 / p99 "
                         f"({r['probe_requests']} requests) | {r['p50_ms']:,.1f} / {r['p99_ms']:,.1f} ms | | |")
    for server, u in users.items():
        if u.get("requests"):
            lines.append(f"| {args.users} virtual users × LogMetricBatch500 → {server} server, {args.user_seconds:g} s: "
                         f"mean / p50 / p99 ({u['requests']} requests, {u['errors']} errors) | "
                         f"{u['mean_ms']:,.1f} / {u['p50_ms']:,.1f} / {u['p99_ms']:,.1f} ms | | |")
    if len(users) == 2 and all(u.get("requests") for u in users.values()):
        ratio_row("LogMetricBatch500 mean latency: mlflow server ÷ asynctrack server",
                  users["mlflow"]["mean_ms"], users["asynctrack"]["mean_ms"], None)
    if read_figures:
        for what, field in ((f"`search_runs` of {args.read_runs:,} runs", "search_ms"),
                            (f"`get_metric_history` of {args.history:,} points", "history_ms")):
            for impl, name in (("asynctrack", "asynctrack"), ("mlflow", "MLflow")):
                a, m = read_figures[(impl, "asynctrack")], read_figures[(impl, "mlflow")]
                lines.append(f"| {what}, {name} client: asynctrack server / mlflow server (median of 5) | "
                             f"{a[field]:,.1f} / {m[field]:,.1f} ms | {m[field] / a[field]:,.1f}× | — |")
    lines.append("")
    lines.append(f"ratio: how many times the first figure beats the second. Workers: "
                 f"{args.workers or 'each server its default (asynctrack 1, MLflow 4)'}. "
                 f"asynctrack: {versions(me)}; MLflow 3.18: {versions(mlflow_py)}; "
                 f"{os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
                 f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after.")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-log":
        child_log(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-reads":
        child_reads(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    else:
        raise SystemExit(main())
