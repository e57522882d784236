"""The server's column-wise log-batch check (``server/_plain_batch.py``) against its general path.

The plain path may only take a body that the general path (protobuf's parsing, MLflow's schema
checks, asynctrack's validation) accepts too, and must store exactly what the general path would.
Hypothesis tries bodies on and around the boundary: integer and string values, NaN and
infinities (quoted and not), missing and string steps, negative and out-of-range integers,
invalid names, extra fields, params and tags beside the metrics, bad run ids.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asynctrack import events
from asynctrack.client import MlflowClient
from asynctrack.entities import Metric
from asynctrack.exceptions import MlflowException
from asynctrack.server import _handlers_runs
from asynctrack.server._context import Request
from asynctrack.server._plain_batch import plain_log_batch

RUN_ID = "0123456789abcdef0123456789abcdef"


class _Recorder:
    """A backend that records what the handler hands it, as the BATCH record it would store."""

    def __init__(self) -> None:
        self.record: tuple | None = None
        self.path = ""

    def log_batch(self, run_id, metrics, params, tags) -> None:
        objs = [Metric(m["key"], m["value"], m["timestamp"], m["step"]) for m in metrics]
        self.record = MlflowClient._batch_record(run_id, objs, [], [])  # params/tags: not compared
        self.path = "general"

    def log_batch_plain(self, run_id, entries) -> None:
        self.record = (events.VERSION, events.BATCH, run_id, entries, [], [])
        self.path = "plain"


def _handle(body: object, plain: bool) -> tuple[str, object]:
    """('ok', stored entries) or ('error', code) for ``body`` through the log-batch handler."""
    with pytest.MonkeyPatch.context() as m:
        if not plain:
            m.setattr(_handlers_runs, "plain_log_batch", lambda body: None)
        backend = _Recorder()
        req = Request("POST", [], json.dumps(body).encode(), "application/json", {})
        try:
            _handlers_runs.log_batch(backend, req)
        except MlflowException as exc:
            return "error", exc.error_code
    assert backend.path == ("plain" if plain and plain_log_batch(body) is not None else "general")
    run_id, entries = backend.record[2], backend.record[3]
    return "ok", (run_id, [tuple(e) for e in entries])


_names = st.sampled_from(["loss", "acc/top-1", "a b", "x.y_z", "", "bad?", "é", "\ud800", "k" * 251])
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1.5", "nan", None, True]),
)
_ints = st.one_of(st.integers(-(2**64), 2**64), st.sampled_from(["5", "1.0", 1.0, 2.5, None, False]))


@st.composite
def _metric(draw):
    metric = {"key": draw(_names), "value": draw(_values), "timestamp": draw(_ints)}
    if draw(st.booleans()):
        metric["step"] = draw(_ints)
    if draw(st.integers(0, 9)) == 0:
        metric[draw(st.sampled_from(["dataset_name", "model_id", "extra"]))] = "x"
    if draw(st.integers(0, 9)) == 0:
        del metric[draw(st.sampled_from(["key", "value", "timestamp"]))]
    return metric


@st.composite
def _body(draw):
    body = {"run_id": draw(st.sampled_from([RUN_ID, "", "../x", 7, RUN_ID.upper()])),
            "metrics": draw(st.lists(_metric(), max_size=4))}
    extra = draw(st.integers(0, 5))
    if extra == 0:
        body["params"] = [{"key": "p", "value": "1"}]
    elif extra == 1:
        body["tags"] = []
    return body


_plain_metric = {"key": "loss", "value": 0.5, "timestamp": 1700000000000, "step": 3}


@settings(max_examples=400, deadline=None)
@given(body=_body())
@example(body={"run_id": RUN_ID, "metrics": [_plain_metric]})
@example(body={"run_id": RUN_ID, "metrics": [{"key": "loss", "value": 0.5, "timestamp": 0}]})
@example(body={"run_id": RUN_ID, "metrics": [dict(_plain_metric, value=1)]})
@example(body={"run_id": RUN_ID, "metrics": [dict(_plain_metric, value=math.nan)]})
@example(body={"run_id": RUN_ID, "metrics": [dict(_plain_metric, step=2**63)]})
@example(body={"run_id": RUN_ID, "metrics": [dict(_plain_metric, timestamp=-1)]})
@example(body={"run_id": RUN_ID, "metrics": [_plain_metric] * 1001})
def test_the_plain_path_takes_only_what_the_general_path_stores_the_same(body) -> None:
    assert repr(_handle(body, plain=True)) == repr(_handle(body, plain=False))  # repr: NaN == NaN


def test_the_usual_request_takes_the_plain_path() -> None:
    metrics = [{"key": f"m{i % 7}", "value": i * 0.5, "timestamp": 1700000000000 + i, "step": i} for i in range(1000)]
    assert plain_log_batch({"run_id": RUN_ID, "metrics": metrics}) == (
        RUN_ID, [(m["key"], m["value"], m["timestamp"], m["step"]) for m in metrics])
