"""The store's bulk metric paths (_bulk.py): plain METRIC runs bound with no Python work per
point, BATCH metrics bound behind their run id, latest_metrics taken from SQL. Whatever the
path, what is stored must be what binding each point on its own stores, and latest_metrics
must follow MLflow's rule (highest (step, timestamp, value), the first logged among equals)."""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
import struct
import threading

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from asynctrack import events as ev
from asynctrack.store._sqlite import SqliteStore
from asynctrack.store._sqlite import _bulk, writes
from tests._store_fixtures import new_run, rec, rows, store  # noqa: F401 (fixture)

MAX = 1.7976931348623157e308
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def as_stored(store, values):
    """What the store's database gives back for each value: PostgreSQL's DOUBLE PRECISION
    keeps every double (-0.0 too, as MLflow's psycopg2 binds it); SQLite, see
    :func:`as_sqlite_stores`."""
    return list(values) if not isinstance(store, SqliteStore) else as_sqlite_stores(values)


def as_sqlite_stores(values):
    """What SQLite gives back for each value bound on its own into a FLOAT column (it keeps
    integral reals as integers on disk, so -0.0 comes back as 0.0: MLflow's store does the same)."""
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, v FLOAT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    return [v for _, v in con.execute("SELECT i, v FROM t ORDER BY i")]


def hard_floats(n: int, seed: int) -> list[float]:
    rnd = random.Random(seed)
    out = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, MAX, -MAX,
           1.0, 0.1, 1e16, 1e22, 1e23, 123456789012345678.0, 2.0**53 + 2, 1 / 3]
    while len(out) < n:
        x = struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(64)))[0]
        if math.isfinite(x):
            out.append(x)
    return out


# 617 = 512 + 64 + 32 + 8 + 1: every statement size is used.
@pytest.mark.asyncio
@pytest.mark.parametrize("n", [1, 7, 33, 617, 1100])
async def test_plain_metrics_round_trip_bit_for_bit(store, n):
    run_id = await new_run(store)
    values = hard_floats(max(n, 16), seed=n)[:n]
    steps = [INT64_MIN, INT64_MAX, -1, 0, 2**53 + 1] + list(range(n))
    stamps = [0, INT64_MAX, 1, 2**53 + 1] + list(range(10**12, 10**12 + n))
    batch = [rec(ev.METRIC, run_id, "m", v, stamps[i], steps[i]) for i, v in enumerate(values)]
    assert await store.apply(batch) == [None] * n
    got = rows(store, "SELECT value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ?", run_id)
    want = {(bits(v), stamps[i], steps[i]) for i, v in enumerate(as_stored(store, values))}
    assert {(bits(v), t, s) for v, t, s, _ in got} == want
    assert len(got) == n and {r[3] for r in got} == {0}
    assert {type(v) for v, *_ in got} == {float}


@pytest.mark.asyncio
@pytest.mark.parametrize("n", [1, 9, 617, 1000])
async def test_batch_metrics_round_trip_bit_for_bit(store, n):
    run_id = await new_run(store)
    values = hard_floats(max(n, 16), seed=1000 + n)[:n]
    steps = [INT64_MIN, INT64_MAX] + list(range(n))
    entries = [[f"k{i % 3}", v, INT64_MAX - i, steps[i]] for i, v in enumerate(values)]
    assert await store.apply([rec(ev.BATCH, run_id, entries, [], [])]) == [None]
    got = rows(store, "SELECT key, value, timestamp, step FROM metrics WHERE run_uuid = ?", run_id)
    want = {(e[0], bits(v), e[2], e[3]) for e, v in zip(entries, as_stored(store, values))}
    assert {(k, bits(v), t, s) for k, v, t, s in got} == want and len(got) == n


@pytest.mark.asyncio
async def test_non_finite_values_in_either_path(store):
    run_id = await new_run(store)
    out = await store.apply(
        [
            rec(ev.METRIC, run_id, "a", 1.0, 1, 1),
            rec(ev.METRIC, run_id, "a", math.nan, 1, 2),
            rec(ev.BATCH, run_id, [["b", math.inf, 1, 1], ["b", 2.0, 1, 0], ["c", -math.inf, 1, 1]], [], []),
            rec(ev.BATCH, run_id, [["d", 2.0, 1, 0], ["d", 3.0, 1, 5]], [], []),
        ]
    )
    assert out == [None] * 4
    got = set(rows(store, "SELECT key, value, step, is_nan FROM metrics"))
    assert got == {
        ("a", 1.0, 1, 0), ("a", 0.0, 2, 1), ("b", MAX, 1, 0), ("b", 2.0, 0, 0),
        ("c", -MAX, 1, 0), ("d", 2.0, 0, 0), ("d", 3.0, 5, 0),
    }
    latest = set(rows(store, "SELECT key, value, step, is_nan FROM latest_metrics"))
    assert latest == {("a", 0.0, 2, 1), ("b", MAX, 1, 0), ("c", -MAX, 1, 0), ("d", 3.0, 5, 0)}


