"""Scale: asynchronous log_metric of 10,000,000 points, and the same workload at every size of
the scaling table (``run_all.py`` runs it at 10^4 .. 10^7 points, see ``scaling.py``).

Ten million per-call timings would take hundreds of MB as a list and spoil the RSS figure, so
the caller latency goes into a fixed histogram (10 ns bins up to 1 ms, exact values above), and
the stored points are verified in SQL on the store's file (COUNT, MIN/MAX/SUM of steps and
values, ~200 sampled values): building 10 million ``Metric`` objects in Python to check them
would cost more than the logging.
"""

from __future__ import annotations

import sqlite3
import time

from _common import Checks, Context, Figure, rss_mb, timer_overhead_ns, workload

BIN_NS = 10
LIMIT_NS = 1_000_000  # calls slower than 1 ms are kept exactly
SCALING_SIZES = (10_000, 100_000, 1_000_000, 10_000_000)


class LatencyHistogram:
    """Per-call times in constant memory: 10 ns bins below 1 ms, exact values above."""

    def __init__(self) -> None:
        self.bins = [0] * (LIMIT_NS // BIN_NS)
        self.slow: list[int] = []
        self.count = 0
        self.total_ns = 0

    def stats(self, prefix: str) -> dict[str, float]:
        """Median, mean, p99 and max in µs (bins: to 10 ns; the slow tail: exact)."""
        n = self.count
        if not n:
            return {}
        out = {f"{prefix}_mean_us": self.total_ns / n / 1000}
        for name, q in (("median", 0.5), ("p99", 0.99)):
            out[f"{prefix}_{name}_us"] = self._quantile(max(1, int(q * n + 0.999999))) / 1000
        top = max(self.slow) if self.slow else max(
            i for i, c in enumerate(self.bins) if c) * BIN_NS + BIN_NS // 2
        out[f"{prefix}_max_us"] = top / 1000
        out[f"{prefix}_calls_over_1ms"] = len(self.slow)
        return out

    def _quantile(self, rank: int) -> float:
        seen = 0
        for i, c in enumerate(self.bins):
            seen += c
            if seen >= rank:
                return i * BIN_NS + BIN_NS / 2
        slow = sorted(self.slow)
        return slow[rank - seen - 1]


def _log_timed(ctx: Context, run_id: str, n: int) -> tuple[LatencyHistogram, object, int]:
    """The timed loop: n calls of log_metric(synchronous=False), each timed alone."""
    hist = LatencyHistogram()
    bins, slow = hist.bins, hist.slow
    clock = time.perf_counter_ns
    log = ctx.client.log_metric
    ops = None
    start = clock()
    for i in range(n):
        t0 = clock()
        ops = log(run_id, "loss", i * 0.5, step=i, synchronous=False)
        d = clock() - t0
        if d < LIMIT_NS:
            bins[d // BIN_NS] += 1
        else:
            slow.append(d)
    hist.count = n
    # the mean from the bins' midpoints (summing in the loop would slow every call)
    hist.total_ns = sum(c * (i * BIN_NS + BIN_NS // 2) for i, c in enumerate(bins) if c) + sum(slow)
    return hist, ops, start


def verify_sql(ctx: Context, run_id: str, key: str, n: int, checks: Checks, samples: int = 200) -> None:
    """Exact count, step range and sums of ``key``'s points, and sampled values, in SQL."""
    con = sqlite3.connect(f"file:{ctx.tmpdir / 'mlflow.db'}?mode=ro", uri=True, timeout=60)
    try:
        count, lo, hi, step_sum, value_sum = con.execute(
            "SELECT COUNT(*), MIN(step), MAX(step), SUM(step), SUM(value) FROM metrics "
            "WHERE run_uuid = ? AND key = ?", (run_id, key)).fetchone()
        checks.counts["stored_points"] = count
        checks.expect(f"points of {key!r} (SQL COUNT)", count, n)
        checks.expect(f"steps of {key!r} (min, max, sum)", (lo, hi, step_sum),
                      (0, n - 1, n * (n - 1) // 2))
        checks.expect(f"sum of {key!r}'s values", value_sum, 0.5 * n * (n - 1) / 2)
        steps = sorted({*range(0, n, max(1, n // samples)), n - 1})
        marks = ",".join("?" * len(steps))
        got = dict(con.execute(
            f"SELECT step, value FROM metrics WHERE run_uuid = ? AND key = ? AND step IN ({marks})",
            (run_id, key, *steps)).fetchall())
        wrong = [s for s in steps if got.get(s) != s * 0.5]
        if wrong:
            checks.problems.append(f"{key!r}: {len(wrong)} sampled values wrong or missing, "
                                   f"e.g. step {wrong[0]}: {got.get(wrong[0])!r}")
    finally:
        con.close()


@workload("async_10m", sizes={"asynctrack": 10_000_000, "mlflow": 10_000}, timeout_s=2400)
def async_10m(ctx: Context) -> dict:
    """log_metric(synchronous=False) of ``size`` points, each call timed: caller median, p99,
    max; points/s until stored; peak RSS; the stored count checked exactly in SQL."""
    client, n = ctx.client, ctx.size
    run_id = ctx.new_run("async_10m")
    overhead = timer_overhead_ns()
    before = rss_mb()
    hist, ops, start = _log_timed(ctx, run_id, n)
    logged = time.perf_counter_ns()
    ctx.wait_stored(ops)
    stored = time.perf_counter_ns()
    after = rss_mb()  # before anything is read back
    client.set_terminated(run_id)

    checks = Checks()
    verify_sql(ctx, run_id, "loss", n, checks)
    checks.run(ctx, run_id, "async_10m", {"loss": (n - 1) * 0.5})
    e2e_s = (stored - start) / 1e9
    return {
        **hist.stats("caller"),
        "timer_overhead_us": overhead / 1000,
        "points": n,
        "e2e_s": e2e_s,
        "points_per_s": n / e2e_s,
        "caller_points_per_s": n / ((logged - start) / 1e9),
        "drain_after_last_call_s": (stored - logged) / 1e9,
        "rss_before_mb": before["rss_mb"],
        "rss_after_mb": after["rss_mb"],
        "peak_rss_mb": after["peak_rss_mb"],
        "rss_growth_mb": after["peak_rss_mb"] - before["rss_mb"],
        **checks.result(),
    }


FIGURES = [
    Figure("async_10m", "caller_median_us", "10,000,000 async `log_metric`: caller median",
           "us", higher_is_better=False, target=5, target_of="mlflow"),
    Figure("async_10m", "caller_p99_us", "10,000,000 async `log_metric`: caller p99",
           "us", higher_is_better=False),
    Figure("async_10m", "caller_max_us", "10,000,000 async `log_metric`: caller max",
           "us", higher_is_better=False),
    Figure("async_10m", "points_per_s", "10,000,000 async points, end to end (until stored)",
           "points/s", higher_is_better=True, target=0.7, floor="floor_bulk.points_per_s"),
    Figure("async_10m", "peak_rss_mb", "peak RSS while logging 10,000,000 async points",
           "MB", higher_is_better=False, target=2, target_of="mlflow", comparable=False,
           note="MLflow logs far fewer points (see the scaling table)"),
]
