"""The PostgreSQL bulk logging path (store/_postgres/_bulk.py) against a real PostgreSQL,
driven directly on an asyncpg connection inside a transaction, as the writer drives it: MLflow's
rules (duplicates once, NaN/±inf storage, the latest point, param conflicts, refused runs), a
bad record failing alone, and processes logging to one run at once."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import random
import struct
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asynctrack import events as ev
from tests._postgres import fresh_database, postgres_server  # noqa: F401 (fixture)

asyncpg = pytest.importorskip("asyncpg", reason="asyncpg not installed: pip install -e '.[postgres]'")
pytest_asyncio = pytest.importorskip("pytest_asyncio")

from asynctrack.store._postgres import _bulk, errors  # noqa: E402
from asynctrack.store._postgres.schema import ensure_schema_at  # noqa: E402
from asynctrack.store._sql import rules  # noqa: E402

MAX = 1.7976931348623157e308
RUNS_ = ("0" * 32, "1" * 32)


@pytest.fixture(scope="session")
def schema_template(postgres_server: str, tmp_path_factory) -> Iterator[str]:  # noqa: F811
    """A database holding MLflow's schema, copied for each test (faster than creating it)."""
    with fresh_database(postgres_server) as uri:
        ensure_schema_at(uri, str(tmp_path_factory.mktemp("artifacts")))
        yield uri.rsplit("/", 1)[1]


@pytest.fixture
def db(postgres_server: str, schema_template: str) -> Iterator[str]:  # noqa: F811
    with fresh_database(postgres_server, template=schema_template) as uri:
        yield uri


@pytest_asyncio.fixture
async def conn(db):
    c = await asyncpg.connect(db)
    await _bulk.prepare_connection(c)
    yield c
    await c.close()


def rec(op, *fields):
    return ev.decode(ev.encode(op, *fields))


async def new_run(c, stage="active") -> str:
    run_id = uuid.uuid4().hex
    await c.execute(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
        "start_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
        "VALUES ($1, 'r', 'UNKNOWN', '', '', 'me', 'RUNNING', 1000, '', $2, '/a', 0)",
        run_id,
        stage,
    )
    return run_id


async def apply(c, records) -> list:
    outcomes = [None] * len(records)
    async with c.transaction():
        await _bulk.apply_logging(c, records, 0, len(records), outcomes)
    return outcomes


async def apply_block(c, points) -> list:
    block = ev.decode_metric_block([ev.encode_metric(*p) for p in points])
    assert block is not None
    outcomes = [None] * len(block)
    async with c.transaction():
        await _bulk.apply_metric_block(c, block, outcomes)
    return outcomes


async def rows(c, sql, *args) -> list[tuple]:
    return [tuple(r) for r in await c.fetch(sql, *args)]


def codes(outcomes):
    return [None if o is None else o.error_code for o in outcomes]


# -- metrics ---------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("way", ["records", "block"])
async def test_duplicates_stored_once_and_latest_is_the_highest(conn, way):
    run_id = await new_run(conn)
    points = [(run_id, "m", float(i % 5), 100 + i % 3, i % 4) for i in range(60)]
    for _ in range(2):  # the same batch twice: nothing new the second time
        if way == "block":
            assert await apply_block(conn, points) == [None] * 60
        else:
            assert await apply(conn, [rec(ev.METRIC, *p) for p in points]) == [None] * 60
    got = await rows(conn, "SELECT key, value, timestamp, step, is_nan FROM metrics")
    assert sorted(got) == sorted({(p[1], p[2], p[3], p[4], False) for p in points})
    best = max(points, key=lambda p: (p[4], p[3], p[2]))
    assert await rows(conn, "SELECT key, value, timestamp, step, is_nan FROM latest_metrics") == [
        ("m", best[2], best[3], best[4], False)
    ]


