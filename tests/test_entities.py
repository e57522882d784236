"""Entities: unit tests, and one table of expressions evaluated by both asynctrack and MLflow 3.18.

Divergences from MLflow (deliberate):
  * `RunInfo.run_uuid` exists (the pre-3.0 alias of `run_id`); MLflow 3.18 has no such attribute.
    It is not a property, so `dict(info)` and `repr(info)` are unchanged.
  * `RunInputs()` may omit `dataset_inputs` (default []); MLflow requires the argument.
  * `Experiment.trace_location` is not derived from Databricks trace-destination tags (MLflow builds
    a UnityCatalog object from them); it is whatever was passed, default None.
  * No protobuf: no `to_proto`/`from_proto`, `ViewType.to_proto`/`from_proto`.
"""

from __future__ import annotations

import copy
import gc
import pickle
import subprocess
import sys

import pytest

from asynctrack import entities as E
from asynctrack.entities import (
    Experiment,
    ExperimentTag,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
    RunTag,
    SourceType,
    ViewType,
)
from asynctrack.exceptions import MlflowException
from tests.oracle import ROOT, needs_mlflow, oracle_python, run  # noqa: F401 (skipif uses it)

# ---------------------------------------------------------------------------------- the table
# Each expression is evaluated with the entity classes in scope, on both sides; the repr of the
# result (or the error's type, code and message) must be identical.

_INFO = "RunInfo('rid', '1', 'user', 'RUNNING', 10, None, 'active')"
_INFO_FULL = "RunInfo('rid', '7', 'u', 'FINISHED', 10, 20, 'deleted', artifact_uri='s3://a', run_name='nm')"
_DATA = "RunData([Metric('m', 1.0, 1, 0), Metric('m', 2.0, 2, 1)], [Param('p', 'v')], [RunTag('t', 'x')])"

