"""MLflow's write rules on their own (``asynctrack.store._sql``), with no database: what every
SQL store must decide alike. The texts are MLflow's, as the store tests assert them through
SQLite (tests/test_store.py) and against MLflow's server (tests/test_http_store.py)."""

from __future__ import annotations

import ast
import math
import pathlib
import sqlite3

import pytest

from asynctrack import events as ev
from asynctrack.store._sql import batch, rules
from asynctrack.store._sqlite import SqliteStore
from tests._store_fixtures import rows, store  # noqa: F401 (fixture)
from tests.test_store import LATEST_CASES

MAX = 1.7976931348623157e308
RUN = "r" * 32


def metric(run_id, key, value, ts, step):
    return (ev.VERSION, ev.METRIC, run_id, key, value, ts, step)


# -- stored values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, stored, is_nan",
    [(1.5, 1.5, False), (-0.0, -0.0, False), (math.nan, 0.0, True), (math.inf, MAX, False), (-math.inf, -MAX, False)],
)
def test_nan_and_inf_are_stored_as_mlflow_stores_them(value, stored, is_nan):
    row = rules.stored_metric(metric(RUN, "m", value, 10, 3))
    assert row[4] == stored and (row[0] == rules.NAN_MARK) is is_nan
    assert row[1:4] == (ev.METRIC, RUN, "m") and row[5:] == (10, 3)
    assert rules.sanitize_metric_value(value) == (is_nan, stored)


def test_a_finite_metric_record_is_stored_as_it_is():
    rec = metric(RUN, "m", 2.0, 10, 3)
    assert rules.stored_metric(rec) is rec


def test_the_point_identity_is_the_metrics_tables_primary_key(store):  # noqa: F811
    if isinstance(store, SqliteStore):
        con = sqlite3.connect(store.path)
        try:
            pk = [row[1] for row in sorted(con.execute("PRAGMA table_info(metrics)"), key=lambda r: r[5]) if row[5]]
        finally:
            con.close()
    else:
        pk = [r[0] for r in rows(store, """
            SELECT a.attname FROM pg_index i
            JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = 'public.metrics'::regclass AND i.indisprimary ORDER BY k.n""")]
    assert tuple(pk) == rules.POINT_IDENTITY


# -- latest_metrics ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "points, expected",
    [
        *LATEST_CASES,
        # NaN compares as its stored 0; ±inf as ±max
        ([(math.nan, 500, 2), (-1.0, 500, 2)], (0.0, 500, 2)),
        ([(1.0, 500, 2), (math.nan, 500, 2)], (1.0, 500, 2)),
        ([(math.inf, 500, 2), (1e300, 500, 2)], (MAX, 500, 2)),
    ],
)
def test_latest_is_highest_step_then_timestamp_then_value(points, expected):
    records = [metric(RUN, "m", v, t, s) for v, t, s in points]
    latest = rules.latest_in_order(records, range(len(records)))
    row = latest[(RUN, "m")]
    assert (row[4], row[5], row[6]) == expected
    if all(math.isfinite(v) for v, _, _ in points):  # the same from log_batch entries
        entries = [[("m", v, t, s) for v, t, s in points]]
        row = rules.latest_of_batches([(RUN, e) for e in entries])[(RUN, "m")]
        assert (row[4], row[5], row[6]) == expected


def test_among_equal_points_the_first_logged_is_kept():
    """NaN is stored as 0: a NaN and a 0 at the same step and time are equal, the first wins."""
    records = [metric(RUN, "m", math.nan, 5, 1), metric(RUN, "m", 0.0, 5, 1)]
    assert rules.latest_in_order(records, [0, 1])[(RUN, "m")][0] == rules.NAN_MARK
    assert rules.latest_in_order(records[::-1], [0, 1])[(RUN, "m")][0] == ev.VERSION
    first, second = ("m", 1.0, 5, 1), ("m", 1.0, 5, 1)
    got = rules.latest_of_batches([(RUN, [first]), (RUN, [second])])[(RUN, "m")]
    assert got == (ev.VERSION, ev.METRIC, RUN, *first)


def test_latest_takes_only_the_accepted_records_and_batches_too():
    records = [
        metric(RUN, "m", 9.0, 5, 9),  # refused: not among the accepted
        (ev.VERSION, ev.BATCH, RUN, (("m", 1.0, 5, 2), ("n", math.nan, 5, 0)), (), ()),
        (ev.VERSION, ev.PARAM, RUN, "p", "1"),
    ]
    latest = rules.latest_in_order(records, [1, 2])
    assert latest[(RUN, "m")][4:] == (1.0, 5, 2)
    assert latest[(RUN, "n")][0] == rules.NAN_MARK and latest[(RUN, "n")][4] == 0.0


