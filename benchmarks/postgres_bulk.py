"""A quick measurement of the PostgreSQL bulk metric path (store/_postgres/_bulk.py): points/s
of 100,000 points in blocks of 1,000 through apply_metric_block, one transaction a block as
the writer does, against the floor: asyncpg's copy_records_to_table of the same rows straight
into metrics (no duplicate rule, no latest_metrics), also one transaction a block.

    PYTHONPATH=$PWD python benchmarks/postgres_bulk.py [POSTGRES_URI] [--keys N] [--rounds R]

Without a URI it starts a throwaway server with scripts/postgres.sh. Each way logs to a run of
its own; the ways alternate (each first in turn) for R rounds and the best round of each is printed (the machine is
shared). Also measured: the same COPY records sent as a binary COPY buffer built in Python
(copy_to_table), the alternative the issue names.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asynctrack import events as ev  # noqa: E402
from asynctrack.store._postgres import _bulk  # noqa: E402
from asynctrack.store._postgres.schema import ensure_schema_at  # noqa: E402

N, BLOCK = 100_000, 1_000
_COLUMNS = ("key", "value", "timestamp", "run_uuid", "step", "is_nan")


async def new_run(c) -> str:
    run_id = uuid.uuid4().hex
    await c.execute(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
        "start_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
        "VALUES ($1, 'r', 'UNKNOWN', '', '', 'me', 'RUNNING', 1000, '', 'active', '/a', 0)",
        run_id,
    )
    return run_id


_CLOCK = [1_700_000_000_000]


def points(run_id: str, keys: int) -> list[tuple]:
    """N points of ``keys`` keys, timestamps after every earlier run's (as a clock gives them:
    the primary key's index, key then timestamp, grows at its right edge, not in its middle)."""
    t0 = _CLOCK[0]
    _CLOCK[0] += N
    return [(run_id, f"metric_{i % keys}", i * 0.001, t0 + i, i // keys) for i in range(N)]


async def bulk_way(c, pts) -> float:
    blocks = [
        ev.decode_metric_block([ev.encode_metric(*p) for p in pts[i : i + BLOCK]]) for i in range(0, N, BLOCK)
    ]
    t = time.perf_counter()
    for block in blocks:
        out = [None] * len(block)
        async with c.transaction():
            await _bulk.apply_metric_block(c, block, out)
    return time.perf_counter() - t


async def floor_way(c, pts) -> float:
    rows = [(k, v, ts, r, s, False) for r, k, v, ts, s in pts]
    blocks = [rows[i : i + BLOCK] for i in range(0, N, BLOCK)]
    t = time.perf_counter()
    for rows in blocks:
        async with c.transaction():
            await c.copy_records_to_table("metrics", records=rows, columns=_COLUMNS)
    return time.perf_counter() - t


_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_TRAILER = b"\xff\xff"


def binary_copy(block: ev.MetricBlock) -> bytes:
    """The plain path's COPY records as a binary COPY stream built in Python (one struct.pack
    a block, its format made from each row's string lengths)."""
    f = block.fields
    keys = [k.encode() for k in f[3::7]]
    runs = [r.encode() for r in f[2::7]]
    fmt = [">"]
    args: list = []
    for key, value, ts, step, run, o in zip(keys, f[4::7], f[5::7], f[6::7], runs, itertools.count()):
        fmt.append(f"hi{len(key)}sidiqiqi{len(run)}siq")
        args += (6, len(key), key, 8, value, 8, ts, 8, step, len(run), run, 8, o)
    return _HEADER + struct.pack("".join(fmt), *args) + _TRAILER


async def binary_buffer_way(c, pts) -> float:
    blocks = [
        ev.decode_metric_block([ev.encode_metric(*p) for p in pts[i : i + BLOCK]]) for i in range(0, N, BLOCK)
    ]
    t = time.perf_counter()
    for block in blocks:
        async with c.transaction():
            await c.copy_to_table(
                _bulk._POINTS, source=io.BytesIO(binary_copy(block)), columns=_bulk._PLAIN_COLUMNS, format="binary"
            )
            await c.execute(_bulk._MOVE_WITH_LATEST)
    return time.perf_counter() - t


async def measure(uri: str, keys: int, rounds: int) -> None:
    c = await asyncpg.connect(uri)
    await _bulk.prepare_connection(c)
    ways = {"floor (COPY into metrics)": floor_way, "apply_metric_block": bulk_way, "binary buffer + move": binary_buffer_way}
    best: dict[str, float] = {}
    names = list(ways)
    for r in range(rounds):
        for name in names[r % 3 :] + names[: r % 3]:  # each way first in turn (the tables grow)
            way = ways[name]
            run_id = await new_run(c)
            seconds = await way(c, points(run_id, keys))
            best[name] = min(best.get(name, seconds), seconds)
            count = await c.fetchval("SELECT count(*) FROM metrics WHERE run_uuid = $1", run_id)
            assert count == N, (name, count)
    await c.close()
    floor = N / best["floor (COPY into metrics)"]
    print(f"{N:,} points in blocks of {BLOCK:,}, {keys} key(s), best of {rounds}:")
    for name, seconds in best.items():
        rate = N / seconds
        print(f"  {name:28s} {rate:12,.0f} points/s  {100 * rate / floor:5.1f} % of the floor")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("uri", nargs="?")
    parser.add_argument("--keys", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    folder = None
    uri = args.uri
    if uri is None:
        out = subprocess.run(["bash", str(ROOT / "scripts/postgres.sh"), "start"], capture_output=True, text=True, check=True)
        uri, folder = out.stdout.split()
    try:
        base = uri.rsplit("/", 1)[0]
        name = f"measure_{uuid.uuid4().hex[:8]}"

        async def create():
            c = await asyncpg.connect(uri)
            await c.execute(f'CREATE DATABASE "{name}"')
            await c.close()

        asyncio.run(create())
        target = f"{base}/{name}"
        ensure_schema_at(target, "/tmp/measure-artifacts")
        try:
            asyncio.run(measure(target, args.keys, args.rounds))
        finally:

            async def drop():
                c = await asyncpg.connect(uri)
                await c.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                await c.close()

            asyncio.run(drop())
    finally:
        if folder:
            subprocess.run(["bash", str(ROOT / "scripts/postgres.sh"), "stop", folder], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