@pytest.mark.asyncio
async def test_non_finite_values_in_either_path(conn):
    run_id = await new_run(conn)
    out = await apply(
        conn,
        [
            rec(ev.METRIC, run_id, "a", 1.0, 1, 1),
            rec(ev.METRIC, run_id, "a", math.nan, 1, 2),
            rec(ev.BATCH, run_id, [["b", math.inf, 1, 1], ["b", 2.0, 1, 0], ["c", -math.inf, 1, 1]], [], []),
            rec(ev.BATCH, run_id, [["d", 2.0, 1, 0], ["d", 3.0, 1, 5]], [], []),
        ],
    )
    assert out == [None] * 4
    got = set(await rows(conn, "SELECT key, value, step, is_nan FROM metrics"))
    assert got == {
        ("a", 1.0, 1, False), ("a", 0.0, 2, True), ("b", MAX, 1, False), ("b", 2.0, 0, False),
        ("c", -MAX, 1, False), ("d", 2.0, 0, False), ("d", 3.0, 5, False),
    }
    latest = set(await rows(conn, "SELECT key, value, step, is_nan FROM latest_metrics"))
    assert latest == {("a", 0.0, 2, True), ("b", MAX, 1, False), ("c", -MAX, 1, False), ("d", 3.0, 5, False)}