def test_latest_of_batches_keys_apart_and_runs_apart():
    groups = [(RUN, [("a", 1.0, 1, 1), ("b", 5.0, 1, 1), ("a", 3.0, 1, 2)]), ("other", [("a", 7.0, 1, 0)])]
    got = {k: v[4:] for k, v in rules.latest_of_batches(groups).items()}
    assert got == {(RUN, "a"): (3.0, 1, 2), (RUN, "b"): (5.0, 1, 1), ("other", "a"): (7.0, 1, 0)}


# -- params ----------------------------------------------------------------------------------


def test_param_changed_text():
    exc = rules.param_changed(RUN, "lr", "0.1", "0.2")
    assert exc.error_code == "INVALID_PARAMETER_VALUE"
    assert exc.message == (
        "Changing param values is not allowed. Param with key='lr' was already logged with "
        f"value='0.1' for run ID='{RUN}'. Attempted logging new value '0.2'."
    )


def test_batch_param_conflicts_name_every_changed_param():
    logged = {(RUN, "lr"): "0.1", (RUN, "depth"): "3", ("other", "x"): "1"}
    assert rules.batch_param_conflicts(RUN, [("lr", "0.1"), ("new", "1"), ("x", "2")], logged) is None
    exc = rules.batch_param_conflicts(RUN, [("lr", "0.3"), ("depth", "3"), ("x", "2"), ("depth", "4")], logged)
    assert exc.error_code == "INVALID_PARAMETER_VALUE"
    assert exc.message == (
        "Changing param values is not allowed. Params were already logged="
        "'[{'key': 'lr', 'old_value': '0.1', 'new_value': '0.3'}, "
        "{'key': 'depth', 'old_value': '3', 'new_value': '4'}]'"
        f" for run ID='{RUN}'."
    )


def test_sort_out_checks_params_against_the_stored_ones_and_the_batchs_own():
    records = [
        (ev.VERSION, ev.PARAM, RUN, "lr", "0.1"),
        (ev.VERSION, ev.PARAM, RUN, "lr", "0.2"),
        (ev.VERSION, ev.BATCH, RUN, (), (("lr", "0.3"), ("depth", "3")), ()),
        (ev.VERSION, ev.BATCH, RUN, (), (("depth", "4"),), ()),
        (ev.VERSION, ev.PARAM, RUN, "stored", "b"),
    ]
    assert batch.params_wanted(records, 0, len(records)) == {RUN: {"lr", "depth", "stored"}}
    outcomes = [None] * len(records)
    got = batch.sort_out(records, 0, len(records), {RUN: "active"}, {(RUN, "stored"): "a"}, outcomes)
    assert got.accepted == [0, 3]
    assert [type(o).__name__ for o in outcomes] == ["NoneType", "MlflowException", "MlflowException", "NoneType", "MlflowException"]
    assert "Attempted logging new value '0.2'" in outcomes[1].message
    assert "'old_value': '0.1', 'new_value': '0.3'" in outcomes[2].message  # all or nothing:
    assert got.param_rows == [("lr", "0.1", RUN), ("depth", "4", RUN)]  # no 'depth' = '3'


# -- lifecycle -------------------------------------------------------------------------------


def test_runs_must_exist_and_be_active_except_to_delete_or_restore():
    assert rules.run_refusal(ev.METRIC, RUN, "active") is None
    missing = rules.run_refusal(ev.DELETE_RUN, RUN, None)
    assert (missing.error_code, missing.message) == ("RESOURCE_DOES_NOT_EXIST", f"Run with id={RUN} not found")
    for op in (ev.METRIC, ev.PARAM, ev.TAG, ev.BATCH, ev.UPDATE_RUN, ev.DELETE_TAG):
        exc = rules.run_refusal(op, RUN, "deleted")
        assert exc.error_code == "INVALID_PARAMETER_VALUE"
        assert exc.message == f"The run {RUN} must be in the 'active' state. Current state is deleted."
    assert rules.run_refusal(ev.DELETE_RUN, RUN, "deleted") is None
    assert rules.run_refusal(ev.RESTORE_RUN, RUN, "deleted") is None
    assert rules.run_refusal(ev.RESTORE_RUN, RUN, "active") is None