@pytest.mark.asyncio
@pytest.mark.parametrize("first_nan", [True, False])
async def test_nan_and_zero_at_the_same_step_and_time_first_logged_is_latest(store, first_nan):
    """NaN is stored as 0: equal to a logged 0.0 at the same step and time, so (as in MLflow)
    the first of the two stays the latest, within one batch and across batches."""
    run_id = await new_run(store)
    pair = [math.nan, 0.0] if first_nan else [0.0, math.nan]
    await store.apply([rec(ev.METRIC, run_id, "one", v, 5, 5) for v in pair])
    for v in pair:
        await store.apply([rec(ev.METRIC, run_id, "two", v, 5, 5)])
    await store.apply([rec(ev.BATCH, run_id, [["three", v, 5, 5] for v in pair], [], [])])
    latest = dict(rows(store, "SELECT key, is_nan FROM latest_metrics"))
    expected = int(first_nan)
    assert latest == {"one": expected, "two": expected, "three": expected}


@pytest.mark.asyncio
async def test_malformed_metric_record_fails_alone(store):
    """A METRIC record of the wrong shape (a spool written by something else) cannot shift the
    parameters of the records bound beside it."""
    run_id = await new_run(store)
    good = [rec(ev.METRIC, run_id, "m", float(i), 10, i) for i in range(40)]
    bad = (ev.VERSION, ev.METRIC, run_id, "m", 99.0, 10, 99, "extra")
    out = await store.apply(good[:20] + [bad] + good[20:])
    assert out[:20] == [None] * 20 and out[21:] == [None] * 20
    assert out[20] is not None and out[20].error_code == "INTERNAL_ERROR"
    got = rows(store, "SELECT value, step FROM metrics ORDER BY step")
    assert got == [(float(i), i) for i in range(40)]
    assert rows(store, "SELECT value, step FROM latest_metrics") == [(39.0, 39)]


@pytest.mark.skipif(not hasattr(sqlite3.Connection, "setlimit"), reason="sqlite3 has no setlimit before Python 3.11")
def test_row_sizes_respect_the_parameter_limit():
    con = sqlite3.connect(":memory:")
    assert _bulk._row_sizes(con, 7)[-1] == 1
    con.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    assert max(_bulk._row_sizes(con, 7)) * 7 < 999
    assert max(_bulk._row_sizes(con, 4)) * 4 + 1 <= 999


class _NoGetlimit:
    """A connection as Python 3.10's or pysqlite3's sqlite3 gives it: no getlimit()."""

    def __init__(self, con):
        self.execute = con.execute


@pytest.mark.parametrize("limit", [None, 999])
def test_row_sizes_are_probed_where_sqlite3_has_no_getlimit(monkeypatch, limit):
    """Without getlimit the limit is found by preparing the largest statement once: the large
    statements where SQLite allows them, old SQLite's 999 where it does not."""
    con = sqlite3.connect(":memory:")
    if limit is not None:
        if not hasattr(con, "setlimit"):
            pytest.skip("sqlite3 has no setlimit before Python 3.11")
        con.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    monkeypatch.setattr(_bulk, "_PROBED_LIMIT", [])
    sizes = _bulk._row_sizes(_NoGetlimit(con), 7)
    if limit is None and sqlite3.sqlite_version_info >= (3, 32):
        assert max(sizes) == max(_bulk._ROW_SIZES)
    else:
        assert max(sizes) * 7 < 999
    assert sizes[-1] == 1
    assert _bulk._PROBED_LIMIT  # found once, then kept


# -- against a model of MLflow's rules -------------------------------------------------------

