"""Soak: minutes of mixed logging into one SQLite file, from threads and spawn processes.

    PYTHONPATH=. python benchmarks/soak.py [--minutes 30] [--threads 4] [--processes 2]

Not a test and not a figure for the table: a long run that shows whether asynctrack stays
healthy. The main process opens a parent run; ``--threads`` threads in it and ``--threads``
threads in each of ``--processes`` spawn processes log trial after trial, each trial a child run
(``start_run(nested=True)`` in the main process, ``parent_run_id=`` in the workers) with
asynchronous ``log_metric``, a few synchronous ones, one ``log_batch``, params (``log_params``
and ``log_param``, synchronous) and tags (``set_tag``, asynchronous). Every worker keeps a ledger
of what it logged.

Each minute (``--interval`` seconds) a line: points stored over that minute (``MAX(rowid)`` of
``metrics``, read-only), points logged, the RSS of every process and the file's size. At the end
everything logged is checked against the file in SQL (points per run, params, tags, parent,
status), exactly, and a verdict: throughput flat (the last full minute within 20 % of the first)
and RSS flat (each process's RSS in the last minute at most 50 MB above the first minute's).
The exit status is 1 if anything logged is missing or wrong.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's asynctrack,
# here and in the spawn processes (which import this file again)

STEPS = 1_000  # asynchronous points of "loss" a trial
SYNC_EVERY = 100  # a synchronous point of "acc" every 100 steps
BATCH_KEYS, BATCH_STEPS = 10, 10  # one log_batch of 100 metrics a trial
PARAMS = 6  # log_params of 5, then log_param of 1 (synchronous)
TAGS = 3  # set_tag, asynchronous
POINTS_PER_TRIAL = STEPS + STEPS // SYNC_EVERY + BATCH_KEYS * BATCH_STEPS
FLAT_THROUGHPUT = 0.20
FLAT_RSS_MB = 50.0


# -- the workers ---------------------------------------------------------------------------------
def _trial(mlflow, client, start_kwargs: dict, worker: int, trial: int) -> tuple[str, int]:
    """One child run of mixed logging; its run id and the points it logged."""
    Metric = mlflow.entities.Metric
    with mlflow.start_run(run_name=f"w{worker}-t{trial}", **start_kwargs) as run:
        run_id = run.info.run_id
        mlflow.log_params({f"p{k}": f"{worker}.{trial}.{k}" for k in range(PARAMS - 1)})
        mlflow.log_param("worker", worker)
        for step in range(STEPS):
            mlflow.log_metric("loss", 1.0 / (step + 1) + worker, step=step, synchronous=False)
            if step % SYNC_EVERY == 0:
                mlflow.log_metric("acc", step / STEPS, step=step, synchronous=True)
        ts = int(time.time() * 1000)
        batch = [Metric(f"b{k}", s * 0.5 + k, ts, s)
                 for s in range(BATCH_STEPS) for k in range(BATCH_KEYS)]
        client.log_batch(run_id, metrics=batch, synchronous=False)
        for k in range(TAGS):
            mlflow.set_tag(f"soak.t{k}", f"{worker}-{trial}", synchronous=False)
    return run_id, POINTS_PER_TRIAL


def _worker(mlflow, start_kwargs: dict, worker: int, stop, counts, ledger: list,
            rate: float) -> None:
    """Trials until ``stop`` is set; ``counts[worker]`` = points logged so far. ``rate`` > 0:
    at most that many points/s (a pause after each trial that ran ahead)."""
    client = mlflow.MlflowClient()
    trial, started = 0, time.monotonic()
    while not stop.is_set():
        run_id, points = _trial(mlflow, client, start_kwargs, worker, trial)
        ledger.append((run_id, points))
        counts[worker] += points
        trial += 1
        if rate > 0:
            ahead = counts[worker] / rate - (time.monotonic() - started)
            if ahead > 0:
                stop.wait(ahead)


def _threads(mlflow, start_kwargs: dict, first: int, n: int, stop, counts,
             rate: float) -> tuple[list, list]:
    ledger: list = []
    threads = [threading.Thread(target=_worker, daemon=True,
                                args=(mlflow, start_kwargs, first + i, stop, counts, ledger, rate))
               for i in range(n)]
    for t in threads:
        t.start()
    return threads, ledger


def _process_main(uri: str, parent_id: str, first: int, n: int, stop, counts, results,
                  rate: float) -> None:
    """A spawn process: ``n`` threads of trials, each a child run of ``parent_id``."""
    import asynctrack as mlflow

    mlflow.set_tracking_uri(uri)
    threads, ledger = _threads(mlflow, {"parent_run_id": parent_id}, first, n, stop, counts, rate)
    for t in threads:
        t.join()
    mlflow.MlflowClient().flush()
    results.put(ledger)


# -- sampling ------------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    """VmRSS of a process, MB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def stored_rows(db: Path) -> int:
    """Rows of ``metrics`` so far: MAX(rowid), O(log n) (nothing is ever deleted here)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
    try:
        return con.execute("SELECT MAX(rowid) FROM metrics").fetchone()[0] or 0
    finally:
        con.close()


def _file_mb(db: Path) -> float:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 1e6


def monitor(db: Path, pids: dict[str, int], counts, seconds: float, interval: float,
            min_free_gb: float) -> list[dict]:
    """One line a period until ``seconds`` have passed (or the disk runs low); the samples."""
    samples: list[dict] = []
    started = last_t = time.monotonic()
    last_rows, last_logged = stored_rows(db), sum(counts)
    minute = 0
    label = "minute" if interval == 60 else f"period ({interval:g} s)"
    while time.monotonic() - started < seconds - 1e-3:
        free_gb = shutil.disk_usage(db.parent).free / 1e9
        if free_gb < min_free_gb:
            print(f"STOPPED EARLY: {free_gb:.1f} GB free on {db.parent} (< --min-free-gb "
                  f"{min_free_gb:g})", flush=True)
            break
        time.sleep(max(0.0, min(interval, seconds - (time.monotonic() - started))))
        now, rows, logged = time.monotonic(), stored_rows(db), sum(counts)
        rss = {name: rss_mb(pid) for name, pid in pids.items()}
        minute += 1
        sample = {"minute": minute, "seconds": now - last_t,
                  "stored_per_s": (rows - last_rows) / (now - last_t),
                  "logged_per_s": (logged - last_logged) / (now - last_t), "rss": rss}
        samples.append(sample)
        print(f"{label} {minute:3d}: stored {sample['stored_per_s']:>9,.0f} points/s, logged "
              f"{sample['logged_per_s']:>9,.0f} points/s; RSS MB "
              + ", ".join(f"{n} {v:.0f}" for n, v in rss.items())
              + f" (max {max(rss.values()):.0f}); file {_file_mb(db):,.0f} MB", flush=True)
        last_t, last_rows, last_logged = now, rows, logged
    return samples


# -- verification --------------------------------------------------------------------------------
def verify(db: Path, parent_id: str, ledger: list[tuple[str, int]]) -> list[str]:
    """Every run of the ledger, exactly: points, params, tags, parent, status; and no extras."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
    problems: list[str] = []
    try:
        points = dict(con.execute("SELECT run_uuid, COUNT(*) FROM metrics GROUP BY run_uuid"))
        params = dict(con.execute("SELECT run_uuid, COUNT(*) FROM params GROUP BY run_uuid"))
        tags = dict(con.execute("SELECT run_uuid, COUNT(*) FROM tags WHERE key LIKE 'soak.%' "
                                "GROUP BY run_uuid"))
        parents = dict(con.execute("SELECT run_uuid, value FROM tags "
                                   "WHERE key = 'mlflow.parentRunId'"))
        status = dict(con.execute("SELECT run_uuid, status FROM runs"))
    finally:
        con.close()
    want = dict(ledger)
    checks = [("points", points, lambda r: want[r]), ("params", params, lambda r: PARAMS),
              ("soak tags", tags, lambda r: TAGS), ("parent", parents, lambda r: parent_id),
              ("status", status, lambda r: "FINISHED")]
    for what, got, expected in checks:
        bad = [r for r in want if got.get(r) != expected(r)]
        if bad:
            problems.append(f"{what}: {len(bad)} of {len(want)} runs wrong, e.g. {bad[0]}: "
                            f"stored {got.get(bad[0])!r}, expected {expected(bad[0])!r}")
    extra = set(points) - set(want)
    if extra:
        problems.append(f"points in {len(extra)} runs nobody logged to")
    total_stored, total_logged = sum(points.values()), sum(want.values())
    print(f"stored {total_stored:,} points in {len(want):,} child runs; logged {total_logged:,}"
          f" -> {'exact' if total_stored == total_logged else 'MISMATCH'}")
    return problems


