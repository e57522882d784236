"""The scaling table: ``async_10m`` (``bench_scale.py``) at 10^4, 10^5, 10^6 and 10^7 points.

Used by ``run_all.py``; each size is one more fresh-interpreter run of the same workload, with
the same verification (a size whose stored data did not check out shows FAILED). MLflow stores
only a few hundred points/s asynchronously here, so it runs only up to ``mlflow_max`` points; a
larger size says "not run (would take ≈ X at the measured rate)", an estimate from the largest
size it did run, never a figure. The point of the table: asynctrack's time grows linearly with
the points and its memory stays flat.

matplotlib is imported only by ``plot`` (``pip install ".[bench]"``); without it the PNG is
skipped with a note.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

from _common import IMPL_LABELS

SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
WORKLOAD = "async_10m"
LINEAR_TOLERANCE = 0.20  # points/s at 10^7 within 20 % of 10^6
FLAT_RSS_MB = 50.0  # peak RSS at 10^7 at most 50 MB above 10^6

Results = dict[tuple[str, int], dict]


def sweep(
    run: Callable[[str, int], dict],
    impls: list[str],
    reuse: dict[str, dict],
    limits: dict[str, int],
    sink,
) -> Results:
    """Run the workload at every size up to ``limits[impl]``; ``reuse[impl]`` is a result the
    main table already measured (at its own size), used instead of running that size again."""
    out: Results = {}
    for impl in impls:
        for size in SIZES:
            prior = reuse.get(impl)
            if prior and prior.get("size") == size:
                out[(impl, size)] = prior  # already measured: shown whatever the limit
                continue
            if size > limits.get(impl, 0):
                continue
            print(f"          scaling: {WORKLOAD} / {IMPL_LABELS[impl]} at {size:,} points ...",
                  file=sys.stderr, flush=True)
            result = run(impl, size)
            result["scaling"] = True
            sink.write(json.dumps(result) + "\n")
            sink.flush()
            out[(impl, size)] = result
    return out


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:,.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds:,.0f} s"


def measured_rate(results: Results, impl: str) -> float | None:
    """Points/s of the largest size ``impl`` ran successfully."""
    done = sorted(s for (i, s), r in results.items() if i == impl and r.get("ok"))
    return results[(impl, done[-1])]["points_per_s"] if done else None


def _cells(results: Results, impl: str, size: int) -> list[str]:
    r = results.get((impl, size))
    if r is None:
        rate = measured_rate(results, impl)
        if rate:
            return [f"not run (would take ≈ {_duration(size / rate)} at the measured "
                    f"{rate:,.0f} points/s)", "—", "—"]
        return ["not run", "—", "—"]
    if not r.get("ok"):
        why = r.get("error") or "; ".join(r.get("problems", []))[:120]
        return [f"FAILED ({why})", "—", "—"]
    return [f"{r['e2e_s']:,.2f} s", f"{r['points_per_s']:,.0f}", f"{r['peak_rss_mb']:,.0f} MB"]


def table(results: Results, impls: list[str]) -> str:
    """Markdown: points | per implementation: e2e time, points/s, peak RSS."""
    head = ["points"]
    for impl in impls:
        label = IMPL_LABELS[impl]
        head += [f"{label}: end to end", f"{label}: points/s", f"{label}: peak RSS"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for size in SIZES:
        row = [f"{size:,}"]
        for impl in impls:
            row += _cells(results, impl, size)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def verdict(results: Results, impl: str = "asynctrack") -> str:
    """One line: is the time linear (points/s at 10^7 vs 10^6) and the RSS flat?"""
    big, mid, small = (results.get((impl, s)) for s in (10_000_000, 1_000_000, 10_000))
    if not (big and mid and big.get("ok") and mid.get("ok")):
        return f"{IMPL_LABELS[impl]}: no verdict (10^6 and 10^7 did not both run and check out)."
    rate = big["points_per_s"] / mid["points_per_s"]
    linear = abs(rate - 1) <= LINEAR_TOLERANCE
    growth = big["peak_rss_mb"] - mid["peak_rss_mb"]
    flat = growth <= FLAT_RSS_MB
    first = f" (10^4: {small['peak_rss_mb']:,.0f} MB)" if small and small.get("ok") else ""
    return (
        f"{IMPL_LABELS[impl]}: time {'linear' if linear else 'NOT linear'}: points/s at 10^7 is "
        f"{rate:.0%} of 10^6's (linear if within {LINEAR_TOLERANCE:.0%}), end to end "
        f"{big['e2e_s'] / mid['e2e_s']:.1f}× the time for 10× the points; RSS "
        f"{'flat' if flat else 'NOT flat'}: peak {mid['peak_rss_mb']:,.0f} MB at 10^6, "
        f"{big['peak_rss_mb']:,.0f} MB at 10^7{first} (flat if it grows ≤ {FLAT_RSS_MB:.0f} MB)."
    )


def plot(results: Results, impls: list[str], path: Path) -> str:
    """Log-log curves of end-to-end time and peak RSS against points, as a PNG; a note."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return (f"Note: matplotlib is not installed, so no {path.name} was drawn "
                "(pip install \".[bench]\").")
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for impl, marker in zip(impls, "os"):
        done = sorted(s for (i, s), r in results.items() if i == impl and r.get("ok"))
        if not done:
            continue
        label = IMPL_LABELS[impl]
        ax_t.plot(done, [results[(impl, s)]["e2e_s"] for s in done], marker=marker, label=label)
        ax_m.plot(done, [results[(impl, s)]["peak_rss_mb"] for s in done], marker=marker,
                  label=label)
    for ax, ylabel in ((ax_t, "end to end, s (until stored)"), (ax_m, "peak RSS, MB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("points logged with log_metric(synchronous=False)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    ax_t.set_title("end-to-end time against points (log-log)")
    ax_m.set_title("peak RSS against points (log-log)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"Scaling plot: {path}"