KEYS = ("a", "b", "c")
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, math.nan, math.inf, -math.inf, MAX]),
)
points = st.tuples(st.sampled_from(KEYS), values, st.integers(0, 3), st.integers(-2, 3))
records = st.lists(
    st.one_of(
        st.builds(lambda p: ("m", p), points),
        st.builds(lambda ps: ("b", ps), st.lists(points, min_size=1, max_size=8)),
    ),
    min_size=1,
    max_size=30,
)


def model(batches):
    """MLflow's SQL store: NaN -> 0 with is_nan, ±inf -> ±MAX, identical points once, latest =
    the first logged point with the highest (step, timestamp, stored value)."""
    stored, latest = set(), {}
    for batch in batches:
        for kind, payload in batch:
            for key, value, ts, step in [payload] if kind == "m" else payload:
                is_nan = int(value != value)
                v = 0.0 if is_nan else (MAX if value == math.inf else -MAX if value == -math.inf else value)
                v = 0.0 if v == 0 else v  # SQLite keeps -0.0 as 0
                stored.add((key, v, ts, step, is_nan))
                best = latest.get(key)
                if best is None or (step, ts, v) > (best[3], best[2], best[1]):
                    latest[key] = (key, v, ts, step, is_nan)
    return stored, set(latest.values())


# Ties the latest-metric rule must break as MLflow does, whatever examples hypothesis draws: NaN
# and 0.0 (both stored as 0) and inf and MAX (both stored as MAX) at one step and time, in one
# record, one batch, or across batches; -0.0 beside 0.0; a lower step logged later.
_N, _I = math.nan, math.inf
TIE_EXAMPLES = [
    [[("m", ("a", _N, 1, 1)), ("m", ("a", 0.0, 1, 1))]],
    [[("m", ("a", 0.0, 1, 1)), ("m", ("a", _N, 1, 1))]],
    [[("b", [("a", _N, 1, 1), ("a", 0.0, 1, 1)])]],
    [[("b", [("a", 0.0, 1, 1), ("a", _N, 1, 1)])]],
    [[("m", ("a", 0.0, 1, 1))], [("b", [("a", _N, 1, 1)])]],
    [[("b", [("a", _N, 1, 1)])], [("m", ("a", 0.0, 1, 1))]],
    [[("m", ("a", _I, 1, 1)), ("m", ("a", MAX, 1, 1)), ("b", [("a", -_I, 2, 1), ("a", -MAX, 2, 1)])]],
    [[("b", [("a", -0.0, 1, 1), ("a", 0.0, 1, 1), ("b", 0.0, 1, 1), ("b", -0.0, 1, 1)])]],
    [[("m", ("a", 5.0, 3, 3)), ("m", ("a", 9.0, 3, -2)), ("b", [("a", 5.0, 3, 3), ("a", 1.0, 0, 3)])]],
]


def _tie_examples(fn):
    for batches in TIE_EXAMPLES:
        fn = example(batches=batches)(fn)
    return fn


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(records, min_size=1, max_size=3))
@_tie_examples
def test_bulk_paths_match_mlflows_rules(tmp_path_factory, batches):
    tmp = tmp_path_factory.mktemp("bulk")
    s = SqliteStore(f"sqlite:///{tmp}/mlflow.db", artifact_root=str(tmp / "mlruns"))
    try:

        async def go():
            run_id = await new_run(s)
            for batch in batches:
                recs = [
                    rec(ev.METRIC, run_id, p[0], p[1], p[2], p[3]) if kind == "m"
                    else rec(ev.BATCH, run_id, [list(x) for x in p], [], [])
                    for kind, p in batch
                ]
                assert await s.apply(recs) == [None] * len(recs)
            await s.close_writer()

        asyncio.run(go())
        stored, latest = model(batches)
        got = set(rows(s, "SELECT key, value, timestamp, step, is_nan FROM metrics"))
        assert {(k, bits(v), t, st_, n) for k, v, t, st_, n in got} == {
            (k, bits(v), t, st_, n) for k, v, t, st_, n in stored
        }
        got_latest = set(rows(s, "SELECT key, value, timestamp, step, is_nan FROM latest_metrics"))
        assert got_latest == latest
    finally:
        s.close()


finite_points = st.tuples(
    st.sampled_from(KEYS),
    st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.0, -0.0, 1.0, MAX])),
    st.integers(0, 3),
    st.integers(-2, 3),
)
big_batches = st.lists(  # finite: the path that sorts by key and finds the latest per key group
    st.builds(lambda ps: ("b", ps), st.lists(finite_points, min_size=17, max_size=60)), min_size=1, max_size=4
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(big_batches, min_size=1, max_size=3))
def test_large_log_batches_sorted_by_key_match_mlflows_rules(tmp_path_factory, batches):
    """Batches over 16 metrics are stored key by key and their latest points found per key
    group: the same rows and latest_metrics as MLflow's rules, ties included."""
    test_bulk_paths_match_mlflows_rules.hypothesis.inner_test(tmp_path_factory, batches)


