"""The system-metrics sampler's cost (issue #17): what it takes from a process, and from a
training loop, as ratios measured in the same run.

    python benchmarks/system_metrics.py [--seconds 10] [--interval 0.1] [--steps 200000]

1. **CPU per hour.** A process sleeps ``--seconds`` inside a run, with the sampler on and off
   (alternating, twice each); the difference in process CPU time (every thread) divided by the
   samples taken is the CPU one sample costs, scaled to an hour at MLflow's default interval
   (10 s: 360 samples) and at the measured one. The same is measured for MLflow 3.18's sampler
   in the oracle's interpreter, where it has psutil: the **ratio** column is asynctrack's ÷
   MLflow's.
2. **Per-step overhead.** A tight loop (a little arithmetic and one asynchronous
   ``log_metric`` a step, then the flush, so the writer's work counts)
   runs ``--steps`` steps with the sampler on (at ``--interval``, far more often than the
   default) and off, alternating ``--repeats`` times; the ratios of the best and the median
   times per step (this VM is shared: the best is the less noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORACLE = ROOT / ".venv-oracle/bin/python"

_CHILD = textwrap.dedent(
    """
    import json, os, sys, tempfile, time
    lib, seconds, interval, steps = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    repeats = int(sys.argv[5])
    if lib == "mlflow":
        import mlflow
    else:
        import asynctrack as mlflow
    os.environ["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = interval
    d = tempfile.mkdtemp()
    mlflow.set_tracking_uri(f"sqlite:///{d}/mlflow.db")
    client = mlflow.MlflowClient()
    with mlflow.start_run(log_system_metrics=True):  # the schema, psutil's import: not measured
        time.sleep(0.3)
    idle = {"on": [], "off": []}
    for on in (False, True, False, True):
        with mlflow.start_run(log_system_metrics=on) as run:
            t0 = time.process_time()
            time.sleep(seconds)
            cpu = time.process_time() - t0
        n = len(client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage"))
        idle["on" if on else "off"].append([cpu, n])
    loop = {"on": [], "off": []}
    if steps:
        for on in (False, True) * repeats:
            with mlflow.start_run(log_system_metrics=on):
                t0 = time.perf_counter()
                for i in range(steps):
                    x = sum(j * j for j in range(20))
                    mlflow.log_metric("loss", x, step=i, synchronous=False)
                mlflow.flush_async_logging()  # the writer's work counts too
                loop["on" if on else "off"].append((time.perf_counter() - t0) / steps)
    print("@@" + json.dumps({"idle": idle, "loop": loop}))
    """
)


def _child(python: str, lib: str, seconds: float, interval: float, steps: int, repeats: int = 8) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(PYTHONPATH=str(ROOT), MLFLOW_DISABLE_TELEMETRY="true", PYTHONWARNINGS="ignore")
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(
            [python, "-c", _CHILD, lib, str(seconds), str(interval), str(steps), str(repeats)],
            capture_output=True, text=True, env=env, cwd=cwd, timeout=1800,
        )
    if proc.returncode != 0 or "@@" not in proc.stdout:
        raise RuntimeError(f"{lib}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.rsplit("@@", 1)[1])


def _per_sample(idle: dict) -> tuple[float, int]:
    """CPU seconds one sample costs (on minus off, over the samples taken), and samples/phase."""
    cpu_on = sum(c for c, _ in idle["on"])
    cpu_off = sum(c for c, _ in idle["off"])
    samples = sum(n for _, n in idle["on"])
    return max(cpu_on - cpu_off, 0.0) / max(samples, 1), samples // len(idle["on"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="each idle phase (4 per side)")
    ap.add_argument("--interval", type=float, default=0.1, help="sampling interval measured")
    ap.add_argument("--steps", type=int, default=50_000, help="steps of each tight-loop repeat")
    ap.add_argument("--repeats", type=int, default=8, help="tight-loop repeats, on and off each")
    ap.add_argument("--no-mlflow", action="store_true", help="asynctrack's side only")
    args = ap.parse_args()

    ours = _child(sys.executable, "asynctrack", args.seconds, args.interval, args.steps, args.repeats)
    theirs = None
    if not args.no_mlflow and ORACLE.exists():
        try:
            theirs = _child(str(ORACLE), "mlflow", args.seconds, args.interval, 0)
        except RuntimeError as e:
            print(f"MLflow's side did not run (psutil in .venv-oracle?): {str(e)[-300:]}")

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; sampler interval measured: "
          f"{args.interval} s, idle phases {args.seconds} s x 2 on / 2 off")
    print()
    print(f"{'sampler':<12} {'samples/phase':>13} {'CPU/sample':>11} {'CPU/hour @10s':>14} "
          f"{'CPU/hour @' + str(args.interval) + 's':>16} {'ratio':>7}")
    rows = [("asynctrack", ours)] + ([("MLflow 3.18", theirs)] if theirs else [])
    for name, res in rows:
        per, n = _per_sample(res["idle"])
        ratio = ""
        if theirs and name == "asynctrack":
            ratio = f"{per / max(_per_sample(theirs['idle'])[0], 1e-12):.2f}"
        print(f"{name:<12} {n:>13} {per * 1e3:>9.2f}ms {per * 360:>13.3f}s "
              f"{per * 3600 / args.interval:>15.1f}s {ratio:>7}")
    print("(CPU/hour @10s: one sample's CPU x 360, MLflow's default interval; "
          "ratio: asynctrack's CPU per sample / MLflow's)")
    if ours["loop"]["on"]:
        on, off = ours["loop"]["on"], ours["loop"]["off"]
        print()
        print(f"tight loop, {args.steps} steps x {args.repeats} repeats on and off, alternating "
              f"(arithmetic + asynchronous log_metric, then flush), sampler every {args.interval} s:")
        for label, pick in (("best", min), ("median", statistics.median)):
            print(f"  {label:<6} {pick(off) * 1e6:7.2f} us/step off, {pick(on) * 1e6:7.2f} us/step on, "
                  f"ratio on/off {pick(on) / pick(off):.3f}")
        print("  expected from the CPU per sample alone: "
              f"{1 + _per_sample(ours['idle'])[0] / args.interval:.3f} at {args.interval} s, "
              f"{1 + _per_sample(ours['idle'])[0] / 10:.5f} at the default 10 s")


if __name__ == "__main__":
    main()
