"""search_runs' lazily built RunData: every run it returns must be indistinguishable from the
eager entities ``get_run`` builds (another code path, one run at a time), whatever is read
first, and from ``RunData(...)`` built by its constructor. Also the paths around it: paging with
offsets read off the sorted statement, ``max_results=None``, value comparisons joined in the
filter's order, exact metric doubles, awkward text in params and tags, and the pairs fallback
for values JSON cannot hold."""

from __future__ import annotations

import copy
import math
import pickle
import random
import sqlite3
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asynctrack import MlflowClient
from asynctrack.entities import Metric, Param, RunData, RunTag, ViewType
from tests._search_data import build


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = tmp_path_factory.mktemp("lazy") / "mlflow.db"
    uri = f"sqlite:///{path}"
    data = build(uri, n_runs=60, seed=5)
    client = MlflowClient(uri)
    return {"client": client, "data": data, "path": path}


def _same_value(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return type(a) is type(b) and a == b


def _metric_fields(m: Metric) -> tuple:
    return (m.key, m.value if not math.isnan(m.value) else "nan", m.timestamp, m.step,
            m.model_id, m.dataset_name, m.dataset_digest, m.run_id,
            type(m.value), type(m.timestamp), type(m.step))


def _assert_same_data(lazy: RunData, eager: RunData) -> None:
    assert type(lazy) is RunData
    for part in ("params", "tags", "metrics"):
        got, want = getattr(lazy, part), getattr(eager, part)
        assert list(got) == list(want), part  # same keys, same order
        assert all(_same_value(got[k], want[k]) for k in want), part
    assert [_metric_fields(m) for m in lazy._metric_objs] == [
        _metric_fields(m) for m in eager._metric_objs
    ]
    assert repr(lazy).replace("nan", "N") == repr(eager).replace("nan", "N")
    assert str(lazy.to_dictionary()) == str(eager.to_dictionary())
    assert sorted(vars(lazy)) == sorted(vars(eager)) == ["_metric_objs", "_metrics", "_params", "_tags"]


_READS = {
    "params": lambda d: d.params,
    "tags": lambda d: d.tags,
    "metrics": lambda d: d.metrics,
    "_metric_objs": lambda d: d._metric_objs,
    "repr": repr,
    "to_dictionary": lambda d: d.to_dictionary(),
    "iter": lambda d: dict(d),
    "pickle": lambda d: pickle.loads(pickle.dumps(d)),
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
}


@pytest.mark.parametrize("first", sorted(_READS))
def test_lazy_run_data_equals_eager_whatever_is_read_first(world, first):
    client = world["client"]
    runs = client.search_runs(world["data"]["experiments"], "", ViewType.ALL, max_results=1000)
    assert len(runs) == len(world["data"]["runs"])
    for run in runs:
        _READS[first](run.data)
        eager = client.get_run(run.info.run_id)
        assert run.info == eager.info
        assert run.inputs == eager.inputs and run.outputs == eager.outputs
        _assert_same_data(run.data, eager.data)
        assert str(run.to_dictionary()) == str(eager.to_dictionary())


def test_copies_and_pickles_of_a_lazy_run_data_are_eager_and_equal(world):
    client = world["client"]
    run = client.search_runs(world["data"]["experiments"], "", ViewType.ALL, max_results=5)[0]
    eager = client.get_run(run.info.run_id).data
    for other in (pickle.loads(pickle.dumps(run.data)), copy.deepcopy(run.data)):
        _assert_same_data(other, eager)


def test_lazy_run_data_mutators_behave_as_mlflow(world):
    client = world["client"]
    run = client.search_runs(world["data"]["experiments"], "", ViewType.ALL, max_results=5)[0]
    eager = client.get_run(run.info.run_id).data
    for data in (run.data, eager):
        data._add_metric(Metric("new", 1.5, 1, 2))
        data._add_param(Param("new", "v"))
        data._add_tag(RunTag("new", "t"))
    _assert_same_data(run.data, eager)
    assert run.data.metrics["new"] == 1.5 and run.data._metric_objs[-1].key == "new"


def test_from_raw_equals_constructor():
    rows = [("a", 1.0, 5, 0, 7), ("b", None, None, 3, 7), ("a", 2.0, 6, 1, 7)]
    metrics = [Metric("a", 1.0, 5, 0), Metric("b", float("nan"), None, 3), Metric("a", 2.0, 6, 1)]
    eager = RunData(metrics, [Param("p", "1"), Param("q", "")], [RunTag("t", None), RunTag("u", "é")])
    for params, tags in (
        ('{"p":"1","q":""}', '{"t":null,"u":"\\u00e9"}'),
        ([("p", "1"), ("q", "")], [("t", None), ("u", "é")]),
    ):
        _assert_same_data(RunData._from_raw(rows, params, tags), eager)
    _assert_same_data(RunData._from_raw(None, None, None), RunData())
    _assert_same_data(RunData._from_raw([], "{}", []), RunData())
    with pytest.raises(AttributeError):
        RunData._from_raw(None, None, None).nothing  # noqa: B018


def test_paging_reads_every_run_once_in_order(world):
    client = world["client"]
    exps = world["data"]["experiments"]
    everything = client.search_runs(exps, "", ViewType.ALL, max_results=1000, order_by=["metrics.m1"])
    assert len(everything) == len(world["data"]["runs"]) and everything.token is None
    unbounded, token = client._read().search_runs(exps, "", ViewType.ALL, None, ["metrics.m1"], None)
    assert [r.info.run_id for r in unbounded] == [r.info.run_id for r in everything]
    assert token is None
    for size in (1, 7, 59, 60, 61):
        seen, token = [], None
        while True:
            page = client.search_runs(
                exps, "", ViewType.ALL, max_results=size, order_by=["metrics.m1"], page_token=token
            )
            seen += [r.info.run_id for r in page]
            for run in page:
                _assert_same_data(run.data, client.get_run(run.info.run_id).data)
            token = page.token
            if not token:
                break
        assert seen == [r.info.run_id for r in everything], size


@pytest.mark.parametrize(
    "filter_string",
    [
        "metrics.m1 > 0 AND params.p1 = 'abc'",
        "params.p1 = 'abc' AND metrics.m1 > 0",
        "metrics.m1 != 1",
        "params.p1 IS NULL AND metrics.m2 >= 0",
        "tags.t1 LIKE '%b%' AND tags.t2 IS NOT NULL",
        "attributes.run_name = 'alpha' AND params.p2 != 'abc'",
        "params.`a b` ILIKE 'a%' AND metrics.`m 3` < 100",
    ],
)
def test_the_driving_clause_does_not_change_results(world, filter_string):
    """Metric/param/tag comparisons are joined in the filter's order, the first one driving:
    the same runs, in the same order, for any clause order."""
    client = world["client"]
    exps = world["data"]["experiments"]
    got = [r.info.run_id for r in client.search_runs(exps, filter_string, ViewType.ALL, 1000)]
    clauses = filter_string.split(" AND ")
    swapped = " AND ".join(reversed(clauses))
    assert got == [r.info.run_id for r in client.search_runs(exps, swapped, ViewType.ALL, 1000)]


def _random_double(rnd: random.Random) -> float:
    while True:
        value = struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(64)))[0]
        if not math.isnan(value):
            return value