@pytest.mark.asyncio
async def test_latest_over_many_points_at_one_step_across_batches(store):
    """step 0 everywhere (log_metric without a step): the latest is the highest timestamp,
    then value, and a later batch of lower points leaves it alone."""
    run_id = await new_run(store)
    for b in range(4):
        batch = [rec(ev.METRIC, run_id, "m", float(i % 7), 1000 * b + i, 0) for i in range(40)]
        await store.apply(batch)
    assert rows(store, "SELECT value, timestamp, step FROM latest_metrics") == [(4.0, 3039, 0)]
    await store.apply([rec(ev.METRIC, run_id, "m", 99.0, 5, 0) for _ in range(20)])  # older
    await store.apply([rec(ev.BATCH, run_id, [["m", 50.0, 3039, 0]] * 20, [], [])])  # same time, higher
    assert rows(store, "SELECT value, timestamp, step FROM latest_metrics") == [(50.0, 3039, 0)]
    await store.apply([rec(ev.METRIC, run_id, "m", float(i), 1, -1) for i in range(30)])  # lower step
    assert rows(store, "SELECT value, timestamp, step FROM latest_metrics") == [(50.0, 3039, 0)]


@pytest.mark.sqlite_only("SQLite's query plan of its own upsert (PostgreSQL's bulk SQL: tests/test_postgres_bulk.py)")
def test_latest_query_reads_only_the_new_points_of_the_top_step(store):
    """The latest_metrics upsert must not read a key's whole history (no timing here: the
    plan is the point): a seek on (run_uuid, key, step, rowid) and a max() on the index."""
    con = sqlite3.connect(store.path)
    try:
        plan = [r[3] for r in con.execute("EXPLAIN QUERY PLAN " + _bulk._UPSERT_LATEST_FROM_METRICS, ("r", "k", "r", "k", 0))]
    finally:
        con.close()
    assert any("index_metrics_run_uuid_key_step (run_uuid=? AND key=? AND step=? AND rowid>?)" in p for p in plan), plan
    assert not any("SCAN" in p for p in plan), plan


@pytest.mark.sqlite_only("counts the statements of SQLite's writer (PostgreSQL COPYs: tests/test_postgres_bulk.py)")
def test_one_runs_log_batch_records_are_inserted_with_few_statements(store):
    """Consecutive BATCH records of one run (async log_metrics calls) go in together: a few
    multi-row statements, not one per record, each of whose SQLite steps must take the GIL
    back from a busy producer (no timing here: the statements are counted)."""

    async def go():
        return await new_run(store)

    run_id = asyncio.run(go())
    batch = [
        rec(ev.BATCH, run_id, [[f"m{k}", step + k / 10, 1000 + step, step] for k in range(5)], [], [])
        for step in range(2000)
    ]
    writer = writes.SqliteWriter(store.path, str(store.path) + "-artifacts")
    writer._identity = writes._identity_of(store.path)
    conn = writes.connect(store.path, pragmas=writes.WRITER_PRAGMAS)
    inserts = []
    conn.set_trace_callback(lambda sql: inserts.append(sql) if "INSERT OR IGNORE INTO metrics " in sql else None)
    try:
        assert writer._transaction_on(conn, batch) == [None] * 2000
    finally:
        conn.close()
    assert len(inserts) <= 30  # 10,000 rows: 19 statements of 512 rows, then the remainder's
    assert rows(store, "SELECT count(*) FROM metrics WHERE run_uuid = ?", run_id) == [(10_000,)]
    latest = rows(store, "SELECT key, value, step FROM latest_metrics WHERE run_uuid = ?", run_id)
    assert sorted(latest) == [(f"m{k}", 1999 + k / 10, 1999) for k in range(5)]


# -- metric points decoded flat (events.MetricBlock), as the writer hands them over ----------

RUNS = ("0" * 32, "1" * 32, "2" * 32)
block_points = st.tuples(
    st.sampled_from(range(len(RUNS))),
    st.sampled_from(KEYS),
    values,
    st.integers(0, 3),
    st.integers(-2, 3),
)