@pytest.mark.asyncio
async def test_non_finite_values_in_a_block(conn):
    run_id = await new_run(conn)
    pts = [(run_id, "a", 1.0, 1, 1), (run_id, "a", math.nan, 1, 2), (run_id, "b", math.inf, 1, 1), (run_id, "c", -math.inf, 1, 1)]
    assert await apply_block(conn, pts) == [None] * 4
    assert set(await rows(conn, "SELECT key, value, step, is_nan FROM metrics")) == {
        ("a", 1.0, 1, False), ("a", 0.0, 2, True), ("b", MAX, 1, False), ("c", -MAX, 1, False)
    }
    assert set(await rows(conn, "SELECT key, value, step, is_nan FROM latest_metrics")) == {
        ("a", 0.0, 2, True), ("b", MAX, 1, False), ("c", -MAX, 1, False)
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("first", ["nan", "zero", "negzero"])
async def test_equal_points_first_logged_is_latest(conn, first):
    """NaN and 0.0 (both stored as 0) and -0.0 and 0.0 (equal, different bits) at one step and
    time: as in MLflow, the first logged stays the latest, in one record run, one log_batch,
    both mixed, and across batches."""
    run_id = await new_run(conn)
    pair = {"nan": [math.nan, 0.0], "zero": [0.0, math.nan], "negzero": [-0.0, 0.0]}[first]
    want = (math.copysign(1, pair[0]) if pair[0] == pair[0] else None, pair[0] != pair[0])
    await apply(conn, [rec(ev.METRIC, run_id, "one", v, 5, 5) for v in pair])
    for v in pair:
        await apply(conn, [rec(ev.METRIC, run_id, "two", v, 5, 5)])
    await apply(conn, [rec(ev.BATCH, run_id, [["three", v, 5, 5] for v in pair], [], [])])
    await apply(conn, [rec(ev.METRIC, run_id, "four", pair[0], 5, 5), rec(ev.BATCH, run_id, [["four", pair[1], 5, 5]], [], [])])
    await apply(conn, [rec(ev.BATCH, run_id, [["five", pair[0], 5, 5]], [], []), rec(ev.METRIC, run_id, "five", pair[1], 5, 5)])
    if first == "negzero":
        await apply_block(conn, [(run_id, "six", v, 5, 5) for v in pair])
    latest = await rows(conn, "SELECT key, value, is_nan FROM latest_metrics")
    assert len(latest) == (6 if first == "negzero" else 5)
    for key, value, is_nan in latest:
        assert (None if is_nan else math.copysign(1, value), is_nan) == want, key
    if first == "negzero":  # equal under the primary key: one row, the first logged
        for key, value in await rows(conn, "SELECT key, value FROM metrics"):
            assert math.copysign(1, value) == -1.0, key
        assert len(await rows(conn, "SELECT 1 FROM metrics")) == 6
    else:
        assert len(await rows(conn, "SELECT 1 FROM metrics")) == 10


@pytest.mark.asyncio
async def test_latest_across_batches_lower_points_leave_it(conn):
    run_id = await new_run(conn)
    for b in range(4):
        await apply_block(conn, [(run_id, "m", float(i % 7), 1000 * b + i, 0) for i in range(40)])
    assert await rows(conn, "SELECT value, timestamp, step FROM latest_metrics") == [(4.0, 3039, 0)]
    await apply_block(conn, [(run_id, "m", 99.0, 5, 0) for _ in range(20)])  # older
    await apply(conn, [rec(ev.BATCH, run_id, [["m", 50.0, 3039, 0]] * 20, [], [])])  # same time, higher
    assert await rows(conn, "SELECT value, timestamp, step FROM latest_metrics") == [(50.0, 3039, 0)]
    await apply(conn, [rec(ev.METRIC, run_id, "m", float(i), 1, -1) for i in range(30)])  # lower step
    assert await rows(conn, "SELECT value, timestamp, step FROM latest_metrics") == [(50.0, 3039, 0)]


@pytest.mark.asyncio
async def test_several_calls_in_one_transaction(conn):
    """The temporary table is emptied by each use: a second call in the same transaction
    stores only its own points."""
    run_id = await new_run(conn)
    async with conn.transaction():
        for b in range(3):
            block = ev.decode_metric_block([ev.encode_metric(run_id, "m", float(b), b, b) for _ in range(3)])
            await _bulk.apply_metric_block(conn, block, [None] * 3)
    assert await rows(conn, "SELECT value, step FROM metrics ORDER BY step") == [(0.0, 0), (1.0, 1), (2.0, 2)]
    assert await rows(conn, f"SELECT count(*) FROM {_bulk._POINTS}") == [(0,)]


@pytest.mark.asyncio
async def test_batches_mixing_runs_and_refused_runs(conn):
    """Several runs in one block; a deleted and an unknown run's records are refused with
    MLflow's errors, the others stored."""
    a, b = await new_run(conn), await new_run(conn)
    gone = await new_run(conn, stage="deleted")
    nowhere = uuid.uuid4().hex
    points = [(r, f"k{i % 3}", float(i), i, i) for i, r in enumerate([a, b, gone, nowhere] * 10)]
    out = await apply_block(conn, points)
    assert codes(out) == [None, None, "INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"] * 10
    assert str(out[2]) == f"The run {gone} must be in the 'active' state. Current state is deleted."
    assert str(out[3]) == f"Run with id={nowhere} not found"
    stored = await rows(conn, "SELECT run_uuid, count(*) FROM metrics GROUP BY run_uuid ORDER BY 1")
    assert stored == sorted([(a, 10), (b, 10)])
    latest = await rows(conn, "SELECT run_uuid, key, step FROM latest_metrics ORDER BY 1, 2")
    want = {}
    for r, k, _, _, step in points:
        if r in (a, b):
            want[(r, k)] = max(want.get((r, k), -1), step)
    assert latest == sorted((r, k, s) for (r, k), s in want.items())
    out = await apply_block(conn, [(a, "x", 1.0, 1, 1), (gone, "x", 1.0, 1, 1)])  # no unknown run to fail a COPY
    assert codes(out) == [None, "INVALID_PARAMETER_VALUE"]
    assert await rows(conn, "SELECT count(*) FROM metrics WHERE run_uuid = $1", gone) == [(0,)]
    assert await rows(conn, "SELECT count(*) FROM latest_metrics WHERE run_uuid = $1", gone) == [(0,)]
    out = await apply(conn, [rec(ev.PARAM, gone, "p", "1"), rec(ev.TAG, nowhere, "t", "1"), rec(ev.TAG, a, "t", "1")])
    assert codes(out) == ["INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", None]


# -- a bad record fails alone ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_malformed_metric_record_fails_alone(conn):
    run_id = await new_run(conn)
    good = [rec(ev.METRIC, run_id, "m", float(i), 10, i) for i in range(40)]
    bad = (ev.VERSION, ev.METRIC, run_id, "m", 99.0, 10, 99, "extra")
    out = await apply(conn, good[:20] + [bad] + good[20:])
    assert out[:20] == [None] * 20 and out[21:] == [None] * 20
    assert out[20] is not None and out[20].error_code == "INTERNAL_ERROR"
    assert await rows(conn, "SELECT value, step FROM metrics ORDER BY step") == [(float(i), i) for i in range(40)]
    assert await rows(conn, "SELECT value, step FROM latest_metrics") == [(39.0, 39)]


@pytest.mark.asyncio
@pytest.mark.parametrize("way", ["records", "block"])
async def test_too_long_key_fails_alone_with_the_rest_stored(conn, way):
    run_id = await new_run(conn)
    long_key = "k" * 251
    points = [(run_id, "m", float(i), 10, i) for i in range(30)]
    points[7] = (run_id, long_key, 1.0, 10, 7)
    if way == "block":
        out = await apply_block(conn, points)
    else:
        out = await apply(conn, [rec(ev.METRIC, *p) for p in points])
    assert codes(out) == [None] * 7 + ["INTERNAL_ERROR"] + [None] * 22
    assert "character varying(250)" in str(out[7])
    assert len(await rows(conn, "SELECT 1 FROM metrics WHERE key = 'm'")) == 29
    assert await rows(conn, "SELECT key, step FROM latest_metrics") == [("m", 29)]


@pytest.mark.asyncio
async def test_bad_params_tags_and_batches_fail_alone(conn):
    """A param value over 8,000 characters, a tag key over 250, a NUL in a string, a value of
    the wrong type: each fails its own record (a BATCH whole), the rest is stored."""
    run_id = await new_run(conn)
    records = [
        rec(ev.PARAM, run_id, "p1", "v1"),
        rec(ev.PARAM, run_id, "p2", "v" * 8001),
        rec(ev.TAG, run_id, "t" * 251, "x"),
        rec(ev.TAG, run_id, "t1", "a\x00b"),
        rec(ev.BATCH, run_id, [["bm", 1.0, 1, 1]], [["bp", "1"]], [["bt", "x" * 8001]]),
        rec(ev.BATCH, run_id, [["gm", 1.0, 1, 1]], [["gp", "1"]], [["gt", "ok"]]),
        rec(ev.METRIC, run_id, "m", "not a number", 1, 1),
        rec(ev.TAG, run_id, "t2", "fine"),
    ]
    out = await apply(conn, records)
    assert codes(out) == [None, "INTERNAL_ERROR", "INTERNAL_ERROR", "INTERNAL_ERROR", "INTERNAL_ERROR", None,
                          "INTERNAL_ERROR", None]
    assert await rows(conn, "SELECT key, value FROM params ORDER BY key") == [("gp", "1"), ("p1", "v1")]
    assert await rows(conn, "SELECT key, value FROM tags ORDER BY key") == [("gt", "ok"), ("t2", "fine")]
    assert await rows(conn, "SELECT key FROM metrics") == [("gm",)]


# -- params and tags -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_param_conflicts_within_a_batch_and_against_the_db(conn):
    run_id = await new_run(conn)
    assert await apply(conn, [rec(ev.PARAM, run_id, "a", "1")]) == [None]
    out = await apply(
        conn,
        [
            rec(ev.PARAM, run_id, "a", "1"),  # the same value again: fine
            rec(ev.PARAM, run_id, "a", "2"),  # against the database
            rec(ev.PARAM, run_id, "b", "x"),
            rec(ev.PARAM, run_id, "b", "y"),  # against the batch
            rec(ev.BATCH, run_id, [["m", 1.0, 1, 1]], [["c", "1"], ["a", "3"]], [["t", "1"]]),  # whole or nothing
            rec(ev.BATCH, run_id, [], [["c", "1"], ["b", "x"]], []),
        ],
    )
    assert codes(out) == [None, "INVALID_PARAMETER_VALUE", None, "INVALID_PARAMETER_VALUE", "INVALID_PARAMETER_VALUE", None]
    assert str(out[1]) == (
        "Changing param values is not allowed. Param with key='a' was already logged with value='1' "
        f"for run ID='{run_id}'. Attempted logging new value '2'."
    )
    assert "old_value': '1', 'new_value': '3'" in str(out[4])
    assert await rows(conn, "SELECT key, value FROM params ORDER BY key") == [("a", "1"), ("b", "x"), ("c", "1")]
    assert await rows(conn, "SELECT count(*) FROM metrics") == [(0,)]
    assert await rows(conn, "SELECT count(*) FROM tags") == [(0,)]


@pytest.mark.asyncio
async def test_tags_upserted_last_wins_and_run_name_follows(conn):
    run_id = await new_run(conn)
    out = await apply(
        conn,
        [
            rec(ev.TAG, run_id, "t", "1"),
            rec(ev.TAG, run_id, "t", "2"),
            rec(ev.TAG, run_id, "mlflow.runName", "first"),
            rec(ev.BATCH, run_id, [], [], [["mlflow.runName", "second"], ["u", "x"]]),
        ],
    )
    assert out == [None] * 4
    assert await apply(conn, [rec(ev.TAG, run_id, "u", "y")]) == [None]
    assert await rows(conn, "SELECT key, value FROM tags ORDER BY key") == [
        ("mlflow.runName", "second"), ("t", "2"), ("u", "y")
    ]
    assert await rows(conn, "SELECT name FROM runs WHERE run_uuid = $1", run_id) == [("second",)]


@pytest.mark.asyncio
async def test_param_race_is_never_silent(db):
    """Two transactions insert the same new param with different values at once: the second
    waits on the first's row, finds it committed, and gets MLflow's conflict (no lost write)."""
    first, second = await asyncpg.connect(db), await asyncpg.connect(db)
    try:
        for c in (first, second):
            await _bulk.prepare_connection(c)
        run_id = await new_run(first)
        tx = first.transaction()
        await tx.start()
        out1 = [None, None]
        await _bulk.apply_logging(first, [rec(ev.PARAM, run_id, "p", "A"), rec(ev.METRIC, run_id, "m", 1.0, 1, 1)], 0, 2, out1)
        records = [rec(ev.BATCH, run_id, [["m2", 1.0, 1, 1]], [["p", "B"]], []), rec(ev.PARAM, run_id, "q", "1")]
        task = asyncio.ensure_future(apply(second, records))
        for _ in range(200):  # until the second waits for the first's row lock
            waiting = await first.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid = $1",
                second.get_server_pid(),
            )
            if waiting:
                break
            await asyncio.sleep(0.01)
        assert waiting
        await tx.commit()
        out2 = await task
        assert out1 == [None, None]
        assert codes(out2) == ["INVALID_PARAMETER_VALUE", None]
        assert "'old_value': 'A', 'new_value': 'B'" in str(out2[0])
        assert await rows(first, "SELECT key, value FROM params ORDER BY key") == [("p", "A"), ("q", "1")]
        assert await rows(first, "SELECT key FROM metrics") == [("m",)]
    finally:
        await first.close()
        await second.close()