EXPRESSIONS = [
    # Metric
    "Metric('m', 1.0, 1, 0)",
    "Metric('m', 1.5, 10, 3, model_id='mid', dataset_name='d', dataset_digest='x', run_id='r')",
    "Metric('m', 1.0, 1, 0, dataset_name='d')",
    "Metric('m', 1.0, 1, 0, dataset_digest='x')",
    "Metric('m', 1.0, 1, 0) == Metric('m', 1.0, 1, 0)",
    "Metric('m', 1.0, 1, 0) == Metric('m', 1.0, 1, 1)",
    "Metric('m', 1.0, 1, 0) == Metric('m', 1.0, 2, 0)",
    "Metric('m', 1.0, 1, 0, run_id='a') == Metric('m', 1.0, 1, 0, run_id='b')",
    "Metric('m', 1.0, 1, 0, model_id='a') == Metric('m', 1.0, 1, 0)",
    "Metric('m', 1.0, 1, 0) == ('m', 1.0, 1, 0)",
    "Metric('m', 1.0, 1, 0) != Metric('m', 1.0, 1, 0)",
    "hash(Metric('m', 1.0, 1, 0)) == hash(Metric('m', 1.0, 1, 0))",
    "len({Metric('m', 1.0, 1, 0), Metric('m', 1.0, 1, 0), Metric('m', 2.0, 1, 0)})",
    "Metric('m', 1.0, 1, 0, model_id='x').to_dictionary()",
    "Metric.from_dictionary({'key': 'k', 'value': 2.0, 'timestamp': 3, 'step': 4})",
    "Metric.from_dictionary({'key': 'k', 'value': 2.0})",
    "Metric.from_dictionary(Metric('m', 1.0, 1, 0, model_id='x', run_id='r').to_dictionary())",
    "dict(Metric('m', 1.0, 1, 0))",
    "Metric._properties()",
    "Metric('m', float('nan'), 1, 0).value != Metric('m', float('nan'), 1, 0).value",
    # Param
    "Param('p', 'v')",
    "Param('p', 'v') == Param('p', 'w')",
    "Param('p', 'v') == Param('q', 'v')",
    "hash(Param('p', 'v')) == hash('p')",
    "len({Param('p', 'v'), Param('p', 'w')})",
    "Param('p', 'v') == RunTag('p', 'v')",
    "dict(Param('p', 'v'))",
    "Param.from_dictionary({'key': 'a', 'value': 'b', 'junk': 1})",
    "Param(None, None)",
    # Tags
    "RunTag('t', 'v')",
    "RunTag('t', 'v') == RunTag('t', 'v')",
    "RunTag('t', 'v') == RunTag('t', 'w')",
    "RunTag('t', 'v') == ExperimentTag('t', 'v')",
    "hash(RunTag('t', 'v'))",
    "ExperimentTag('t', 'v')",
    "ExperimentTag('t', 'v') == ExperimentTag('t', 'v')",
    "hash(ExperimentTag('t', 'v'))",
    "dict(ExperimentTag('t', 'v'))",
    # Experiment
    "Experiment('1', 'n', 'loc', 'active')",
    "Experiment('1', 'n', 'loc', 'active', tags=[ExperimentTag('a', 'b'), ExperimentTag('a', 'c')],"
    " creation_time=5, last_update_time=6)",
    "dict(Experiment('1', 'n', 'loc', 'deleted', workspace='  team  '))",
    "Experiment('1', 'n', 'loc', 'active', workspace='   ').workspace",
    "Experiment('1', 'n', 'loc', 'active', effective_trace_archival_retention='30d')",
    "Experiment.DEFAULT_EXPERIMENT_NAME",
    "Experiment('1', 'n', 'l', 'active') == Experiment('1', 'n', 'l', 'active')",
    "Experiment._properties()",
    # RunInfo
    _INFO,
    _INFO_FULL,
    f"dict({_INFO_FULL})",
    f"{_INFO} == {_INFO}",
    f"{_INFO} == {_INFO_FULL}",
    "RunInfo(None, '1', 'u', 'RUNNING', 1, None, 'active').run_id",
    "RunInfo('r', None, 'u', 'RUNNING', 1, None, 'active')",
    "RunInfo('r', '1', None, 'RUNNING', 1, None, 'active')",
    "RunInfo('r', '1', 'u', None, 1, None, 'active')",
    "RunInfo('r', '1', 'u', 'RUNNING', None, None, 'active')",
    "RunInfo.get_searchable_attributes()",
    "RunInfo.get_orderable_attributes()",
    f"{_INFO}._copy_with_overrides(status='FINISHED', end_time=99)",
    f"{_INFO_FULL}._copy_with_overrides(lifecycle_stage='active', run_name='other')",
    f"{_INFO_FULL}._copy_with_overrides()",
    # RunData
    "RunData()",
    _DATA,
    f"{_DATA}.metrics",
    f"{_DATA}._metric_objs",
    f"{_DATA}.to_dictionary()",
    "RunData([Metric('metric_%d' % i, float(i), 1, 0) for i in range(12)],"
    " [Param('param_%d' % i, 'v' * i) for i in range(8)])",
    "RunData._properties()",
    # Run, RunInputs, RunOutputs
    f"Run({_INFO}, {_DATA})",
    f"Run({_INFO}, {_DATA}, RunInputs([]), RunOutputs([]))",
    f"Run({_INFO}, {_DATA}, RunInputs([]), RunOutputs([])).to_dictionary()",
    f"Run({_INFO}, None).to_dictionary()",
    f"Run({_INFO}, RunData()).to_dictionary()",
    "Run(None, RunData())",
    "RunInputs([]) == RunInputs([])",
    "RunInputs([], ['x']) == RunInputs([])",
    "RunInputs([], None).to_dictionary()",
    "RunOutputs([])",
    "RunOutputs([]).to_dictionary()",
    "Run._properties()",
    # RunStatus
    "(RunStatus.RUNNING, RunStatus.SCHEDULED, RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)",
    "RunStatus.all_status()",
    "[RunStatus.to_string(s) for s in RunStatus.all_status()]",
    "[RunStatus.from_string(s) for s in ['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED']]",
    "[RunStatus.is_terminated(s) for s in range(0, 7)]",
    "RunStatus.from_string('BOGUS')",
    "RunStatus.from_string('running')",
    "RunStatus.to_string(9)",
    # ViewType
    "(ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL)",
    "[ViewType.to_string(v) for v in (1, 2, 3)]",
    "[ViewType.from_string(s) for s in ('active_only', 'deleted_only', 'all')]",
    "ViewType.from_string('ALL')",
    "ViewType.to_string(0)",
    # LifecycleStage
    "(LifecycleStage.ACTIVE, LifecycleStage.DELETED)",
    "[LifecycleStage.view_type_to_stages(v) for v in (1, 2, 3, 99)]",
    "LifecycleStage.view_type_to_stages()",
    "[LifecycleStage.is_valid(s) for s in ('active', 'deleted', 'ACTIVE', '')]",
    "[LifecycleStage.matches_view_type(v, s) for v in (1, 2, 3) for s in ('active', 'deleted')]",
    "LifecycleStage.matches_view_type(1, 'bogus')",
    "LifecycleStage.matches_view_type(99, 'active')",
    # SourceType
    "(SourceType.NOTEBOOK, SourceType.JOB, SourceType.PROJECT, SourceType.LOCAL, SourceType.UNKNOWN)",
    "[SourceType.to_string(s) for s in range(1, 6)]",
    "SourceType.from_string('LOCAL')",
    "SourceType.from_string('local')",
    "SourceType.to_string(0)",
    "SourceType.SOURCETYPE_TO_STRING",
]