def test_metric_doubles_and_awkward_text_come_back_exactly(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("exact")
    rnd = random.Random(3)
    texts = ["", "é", "a\"b\\c", "\x00nul", "\n\t\x1f", "💥", "{\"json\": [1]}", "x" * 5000, "null"]
    expected = {}
    for i in range(20):
        run_id = client.create_run(exp, start_time=i).info.run_id
        values = [_random_double(rnd) for _ in range(6)] + [0.1, 5e-324, float("inf"), -0.0]
        metrics = [Metric(f"m{k}", v, 1, 0) for k, v in enumerate(values)]
        params = [Param(f"p{k}", t) for k, t in enumerate(texts)]
        tags = [RunTag(f"t{k}", t) for k, t in enumerate(texts)]
        client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        expected[run_id] = client.get_run(run_id).data
    for run in client.search_runs([exp], "", max_results=1000):
        _assert_same_data(run.data, expected[run.info.run_id])
        assert run.data.params["p8"] == "null" and run.data.params["p3"] == "\x00nul"


def test_values_json_cannot_hold_fall_back_to_pairs(tmp_path):
    """A BLOB in params/tags (not something MLflow writes, but a file may hold it) makes
    SQLite's JSON functions fail; the page is then read as key/value rows."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("blob")
    ids = []
    for i in range(3):
        run_id = client.create_run(exp, start_time=1 + i).info.run_id
        client.log_param(run_id, "p", "v")
        client.set_tag(run_id, "t", "w")
        client.log_metric(run_id, "m", 1.0 + i)
        ids.append(run_id)
    client.flush()
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        con.execute("UPDATE params SET value = x'00ff' WHERE run_uuid = ?", (ids[1],))
    runs = client.search_runs([exp], "")
    by_id = {r.info.run_id: r for r in runs}
    assert by_id[ids[1]].data.params == {"p": b"\x00\xff"}
    assert by_id[ids[0]].data.params == {"p": "v"}
    assert all(r.data.tags["t"] == "w" for r in runs)
    assert [r.data.metrics["m"] for r in runs] == [3.0, 2.0, 1.0]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    max_results=st.integers(1, 70),
    order=st.sampled_from([None, ["metrics.m1 DESC"], ["params.p1"], ["attributes.run_name"]]),
    reads=st.lists(st.sampled_from(sorted(_READS)), max_size=3),
)
def test_pages_equal_get_run(world, max_results, order, reads):
    client = world["client"]
    page = client.search_runs(world["data"]["experiments"], "", ViewType.ALL, max_results, order)
    for run in page:
        for read in reads:
            _READS[read](run.data)
        _assert_same_data(run.data, client.get_run(run.info.run_id).data)


def test_threads_reading_the_same_lazy_runs_see_the_same_objects(world):
    import threading

    client = world["client"]
    for _ in range(5):
        runs = client.search_runs(world["data"]["experiments"], "", ViewType.ALL, max_results=1000)
        seen: list = []
        barrier = threading.Barrier(4)

        def read(order):
            barrier.wait()
            out = []
            for run in runs:
                parts = {k: id(getattr(run.data, k)) for k in order}
                out.append(parts)
            seen.append(out)

        orders = [("params", "_metric_objs", "tags", "metrics"), ("metrics", "tags", "params", "_metric_objs"),
                  ("_metric_objs", "params", "metrics", "tags"), ("tags", "metrics", "_metric_objs", "params")]
        threads = [threading.Thread(target=read, args=(o,)) for o in orders]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(seen) == 4
        assert all(s == seen[0] for s in seen)
        for run in runs:
            assert run.data.metrics == {m.key: m.value for m in run.data._metric_objs} or any(
                v != v for v in run.data.metrics.values()
            )


def test_a_run_without_user_id_fails_as_runinfo_does(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("broken")
    run_id = client.create_run(exp).info.run_id
    client.flush()
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        con.execute("UPDATE runs SET user_id = NULL WHERE run_uuid = ?", (run_id,))
    with pytest.raises(Exception, match="user_id cannot be None"):
        client.search_runs([exp], "")


def test_joined_filters_read_the_pages_runs_as_get_run_does(tmp_path):
    """The filtered page query (value comparisons joined, the page read back by rowid): runs
    with no params, tags or metrics, NaN and infinite metrics, deleted runs, every page."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("joined")
    other = client.create_experiment("other")
    ids = []
    for i in range(40):
        run_id = client.create_run(exp if i % 5 else other, start_time=1000 + i // 2).info.run_id
        if i % 4:
            client.log_param(run_id, "p", "x" if i % 3 else "y")
        if i % 6:
            value = [0.5, float("nan"), float("inf"), -1.0, 0.0][i % 5]
            client.log_metric(run_id, "m", value, timestamp=i, step=i % 3)
            client.log_metric(run_id, "n", i / 7, timestamp=i)
        if i % 7 == 0:
            client.set_tag(run_id, "t", "w")
        if i % 9 == 0:
            client.delete_run(run_id)
        ids.append(run_id)
    client.flush()
    with sqlite3.connect(tmp_path / "mlflow.db") as con:  # a run with nothing at all
        con.execute("DELETE FROM tags WHERE run_uuid = ?", (ids[12],))
    filters = [
        "",
        "metrics.m != 0 AND params.p = 'x'",
        "params.p = 'x' AND metrics.m != 0",
        "metrics.m >= -1 AND metrics.n < 3 AND params.p != 'y'",
        "tags.t = 'w' AND params.p IS NULL",
        "params.p IS NULL AND metrics.n > 0",
        "metrics.n > 1 AND attributes.start_time < 1015",
    ]
    for filter_string in filters:
        for view in (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL):
            for order in (None, ["metrics.m DESC"], ["params.p", "start_time"]):
                whole = client.search_runs([exp, other], filter_string, view, 1000, order)
                assert whole.token is None
                for run in whole:
                    eager = client.get_run(run.info.run_id)
                    assert run.info == eager.info
                    _assert_same_data(run.data, eager.data)
                    assert run.inputs.dataset_inputs == [] and run.inputs.model_inputs == []
                    assert run.outputs is None
                for size in (1, 3, len(whole) or 1):
                    seen, token = [], None
                    while True:
                        page = client.search_runs(
                            [exp, other], filter_string, view, size, order, token
                        )
                        seen += [r.info.run_id for r in page]
                        token = page.token
                        if not token:
                            break
                    assert seen == [r.info.run_id for r in whole], (filter_string, view, order)
    some = client.search_runs([exp, other], "metrics.m != 0 AND params.p = 'x'", ViewType.ALL)
    assert some and all(r.data.params["p"] == "x" for r in some)
    assert any(math.isnan(r.data.metrics["m"]) for r in some)
    empty = client.search_runs([exp], "attributes.run_id = '%s'" % ids[12])
    assert len(empty) == 1 and empty[0].data.params == {} and empty[0].data.tags == {}
    assert empty[0].data.metrics == {} and empty[0].data._metric_objs == []