# -- many processes at once ------------------------------------------------------------------


def _retrying(uri: str, work) -> list:
    """Run ``work(conn)`` in transactions until one commits (a deadlock or serialization
    failure is retried, as the writer does)."""

    async def go():
        c = await asyncpg.connect(uri)
        await _bulk.prepare_connection(c)
        results = []
        try:
            for job in work:
                while True:
                    try:
                        async with c.transaction():
                            results.append(await job(c))
                        break
                    except Exception as exc:
                        if getattr(exc, "sqlstate", None) not in ("40P01", "40001"):
                            raise
        finally:
            await c.close()
        return results

    return asyncio.run(go())


def _log_points(uri: str, run_id: str, worker: int, workers: int, barrier) -> None:
    rnd = random.Random(worker)
    jobs = []
    for b in range(10):
        points = []
        for i in range(100):
            step = (b * 100 + i) * workers + worker  # interleaved across the workers
            points.append((run_id, "loss", float(rnd.randint(0, 3)), rnd.randint(0, 5), step % 997))
            points.append((run_id, "loss", 1.0, 7, 5))  # the same point from everyone
        points.append((run_id, f"w{worker}", 1.0, 1, 1))

        async def job(c, points=points):
            block = ev.decode_metric_block([ev.encode_metric(*p) for p in points])
            out = [None] * len(block)
            await _bulk.apply_metric_block(c, block, out)
            assert out == [None] * len(block)

        jobs.append(job)
    barrier.wait()
    _retrying(uri, jobs)