def flatness(samples: list[dict], interval: float) -> list[str]:
    """The verdict lines: throughput and RSS, first full period against the last."""
    full = [s for s in samples if s["seconds"] >= 0.9 * interval]
    if len(full) < 2:
        return ["flatness: fewer than two full periods, no verdict"]
    first, last = full[0], full[-1]
    ratio = last["stored_per_s"] / first["stored_per_s"] if first["stored_per_s"] else 0.0
    grow = {n: last["rss"].get(n, 0) - first["rss"].get(n, 0) for n in first["rss"]}
    worst = max(grow, key=grow.get)
    return [
        f"throughput {'flat' if abs(ratio - 1) <= FLAT_THROUGHPUT else 'NOT flat'}: last "
        f"minute {last['stored_per_s']:,.0f} points/s = {ratio:.0%} of the first "
        f"({first['stored_per_s']:,.0f}); flat if within {FLAT_THROUGHPUT:.0%}",
        f"RSS {'flat' if grow[worst] <= FLAT_RSS_MB else 'NOT flat'}: largest growth first -> "
        f"last minute {grow[worst]:+.0f} MB ({worst}); flat if ≤ {FLAT_RSS_MB:.0f} MB",
    ]


# -- main ----------------------------------------------------------------------------------------
def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="how long to log (default 30)")
    p.add_argument("--threads", type=int, default=4, help="threads per process (default 4)")
    p.add_argument("--processes", type=int, default=2, help="spawn processes (default 2)")
    p.add_argument("--interval", type=float, default=60.0,
                   help="seconds between report lines (default 60: one a minute)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="total points/s to offer, spread over the workers (default 0: as fast "
                        "as they go; the file grows ~300 bytes a point)")
    p.add_argument("--min-free-gb", type=float, default=10.0,
                   help="stop early when the disk has less free (default 10 GB)")
    p.add_argument("--dir", help="where soak.db goes (default: a temporary directory, removed)")
    return p.parse_args(argv)


def run(args: argparse.Namespace, workdir: Path) -> int:
    """The soak itself, in ``workdir``; 0 if everything logged was stored."""
    import asynctrack as mlflow

    db = workdir / "soak.db"
    uri = f"sqlite:///{db}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("soak")
    ctx = multiprocessing.get_context("spawn")
    workers = args.threads * (1 + args.processes)
    counts, stop, results = ctx.RawArray("q", workers), ctx.Event(), ctx.Queue()
    print(f"soak: {args.minutes:g} min, {args.threads} threads in the main process and in each of "
          f"{args.processes} spawn processes ({workers} workers), "
          f"{f'{args.rate:,.0f} points/s offered' if args.rate else 'unthrottled'}, {db}",
          flush=True)
    with mlflow.start_run(run_name="soak") as parent:
        parent_id = parent.info.run_id
        rate = args.rate / workers
        threads, ledger = _threads(mlflow, {"nested": True}, 0, args.threads, stop, counts, rate)
        procs = [ctx.Process(target=_process_main, args=(uri, parent_id, args.threads * (i + 1),
                                                         args.threads, stop, counts, results,
                                                         rate))
                 for i in range(args.processes)]
        for p in procs:
            p.start()
        pids = {"main": os.getpid(), **{f"p{i + 1}": p.pid for i, p in enumerate(procs)}}
        samples = monitor(db, pids, counts, args.minutes * 60, args.interval, args.min_free_gb)
        stop.set()
        for t in threads:
            t.join()
        for _ in procs:
            ledger += results.get(timeout=600)
        for p in procs:
            p.join(timeout=120)
    mlflow.MlflowClient().flush()
    problems = verify(db, parent_id, ledger)
    for line in flatness(samples, args.interval) + problems:
        print(line)
    print("OK: everything logged was stored" if not problems else "FAILED: data lost or wrong")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
        return run(args, Path(args.dir))
    with tempfile.TemporaryDirectory(prefix="asynctrack-soak-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    raise SystemExit(main())