def _apply_both_ways(tmp_path_factory, batches, deleted):
    """The same metric records applied as MetricBlocks to one store and as decoded records to
    another: (outcomes, metrics rows, latest_metrics rows) of each."""
    results = []
    for as_block in (True, False):
        tmp = tmp_path_factory.mktemp("block")
        s = SqliteStore(f"sqlite:///{tmp}/mlflow.db", artifact_root=str(tmp / "mlruns"))
        try:

            async def go():
                for run_id in RUNS:
                    assert await s.apply([rec(ev.CREATE_RUN, run_id, "0", "me", 1000, [], "r")]) == [None]
                if deleted:
                    assert await s.apply([rec(ev.DELETE_RUN, RUNS[2], 2000)]) == [None]
                outcomes = []
                for batch in batches:
                    payloads = [ev.encode_metric(RUNS[r], k, v, ts, step) for r, k, v, ts, step in batch]
                    block = ev.decode_metric_block(payloads)
                    assert block is not None
                    records = block if as_block else [ev.decode(p) for p in payloads]
                    got = await s.apply(records)
                    outcomes.append([None if o is None else (o.error_code, str(o)) for o in got])
                await s.close_writer()
                return outcomes

            outcomes = asyncio.run(go())
            metrics = rows(s, "SELECT run_uuid, key, value, timestamp, step, is_nan FROM metrics ORDER BY rowid")
            latest = rows(s, "SELECT run_uuid, key, value, timestamp, step, is_nan FROM latest_metrics")
            results.append((outcomes, [(*r[:2], bits(r[2]), *r[3:]) for r in metrics], set(latest)))
        finally:
            s.close()
    return results


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(block_points, min_size=1, max_size=40), min_size=1, max_size=3), deleted=st.booleans())
def test_a_metric_block_is_stored_as_its_records_are(tmp_path_factory, batches, deleted):
    """One run or several, finite or not, a deleted run among them: the same outcomes, rows (in
    the same order) and latest_metrics as the records applied one by one."""
    block_way, record_way = _apply_both_ways(tmp_path_factory, batches, deleted)
    assert block_way == record_way
    if deleted:
        assert all(
            (o is not None) == (p[0] == 2) for batch, outs in zip(batches, block_way[0]) for p, o in zip(batch, outs)
        )


@pytest.mark.parametrize("runs", [1, 3])
def test_a_wide_metric_block_is_stored_as_its_records_are(tmp_path_factory, runs):
    """More (run, key) pairs than _WIDE_BATCH_KEYS: stored in the primary key's order."""
    batch = [(i % runs, f"layer_{i % 90}", float(i), 10 + i // 90, i // 90) for i in range(900)]
    KEYS_WIDE = {p[1] for p in batch}
    assert len(KEYS_WIDE) * runs > _bulk._WIDE_BATCH_KEYS
    block_way, record_way = _apply_both_ways(tmp_path_factory, [batch], deleted=False)
    assert block_way == record_way
    assert len(block_way[1]) == 900 and len(block_way[2]) == len({(p[0], p[1]) for p in batch})


# -- no thread for aiosqlite -----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.sqlite_only("aiosqlite's thread; asyncpg runs on the writer's loop and starts none")
async def test_writer_runs_its_connection_inline_where_no_thread_can_start(store, monkeypatch):
    """Python 3.12+ starts no thread at interpreter shutdown, which is when the writer reopens
    a store that was down to drain its queue: its connection then runs on the loop's thread
    and the batch is stored (on 3.12 the exit-spool tests in test_store_failure.py fail
    without this)."""
    import aiosqlite.core

    run_id = await new_run(store)
    await store.close_writer()

    class NoThread(threading.Thread):
        def start(self):
            raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(aiosqlite.core, "Thread", NoThread)
    writer = writes.SqliteWriter(str(store.path), str(store.path) + "-artifacts")
    try:
        await writer.open()
        assert isinstance(writer._conn, writes._InlineConnection)
        out = await writer.apply([rec(ev.METRIC, run_id, "m", float(i), 10, i) for i in range(100)])
        assert out == [None] * 100
    finally:
        await writer.close()
    assert rows(store, "SELECT count(*), max(value) FROM metrics WHERE run_uuid = ?", run_id) == [(100, 99.0)]
    assert rows(store, "SELECT value, step FROM latest_metrics") == [(99.0, 99)]