def _points_of(run_id: str, worker: int, workers: int) -> list[tuple]:
    rnd = random.Random(worker)
    out = []
    for b in range(10):
        for i in range(100):
            step = (b * 100 + i) * workers + worker
            out.append(("loss", float(rnd.randint(0, 3)), rnd.randint(0, 5), step % 997))
            out.append(("loss", 1.0, 7, 5))
        out.append((f"w{worker}", 1.0, 1, 1))
    return out


@pytest.mark.asyncio
async def test_processes_logging_one_run_and_key_at_once(conn, db):
    """8 processes log interleaved steps (and shared points) to one run and key at once:
    metrics holds every distinct point once and latest_metrics the highest by MLflow's order."""
    workers = 8
    run_id = await new_run(conn)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_log_points, args=(db, run_id, w, workers, barrier)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * workers
    everything = [p for w in range(workers) for p in _points_of(run_id, w, workers)]
    got = await rows(conn, "SELECT key, value, timestamp, step FROM metrics WHERE run_uuid = $1", run_id)
    assert len(got) == len(set(got)) and set(got) == set(everything)
    latest = dict((r[0], r[1:]) for r in await rows(
        conn, "SELECT key, value, timestamp, step FROM latest_metrics WHERE run_uuid = $1", run_id))
    best = max((p for p in everything if p[0] == "loss"), key=lambda p: (p[3], p[2], p[1]))
    assert latest["loss"] == best[1:]
    assert {k for k in latest} == {"loss"} | {f"w{w}" for w in range(workers)}


