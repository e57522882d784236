"""Event records: the flat decoding of metric batches (events.decode_metric_block) gives exactly
what decoding record by record gives, and refuses anything that is not all metric records."""

from __future__ import annotations

import math

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asynctrack import events as ev

INT64 = st.integers(-(2**63), 2**63 - 1)
metric_records = st.tuples(
    st.text(max_size=40),  # run id
    st.text(min_size=1, max_size=20),  # key
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(0, 2**63 - 1),  # timestamp
    INT64,  # step
)
other_payloads = st.one_of(
    st.binary(max_size=30),
    st.builds(lambda r: ev.encode(ev.PARAM, r[0], r[1], "v"), metric_records),
    st.builds(lambda r: ev.encode(ev.TAG, r[0], r[1], "v"), metric_records),
    st.builds(lambda r: ev.encode(ev.UPDATE_RUN, r[0], None, 5, None), metric_records),
    # 7-item arrays that are not metric records, and metric-like arrays of other lengths
    st.builds(lambda xs: msgpack.packb(xs), st.lists(st.one_of(INT64, st.text(max_size=3)), min_size=7, max_size=7)),
    st.builds(lambda r, n: msgpack.packb([ev.VERSION, ev.METRIC, *r][:n]), metric_records, st.integers(0, 6)),
    st.builds(lambda r: msgpack.packb([ev.VERSION, ev.METRIC, *r, 1]), metric_records),
)


def same(a, b) -> bool:
    """Records equal field by field, NaN equal to NaN."""
    return len(a) == len(b) and all(
        x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        for ra, rb in zip(a, b) for x, y in zip(ra, rb)
    ) and all(len(ra) == len(rb) for ra, rb in zip(a, b))


@settings(max_examples=300)
@given(st.lists(metric_records, min_size=1, max_size=50))
@example([("", "k", math.nan, 0, -(2**63)), ("r", "é", -0.0, 2**63 - 1, 2**63 - 1)])
@example([("r", "k", math.inf, 2**32, 2**31), ("r", "k", -math.inf, 2**16, -(2**31) - 1), ("r", "k", 5e-324, 127, -32)])
def test_metric_records_decode_flat_as_they_do_one_by_one(records):
    payloads = [ev.encode_metric(*r) for r in records]
    block = ev.decode_metric_block(payloads)
    one_by_one, bad = ev.decode_many(payloads)
    assert block is not None and not bad
    assert len(block) == len(records)
    assert same(list(block), one_by_one)
    assert all(type(x) is type(y) for rb, ro in zip(block, one_by_one) for x, y in zip(rb, ro))


@settings(max_examples=500)
@given(st.lists(st.one_of(st.builds(lambda r: ev.encode_metric(*r), metric_records), other_payloads), min_size=1, max_size=12))
def test_a_block_is_never_made_of_anything_else(payloads):
    """Either refused (then the record-by-record way tells each record's fate), or exactly the
    records decoding one by one gives, none of them bad."""
    block = ev.decode_metric_block(payloads)
    one_by_one, bad = ev.decode_many(payloads)
    if block is not None:
        assert not bad and same(list(block), one_by_one)
        assert {r[1] for r in one_by_one} == {ev.METRIC}


def test_records_that_shift_each_other_are_refused():
    """An 8-item array then a 6-item one, both marked as 7-item arrays, hold two records' worth
    of items with the version and op columns in place (the 8th item is 1): the second record's
    run id is then an int, and the column types refuse the block."""
    long = msgpack.packb([ev.VERSION, ev.METRIC, "run", "key", 1.0, 2, 3, ev.VERSION])
    short = msgpack.packb([ev.VERSION, ev.METRIC, "run", "key", 1.0, 2])
    forged = [bytes([0x97]) + long[1:], bytes([0x97]) + short[1:]]
    assert ev.decode_metric_block(forged) is None
    assert ev.decode_many(forged)[1].keys() == {0, 1}
    # one surplus item: the count refuses it
    assert ev.decode_metric_block([forged[0], ev.encode_metric("r", "k", 1.0, 2, 3)]) is None


def test_empty_and_mixed_batches_are_refused():
    metric = ev.encode_metric("r", "k", 1.0, 2, 3)
    assert ev.decode_metric_block([]) is None
    assert ev.decode_metric_block([metric, b""]) is None
    assert ev.decode_metric_block([metric, ev.encode(ev.PARAM, "r", "k", "v")]) is None
    assert ev.decode_metric_block([metric, metric[:-1]]) is None


def test_a_metric_block_is_a_sequence_of_records():
    records = [("r", f"k{i}", float(i), 10 + i, i) for i in range(5)]
    block = ev.decode_metric_block([ev.encode_metric(*r) for r in records])
    want = [(ev.VERSION, ev.METRIC, *r) for r in records]
    assert len(block) == 5 and list(block) == want
    assert block[0] == want[0] and block[-1] == want[-1] and block[1:3] == want[1:3]
    assert block[::-1] == want[::-1]
    with pytest.raises(IndexError):
        block[5]
    with pytest.raises(IndexError):
        block[-6]