_NAMES = (
    "Experiment ExperimentTag LifecycleStage Metric Param Run RunData RunInfo RunInputs "
    "RunOutputs RunStatus RunTag SourceType ViewType"
).split()


def _evaluate(expr: str, namespace: dict) -> dict:
    try:
        value = eval(expr, dict(namespace))  # noqa: S307 - test-owned expressions
    except Exception as e:  # noqa: BLE001 - comparing whatever is raised
        return {"error": type(e).__name__, "code": getattr(e, "error_code", None), "message": str(e)}
    return {"repr": repr(value)}


@needs_mlflow
def test_entities_match_mlflow(monkeypatch):
    monkeypatch.delenv("MLFLOW_WORKSPACE", raising=False)
    oracle = run(
        """
        import mlflow.entities as E
        ns = {name: getattr(E, name) for name in ARGS["names"]}
        out = []
        for expr in ARGS["exprs"]:
            try:
                value = eval(expr, dict(ns))
            except Exception as e:
                out.append({"error": type(e).__name__, "code": getattr(e, "error_code", None),
                            "message": str(e)})
            else:
                out.append({"repr": repr(value)})
        _out(out)
        """,
        exprs=EXPRESSIONS,
        names=_NAMES,
    )
    namespace = {name: getattr(E, name) for name in _NAMES}
    mismatches = [
        (expr, ours, theirs)
        for expr, theirs in zip(EXPRESSIONS, oracle)
        if (ours := _evaluate(expr, namespace)) != theirs
    ]
    assert not mismatches, "\n".join(f"{e}\n  ours:   {o}\n  mlflow: {t}" for e, o, t in mismatches)


# ----------------------------------------------------------------------------------- unit tests


def test_exports():
    assert set(E.__all__) >= {
        "Experiment", "ExperimentTag", "Run", "RunInfo", "RunData", "RunInputs", "Metric", "Param",
        "RunTag", "RunStatus", "ViewType", "LifecycleStage", "SourceType",
    }
    for name in E.__all__:
        assert getattr(E, name).__name__ == name


def test_metric_properties_and_dict():
    m = Metric("loss", 0.5, 1000, 7, model_id="mid", dataset_name="d", dataset_digest="dd", run_id="r")
    assert (m.key, m.value, m.timestamp, m.step) == ("loss", 0.5, 1000, 7)
    assert (m.model_id, m.dataset_name, m.dataset_digest, m.run_id) == ("mid", "d", "dd", "r")
    assert Metric.from_dictionary(m.to_dictionary()) == m


def test_metric_requires_both_dataset_fields():
    with pytest.raises(MlflowException) as info:
        Metric("m", 1.0, 1, 0, dataset_name="d")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_metric_from_row_equals_constructed_metric():
    fast = Metric._from_row("loss", 1.5, 10, 2, run_id="r")
    slow = Metric("loss", 1.5, 10, 2, run_id="r")
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert type(fast) is Metric
    assert (fast.model_id, fast.dataset_name, fast.dataset_digest) == (None, None, None)
    assert Metric._from_row("loss", 1.5, 10, 2).run_id is None
    assert Metric._from_row("loss", 1.5, 10, 2) != slow  # run_id is part of identity


def test_slotted_entities_have_no_instance_dict():
    for obj in (Metric("m", 1.0, 1, 0), Param("p", "v"), RunTag("t", "v"), ExperimentTag("t", "v")):
        assert not hasattr(obj, "__dict__"), type(obj)
        with pytest.raises(AttributeError):
            obj.unexpected = 1  # type: ignore[attr-defined]


def test_slotted_entities_pickle_and_copy():
    objs = [Metric("m", 1.0, 1, 0, model_id="x"), Param("p", "v"), RunTag("t", "v"), ExperimentTag("t", "v")]
    for obj in objs:
        assert pickle.loads(pickle.dumps(obj)) == obj
        assert copy.copy(obj) == obj
        assert repr(copy.deepcopy(obj)) == repr(obj)


def test_metric_from_rows_restores_nan_and_gc_state():
    rows = [("a", 1.0, 5, 1, 0), ("a", 0.0, 6, 2, 1)]
    first, second = Metric._from_rows(rows, run_id="r")
    assert first == Metric("a", 1.0, 5, 1, run_id="r")
    assert second.value != second.value and (second.timestamp, second.step) == (6, 2)
    gc.disable()
    try:
        Metric._from_rows(rows)
        assert not gc.isenabled()  # a caller's paused collector stays paused
    finally:
        gc.enable()
    with pytest.raises(ValueError):
        Metric._from_rows([("a", 1.0, 5)])  # type: ignore[list-item]
    assert gc.isenabled()