def _log_param(uri: str, run_id: str, value: str, barrier, results) -> None:
    async def job(c):
        out = [None]
        await _bulk.apply_logging(c, [rec(ev.PARAM, run_id, "lr", value)], 0, 1, out)
        return None if out[0] is None else (out[0].error_code, str(out[0]))

    barrier.wait()
    results.put((value, _retrying(uri, [job])[0]))


@pytest.mark.asyncio
async def test_processes_racing_for_one_new_param(conn, db):
    """Two processes log the same new param with different values at once: exactly one value
    is stored, and the other process gets MLflow's conflict naming it."""
    run_id = await new_run(conn)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_log_param, args=(db, run_id, v, barrier, results)) for v in ("0.1", "0.2")]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
    stored = await rows(conn, "SELECT value FROM params WHERE run_uuid = $1 AND key = 'lr'", run_id)
    assert len(stored) == 1
    winner = stored[0][0]
    loser = "0.2" if winner == "0.1" else "0.1"
    assert got[winner] is None
    assert got[loser] == (
        "INVALID_PARAMETER_VALUE",
        f"Changing param values is not allowed. Param with key='lr' was already logged with value='{winner}' "
        f"for run ID='{run_id}'. Attempted logging new value '{loser}'.",
    )


# -- errors ----------------------------------------------------------------------------------


def test_store_failures_are_told_from_statement_errors():
    def pg(code):
        exc = asyncpg.PostgresError.new({"C": code, "M": "x", "S": "ERROR"})
        return exc

    for code in ("57P01", "57P02", "57P03", "25006", "53100", "57014", "40P01", "40001", "53200", "53300", "08006"):
        assert errors.is_store_failure(pg(code)), code
    for code in ("22001", "22021", "23505", "23503", "22P02"):
        assert not errors.is_store_failure(pg(code)) and errors.is_statement_error(pg(code)), code
    assert errors.is_store_failure(asyncpg.ConnectionDoesNotExistError("gone"))
    assert errors.is_store_failure(asyncpg.InterfaceError("closed"))
    assert errors.is_store_failure(ConnectionResetError())
    assert not errors.is_statement_error(ConnectionResetError())
    assert errors.is_statement_error(TypeError("expected str, got int"))


# -- against a model of MLflow's rules -------------------------------------------------------

