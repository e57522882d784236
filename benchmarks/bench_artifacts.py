"""Artifacts: 1,000 small files and one large file, caller time with synchronous=False and end to
end, against MLflow, and ``cp`` of the same large file in the same run for the disk's own speed.

The same code runs under both libraries. MLflow's log_artifact(s) have no ``synchronous``
argument: its caller time is its end-to-end time. The large file (``size`` MB, 1,024 by default)
is written once, the page cache written back (``sync``) before each timed copy, and every copy
removed at the end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time

from _common import Checks, Context, Figure, workload

SMALL_FILES = 1_000
SMALL_SIZE = 1_024
ROUNDS = 3


def _async_kwargs(ctx: Context) -> dict:
    return {"synchronous": False} if ctx.impl == "asynctrack" else {}


def _wait(ctx: Context, ops) -> None:
    if ops is not None:
        ops.wait()
    ctx.client.flush() if ctx.impl == "asynctrack" else None


def _tree_digest(root: str) -> tuple[int, str]:
    h = hashlib.sha256()
    count = 0
    for dirpath, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            count += 1
            with open(os.path.join(dirpath, name), "rb") as f:
                h.update(name.encode() + f.read())
    return count, h.hexdigest()


@workload("small_files", sizes={"asynctrack": SMALL_FILES, "mlflow": SMALL_FILES})
def small_files(ctx: Context) -> dict:
    """1,000 files of 1 KB: log_artifacts of their directory (caller time, end to end), and
    log_artifact file by file."""
    client, n = ctx.client, ctx.size
    src = ctx.tmpdir / "small"
    src.mkdir()
    for i in range(n):
        (src / f"f{i:04d}.bin").write_bytes(os.urandom(SMALL_SIZE))
    run_id = ctx.new_run("small_files")
    client.log_text(run_id, "warm-up", "warm.txt")  # the run's directory, created outside timing
    os.sync()

    start = time.perf_counter()
    ops = client.log_artifacts(run_id, str(src), "dir", **_async_kwargs(ctx))
    called = time.perf_counter()
    _wait(ctx, ops)
    stored = time.perf_counter()

    files = sorted(os.listdir(src))
    one_start = time.perf_counter()
    for name in files:
        client.log_artifact(run_id, str(src / name), "one")
    one_end = time.perf_counter()

    root = client.get_run(run_id).info.artifact_uri
    checks = Checks()
    want = _tree_digest(str(src))
    checks.expect("log_artifacts tree", _tree_digest(os.path.join(root, "dir")), want)
    checks.expect("log_artifact files", _tree_digest(os.path.join(root, "one")), want)
    checks.expect("listing", len(client.list_artifacts(run_id, "dir")), n)
    client.set_terminated(run_id)
    checks.run(ctx, run_id, "small_files")
    return {
        "files": n,
        "dir_caller_ms": (called - start) * 1000,
        "dir_end_to_end_ms": (stored - start) * 1000,
        "per_file_us": (one_end - one_start) / n * 1e6,
        **checks.result(),
    }


def _sync_then_time(fn) -> float:
    os.sync()
    start = time.perf_counter()
    fn()
    os.sync()  # written to disk, not just to the page cache
    return time.perf_counter() - start


@workload("large_file", sizes={"asynctrack": 1_024, "mlflow": 1_024}, timeout_s=1_800)
def large_file(ctx: Context) -> dict:
    """One large file (size in MB): ``cp``, log_artifact end to end, and the caller time of
    log_artifact(synchronous=False); each followed by ``sync``, best of three rounds."""
    client, mb = ctx.client, ctx.size
    big = ctx.tmpdir / "big.bin"
    block = os.urandom(1 << 20)
    with open(big, "wb") as f:
        for i in range(mb):
            f.write(block[:-8] + i.to_bytes(8, "little"))
    run_id = ctx.new_run("large_file")
    client.log_text(run_id, "warm-up", "warm.txt")

    # Three rounds, each: cp, log_artifact, log_artifact(synchronous=False); the best of each
    # figure counts (this shared VM's disk varies from one second to the next).
    cp_times, sync_times, callers, ends = [], [], [], []
    for round_ in range(ROUNDS):
        cp_times.append(_sync_then_time(
            lambda: subprocess.run(["cp", str(big), str(ctx.tmpdir / "cp.bin")], check=True)))
        os.remove(ctx.tmpdir / "cp.bin")
        sync_times.append(_sync_then_time(
            lambda: client.log_artifact(run_id, str(big), f"sync{round_}")))
        os.sync()
        start = time.perf_counter()
        ops = client.log_artifact(run_id, str(big), f"async{round_}", **_async_kwargs(ctx))
        called = time.perf_counter()
        _wait(ctx, ops)
        os.sync()
        stored = time.perf_counter()
        callers.append(called - start)
        ends.append(stored - start)
        if round_ < ROUNDS - 1:
            root = client.get_run(run_id).info.artifact_uri
            for sub in (f"sync{round_}", f"async{round_}"):
                shutil.rmtree(os.path.join(root, sub))
    cp_s, sync_s = min(cp_times), min(sync_times)
    last = ROUNDS - 1

    root = client.get_run(run_id).info.artifact_uri
    checks = Checks()
    size = big.stat().st_size
    for sub in (f"sync{last}", f"async{last}"):
        path = os.path.join(root, sub, "big.bin")
        checks.expect(f"{sub} size", os.path.getsize(path), size)
        with open(path, "rb") as f:  # spot checks: first, middle and last block
            for i in (0, mb // 2, mb - 1):
                f.seek(i * (1 << 20) + (1 << 20) - 8)
                checks.expect(f"{sub} block {i}", int.from_bytes(f.read(8), "little"), i)
    client.set_terminated(run_id)
    checks.run(ctx, run_id, "large_file")
    for sub in (f"sync{last}", f"async{last}"):  # the big files go at once; the harness removes the rest
        shutil.rmtree(os.path.join(root, sub), ignore_errors=True)
    os.remove(big)
    return {
        "mb": mb,
        "cp_s": cp_s,
        "cp_mb_per_s": mb / cp_s,
        "sync_s": sync_s,
        "sync_mb_per_s": mb / sync_s,
        "sync_vs_cp": sync_s / cp_s,
        "async_caller_ms": min(callers) * 1000,
        "async_end_to_end_s": min(ends),
        "rounds_cp_s": cp_times,
        "rounds_sync_s": sync_times,
        "rounds_async_end_to_end_s": ends,
        **checks.result(),
    }


FIGURES = [
    Figure("small_files", "dir_caller_ms", "`log_artifacts` of 1,000 × 1 KB, caller time "
           "(asynctrack: synchronous=False)", "ms", higher_is_better=False),
    Figure("small_files", "dir_end_to_end_ms", "`log_artifacts` of 1,000 × 1 KB, end to end",
           "ms", higher_is_better=False),
    Figure("small_files", "per_file_us", "`log_artifact` of one 1 KB file, mean of 1,000",
           "us", higher_is_better=False),
    Figure("large_file", "cp_s", "`cp` of the large file (+ sync), same run, best of 3", "s",
           higher_is_better=False, comparable=False, note="the disk's own copy speed"),
    Figure("large_file", "sync_s", "`log_artifact` of the large file (+ sync), best of 3", "s",
           higher_is_better=False),
    Figure("large_file", "sync_vs_cp", "`log_artifact` time ÷ `cp` time, large file", "x",
           higher_is_better=False, target=1.1, target_of="value", comparable=False),
    Figure("large_file", "async_caller_ms", "`log_artifact` of the large file, caller time "
           "(asynctrack: synchronous=False)", "ms", higher_is_better=False),
    Figure("large_file", "async_end_to_end_s", "`log_artifact` of the large file, async, "
           "end to end (+ sync)", "s", higher_is_better=False),
]