@pytest.mark.parametrize(
    "op, active, deleted",
    [
        (ev.DELETE_EXPERIMENT, None, ("RESOURCE_DOES_NOT_EXIST", "No Experiment with id=1 exists")),
        (ev.RESTORE_EXPERIMENT, ("RESOURCE_DOES_NOT_EXIST", "No Experiment with id=1 exists"), None),
        (ev.RENAME_EXPERIMENT, None, ("INVALID_STATE", "Cannot rename a non-active experiment.")),
        (ev.SET_EXPERIMENT_TAG, None, ("INVALID_PARAMETER_VALUE", "The experiment 1 must be in the 'active' state. Current state is deleted.")),
        (ev.DELETE_EXPERIMENT_TAG, None, ("INVALID_PARAMETER_VALUE", "The experiment 1 must be in the 'active' state. Current state is deleted.")),
        (ev.CREATE_RUN, None, ("INVALID_PARAMETER_VALUE", "The experiment 1 must be in the 'active' state. Current state is deleted.")),
    ],
)
def test_experiment_lifecycle_rules(op, active, deleted):
    def outcome(stage):
        exc = rules.experiment_refusal(op, "1", stage)
        return None if exc is None else (exc.error_code, exc.message)

    assert outcome("active") == active
    assert outcome("deleted") == deleted
    assert outcome(None) == ("RESOURCE_DOES_NOT_EXIST", "No Experiment with id=1 exists")


def test_missing_tags_and_names_taken():
    assert rules.no_run_tag(RUN, "k").message == f"No tag with name: k in run with id {RUN}"
    assert rules.no_experiment_tag("3", "k").message == "No tag with name: k in experiment with id 3"
    exc = sqlite3.IntegrityError("UNIQUE constraint failed: experiments.name")
    text = rules.sqlalchemy_error_text("sqlite3", exc, "INSERT ...", ("e", 1))
    assert text == (
        "(sqlite3.IntegrityError) UNIQUE constraint failed: experiments.name\n[SQL: INSERT ...]\n"
        "[parameters: ('e', 1)]\n(Background on this error at: https://sqlalche.me/e/21/gkpj)"
    )
    taken = rules.experiment_exists("e", text)
    assert taken.error_code == "RESOURCE_ALREADY_EXISTS"
    assert taken.message == f"Experiment(name=e) already exists. Error: {text}"
    assert (rules.rename_conflict(text).error_code, rules.rename_conflict(text).message) == ("BAD_REQUEST", text)


# -- the run name ----------------------------------------------------------------------------


def test_a_new_runs_name_is_mirrored_in_its_tag_unless_the_caller_set_it():
    assert rules.new_run_tags(RUN, [("a", "1")], "n") == [("a", "1", RUN), ("mlflow.runName", "n", RUN)]
    assert rules.new_run_tags(RUN, [("mlflow.runName", "own")], "n") == [("mlflow.runName", "own", RUN)]
    assert rules.new_run_tags(RUN, [], None) == []
    assert rules.run_artifact_uri("/a/mlruns/1/", RUN) == f"/a/mlruns/1/{RUN}/artifacts"


def test_a_run_name_tag_renames_the_run_and_a_refused_record_stores_nothing():
    records = [
        (ev.VERSION, ev.TAG, RUN, "mlflow.runName", "x"),
        (ev.VERSION, ev.BATCH, RUN, (("m", math.nan, 1, 0),), (), (("mlflow.runName", "y"),)),
        (ev.VERSION, ev.TAG, "gone", "mlflow.runName", "z"),
        metric("nope", "m", 1.0, 1, 1),
        (ev.VERSION, ev.METRIC, RUN, "m", 1.0, 1),  # malformed
    ]
    outcomes = [None] * len(records)
    got = batch.sort_out(records, 0, len(records), {RUN: "active", "gone": "deleted"}, {}, outcomes)
    assert got.accepted == [0, 1]
    assert got.name_rows == [("x", RUN), ("y", RUN)]
    assert got.nan_seen and got.metric_rows[0][0] == rules.NAN_MARK and got.pairs == {(RUN, "m")}
    assert outcomes[2].message == "The run gone must be in the 'active' state. Current state is deleted."
    assert outcomes[3].message == "Run with id=nope not found"
    assert outcomes[4].error_code == "INTERNAL_ERROR"


def test_plain_metrics_need_active_runs_and_finite_values():
    seg = [metric(RUN, "m", float(i), 1, i) for i in range(20)]
    active = {RUN: "active"}
    assert batch.plain_metrics(seg, {RUN}, active)
    assert batch.plain_block(sum(seg, ()), {RUN}, active)
    assert not batch.plain_metrics(seg, {RUN}, {RUN: "deleted"})
    assert not batch.plain_metrics([*seg, metric(RUN, "m", math.inf, 1, 1)], {RUN}, active)
    assert not batch.plain_block(sum([*seg, metric(RUN, "m", math.nan, 1, 1)], ()), {RUN}, active)
    assert batch.finite_entries([("m", 1.0, 1, 1)]) and not batch.finite_entries([("m", math.nan, 1, 1)])


# -- no dialect in the rules -----------------------------------------------------------------


def test_the_rules_import_no_database_driver():
    """What a PostgreSQL store shares with SQLite's must not pull in SQLite."""
    package = pathlib.Path(rules.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("sqlite3", "aiosqlite", "asyncpg", "psycopg") for n in names), path
                assert "_sqlite" not in (getattr(node, "module", None) or ""), path
