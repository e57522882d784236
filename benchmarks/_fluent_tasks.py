"""Spawn-pool tasks for bench_fluent.py: importable by name, so that spawned workers find them,
and free of either library until called (each task imports the one it is told to)."""

from __future__ import annotations

import importlib
import math


def trial(args: tuple[str, str, str, int, int]) -> str:
    """One sweep trial in a spawned worker: a child run of ``parent_id`` logging ``points``
    points asynchronously; returns its run id once they are stored."""
    impl, uri, parent_id, index, points = args
    lib = importlib.import_module(impl)
    lib.set_tracking_uri(uri)
    with lib.start_run(parent_run_id=parent_id, run_name=f"trial-{index}") as run:
        lib.log_param("trial", index)
        for step in range(points):
            lib.log_metric("loss", math.exp(-0.001 * step) + index, step=step, synchronous=False)
    return run.info.run_id
