"""The HTTP writer's column-wise packing of metric points (``pack_block``) and its one-pass JSON
(``_metrics_json``): the same requests, and the same JSON, as the general ``pack`` and
``json.dumps`` of the request's dicts."""

from __future__ import annotations

import json
import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from asynctrack import events
from asynctrack.store._http import _writes

_keys = st.sampled_from(["loss", "acc/top-1", "a b", "x.y_z-1", "k" * 250, "é", "名"])
_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(0.1 + 0.2))
_int64 = st.integers(-(2**63), 2**63 - 1)


@st.composite
def _points(draw):
    runs = draw(st.lists(st.sampled_from(["a" * 32, "b" * 32, "c" * 32]), min_size=1, max_size=3, unique=True))
    n = draw(st.integers(1, 2_600))
    keys = draw(st.lists(_keys, min_size=1, max_size=3))
    values = draw(st.lists(_values, min_size=1, max_size=5))
    return [
        (events.VERSION, events.METRIC, runs[i % len(runs)] if draw(st.booleans()) or i else runs[0],
         keys[i % len(keys)], values[i % len(values)], draw(st.integers(0, 2**63 - 1)) if i < 3 else i, i - 7)
        for i in range(n)
    ]


def _block(records: list[tuple]) -> events.MetricBlock:
    return events.decode_metric_block([events.encode_record(r) for r in records])


@settings(max_examples=60, deadline=None)
@given(records=_points())
@example(records=[(events.VERSION, events.METRIC, "r" * 32, "loss", 0.5, 1, 2)] * 2_001)
def test_pack_block_gives_the_requests_and_json_of_pack(records) -> None:
    block = _block(records)
    assert block is not None
    fast = _writes.pack_block(block)
    slow = _writes.pack(list(block), list(range(len(records))))
    if fast is None:  # a name that is not ASCII: the general way measures its escapes
        assert any(not r[3].isascii() for r in records)
        return
    assert [[(r.run_id, r.indices, r.metrics) for r in chain] for chain in fast] == [
        [(r.run_id, r.indices, r.metrics) for r in chain] for chain in slow
    ]
    for chain in fast:
        for request in chain:
            body = request.body()
            if isinstance(body, bytes):
                expected = {"run_id": request.run_id, "metrics": [
                    {"key": k, "value": v, "timestamp": t, "step": s} for k, v, t, s in request.metrics]}
                assert json.loads(body) == expected
                assert len(body) <= _writes.MAX_REQUEST_BYTES
            else:  # NaN or an infinity among the values: MLflow's strings, by json.dumps
                assert any(not math.isfinite(m[1]) for m in request.metrics)