KEYS = ("a", "b", "c")
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, math.nan, math.inf, -math.inf, MAX, -MAX]),
)
points = st.tuples(st.sampled_from(KEYS), values, st.integers(0, 3), st.integers(-2, 3))
metric_records = st.builds(lambda p: ("m", p), points)
batches = st.lists(
    st.one_of(
        st.tuples(st.just(True), st.lists(metric_records, min_size=1, max_size=30)),  # as a MetricBlock
        st.tuples(
            st.just(False),  # as records
            st.lists(
                st.one_of(metric_records, st.builds(lambda ps: ("b", ps), st.lists(points, min_size=1, max_size=20))),
                min_size=1,
                max_size=30,
            ),
        ),
    ),
    min_size=1,
    max_size=3,
)


def model(batches):
    """MLflow's SQL store on PostgreSQL: NaN -> 0 with is_nan, ±inf -> ±MAX, a point equal to
    one stored under the primary key (-0.0 equals 0.0) not stored again, latest = the first
    logged point with the highest (step, timestamp, stored value)."""
    stored, latest = {}, {}
    for _, batch in batches:
        for kind, payload in batch:
            for key, value, ts, step in [payload] if kind == "m" else payload:
                is_nan = value != value
                v = 0.0 if is_nan else (MAX if value == math.inf else -MAX if value == -math.inf else value)
                row = (key, v, ts, step, is_nan)
                stored.setdefault((key, v + 0.0, ts, step, is_nan), row)  # -0.0 + 0.0 is 0.0
                best = latest.get(key)
                if best is None or (step, ts, v) > (best[3], best[2], best[1]):
                    latest[key] = row
    return stored.values(), latest.values()


def _bits(rows_):
    return {(k, struct.pack("<d", v), t, s, n) for k, v, t, s, n in rows_}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches)
def test_bulk_paths_match_mlflows_rules(db, batches):
    async def go():
        c = await asyncpg.connect(db)
        try:
            await _bulk.prepare_connection(c)
            run_id = await new_run(c)
            for as_block, batch in batches:
                if as_block:
                    out = await apply_block(c, [(run_id, *p) for _, p in batch])
                else:
                    recs = [
                        rec(ev.METRIC, run_id, *p) if kind == "m" else rec(ev.BATCH, run_id, [list(x) for x in p], [], [])
                        for kind, p in batch
                    ]
                    out = await apply(c, recs)
                assert out == [None] * len(out)
            cols = "key, value, timestamp, step, is_nan"
            return (
                await rows(c, f"SELECT {cols} FROM metrics WHERE run_uuid = $1", run_id),
                await rows(c, f"SELECT {cols} FROM latest_metrics WHERE run_uuid = $1", run_id),
            )
        finally:
            await c.close()

    got, got_latest = asyncio.run(go())
    stored, latest = model(batches)
    assert len(got) == len(stored) and _bits(got) == _bits(stored)
    assert _bits(got_latest) == _bits(latest)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(RUNS_), points), min_size=1, max_size=60))
def test_latest_of_block_is_latest_in_order(pts):
    """rules.latest_of_block (the plain path's C-level ranking) agrees with the rule taken
    point by point in logging order, ties (-0.0 and 0.0) included."""
    finite = [(r, k, v if math.isfinite(v) else 1.5, ts, step) for r, (k, v, ts, step) in pts]
    block = ev.decode_metric_block([ev.encode_metric(*p) for p in finite])
    want = rules.latest_in_order(list(block), range(len(block)))
    got = rules.latest_of_block(block.fields)
    assert {k: (*r[:4], struct.pack("<d", r[4]), *r[5:]) for k, r in got.items()} == {
        k: (*r[:4], struct.pack("<d", r[4]), *r[5:]) for k, r in want.items()
    }