def test_importing_entities_stays_light():
    code = (
        "import sys, asynctrack.entities, asynctrack.exceptions, asynctrack._validation\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'numpy', 'pandas', 'mlflow', 'torch', 'tensorflow', 'sqlalchemy', 'google', 'pydantic'})\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_run_uuid_is_an_alias_outside_the_properties():
    info = RunInfo("abc", "1", "u", "RUNNING", 1, None, "active")
    assert info.run_uuid == info.run_id == "abc"
    assert "run_uuid" not in dict(info) and "run_uuid" not in repr(info)


def test_run_inputs_defaults_to_empty():
    inputs = RunInputs()
    assert inputs.dataset_inputs == [] and inputs.model_inputs == []
    assert inputs.to_dictionary() == {"model_inputs": [], "dataset_inputs": []}


def test_run_inputs_to_dictionary_uses_items_to_dictionary():
    class DatasetInput:
        def to_dictionary(self):
            return {"dataset": "d"}

    assert RunInputs([DatasetInput()]).to_dictionary()["dataset_inputs"] == [{"dataset": "d"}]


def test_run_data_keeps_last_value_per_key_and_the_metric_list():
    metrics = [Metric("a", 1.0, 1, 0), Metric("a", 2.0, 2, 1), Metric("b", 3.0, 1, 0)]
    data = RunData(metrics, [Param("p", "1")], [RunTag("t", "x")])
    assert data.metrics == {"a": 2.0, "b": 3.0}
    assert data._metric_objs is metrics
    assert data.params == {"p": "1"} and data.tags == {"t": "x"}
    data._add_metric(Metric("c", 4.0, 1, 0))
    data._add_param(Param("q", "2"))
    data._add_tag(RunTag("u", "y"))
    assert data.metrics["c"] == 4.0 and data.params["q"] == "2" and data.tags["u"] == "y"


def test_run_to_dictionary():
    info = RunInfo("r", "0", "u", "FINISHED", 1, 2, "active", artifact_uri="a", run_name="n")
    run_ = Run(info, RunData([Metric("m", 1.0, 1, 0)]), RunInputs([]))
    assert run_.to_dictionary() == {
        "info": {
            "artifact_uri": "a", "end_time": 2, "experiment_id": "0", "lifecycle_stage": "active",
            "run_id": "r", "run_name": "n", "start_time": 1, "status": "FINISHED", "user_id": "u",
        },
        "data": {"metrics": {"m": 1.0}, "params": {}, "tags": {}},
        "inputs": {"model_inputs": [], "dataset_inputs": []},
    }
    with pytest.raises(MlflowException, match="run_info cannot be None"):
        Run(None, RunData())  # type: ignore[arg-type]


def test_experiment_workspace_resolution(monkeypatch):
    monkeypatch.delenv("MLFLOW_WORKSPACE", raising=False)
    assert Experiment("1", "n", "l", "active").workspace == "default"
    assert Experiment("1", "n", "l", "active", workspace=" w ").workspace == "w"
    monkeypatch.setenv("MLFLOW_WORKSPACE", " envws ")
    assert Experiment("1", "n", "l", "active").workspace == "envws"


def test_experiment_tags_and_setters():
    exp = Experiment("1", "n", "l", "active", tags=[ExperimentTag("a", "1")])
    exp._add_tag(ExperimentTag("b", "2"))
    exp._set_name("m")
    exp._set_creation_time(3)
    exp._set_last_update_time(4)
    exp.effective_trace_archival_retention = "7d"
    assert (exp.tags, exp.name, exp.creation_time, exp.last_update_time) == ({"a": "1", "b": "2"}, "m", 3, 4)
    assert exp.effective_trace_archival_retention == "7d" and exp.trace_location is None


def test_enums():
    assert RunStatus.to_string(RunStatus.FINISHED) == "FINISHED"
    assert RunStatus.from_string("KILLED") == 5
    assert RunStatus.is_terminated(RunStatus.FAILED) and not RunStatus.is_terminated(RunStatus.RUNNING)
    assert RunStatus.all_status() == [1, 2, 3, 4, 5]
    with pytest.raises(Exception, match="Could not get run status corresponding to string NOPE"):
        RunStatus.from_string("NOPE")
    assert ViewType.from_string("all") == ViewType.ALL == 3
    assert LifecycleStage.view_type_to_stages(ViewType.ACTIVE_ONLY) == ["active"]
    assert LifecycleStage.matches_view_type(ViewType.DELETED_ONLY, "deleted")
    with pytest.raises(MlflowException, match="Invalid lifecycle stage 'x'"):
        LifecycleStage.matches_view_type(ViewType.ALL, "x")
    assert SourceType.to_string(SourceType.LOCAL) == "LOCAL"
    assert SourceType.from_string("JOB") == 2