# -- the writer's first try, with no savepoint -------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("way", ["records", "block"])
async def test_writer_redoes_a_batch_that_needs_a_savepoint(conn, db, monkeypatch, way):
    """The writer applies a batch of logging records with no savepoint (its transaction's
    rollback is one): a duplicate point, a refused value or a param conflict found there rolls
    the transaction back and the batch is applied again the careful way, with the same outcomes
    and rows as ``apply_logging`` in its savepoint gives."""
    from asynctrack.store._postgres.writes import PostgresWriter

    redone = []

    class CountedRedo(_bulk.Redo):
        def __init__(self, *args):
            super().__init__(*args)
            redone.append(self)

    monkeypatch.setattr(_bulk, "Redo", CountedRedo)
    writer = PostgresWriter(db, "/a", "the test database")

    async def write(points):
        if way == "block":
            records = ev.decode_metric_block([ev.encode_metric(*p) for p in points])
        else:
            records = [rec(ev.METRIC, *p) for p in points]
        return await writer.apply(records)

    try:
        run_id = await new_run(conn)
        points = [(run_id, "m", float(i % 5), 100 + i % 3, i % 4) for i in range(60)]
        assert await write(points) == [None] * 60
        assert redone == []  # the usual batch: straight, no savepoint, no redo
        assert await write(points) == [None] * 60  # a replay: every point a duplicate
        assert len(redone) == 1
        assert len(await rows(conn, "SELECT 1 FROM metrics")) == len(set(points))

        bad = [(run_id, "n", float(i), 10, i) for i in range(30)]
        bad[7] = (run_id, "k" * 251, 1.0, 10, 7)
        out = await write(bad)
        assert codes(out) == [None] * 7 + ["INTERNAL_ERROR"] + [None] * 22
        assert len(redone) == 2
        assert len(await rows(conn, "SELECT 1 FROM metrics WHERE key = 'n'")) == 29

        batch = [rec(ev.PARAM, run_id, "a", "1"),
                 rec(ev.BATCH, run_id, [["b", 1.0, 1, 1]], [["a", "2"]], [["t", "1"]])]
        assert codes(await writer.apply(batch)) == [None, "INVALID_PARAMETER_VALUE"]  # a rule: no redo
        assert len(redone) == 2
        assert await rows(conn, "SELECT key, value FROM params") == [("a", "1")]
        assert await rows(conn, "SELECT count(*) FROM metrics WHERE key = 'b'") == [(0,)]
    finally:
        await writer.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("way", ["records", "block"])
async def test_writer_stores_one_point_by_one_statement_under_the_rules(conn, db, monkeypatch, way):
    """A batch of one finite point (a synchronous log_metric) is checked, stored and upserted
    by one statement; a point of a deleted or missing run, a duplicate, a refused key or a NaN
    get what the general way gives them."""
    from asynctrack.store._postgres.writes import PostgresWriter

    statements = []
    real_fetchval = asyncpg.Connection.fetchval

    async def fetchval(self, query, *args, **kwargs):
        statements.append(query)
        return await real_fetchval(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "fetchval", fetchval)
    writer = PostgresWriter(db, "/a", "the test database")

    async def write(point):
        if way == "block":
            return await writer.apply(ev.decode_metric_block([ev.encode_metric(*point)]))
        return await writer.apply([rec(ev.METRIC, *point)])

    try:
        run_id = await new_run(conn)
        deleted = await new_run(conn, stage="deleted")
        assert await write((run_id, "m", 2.5, 10, 3)) == [None]
        assert statements == [_bulk._ONE_POINT]
        assert await write((run_id, "m", 1.5, 10, 2)) == [None]  # lower: latest stays
        assert await write((run_id, "m", 2.5, 10, 3)) == [None]  # a duplicate: stored once
        assert await rows(conn, "SELECT value, step FROM metrics ORDER BY step") == [(1.5, 2), (2.5, 3)]
        assert await rows(conn, "SELECT value, step FROM latest_metrics") == [(2.5, 3)]

        out = await write((deleted, "m", 1.0, 10, 1))
        assert codes(out) == ["INVALID_PARAMETER_VALUE"] and "must be in the 'active' state" in str(out[0])
        out = await write(("f" * 32, "m", 1.0, 10, 1))
        assert codes(out) == ["RESOURCE_DOES_NOT_EXIST"]
        out = await write((run_id, "k" * 251, 1.0, 10, 9))
        assert codes(out) == ["INTERNAL_ERROR"] and "character varying(250)" in str(out[0])
        assert await write((run_id, "n", math.nan, 10, 1)) == [None]  # not finite: the general way
        assert await rows(conn, "SELECT value, is_nan FROM metrics WHERE key = 'n'") == [(0.0, True)]
        assert await rows(conn, "SELECT count(*) FROM metrics WHERE run_uuid <> $1", run_id) == [(0,)]
    finally:
        await writer.close()
