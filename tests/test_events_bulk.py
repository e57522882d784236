"""decode_many's one-call path over a whole batch must give exactly what decoding each payload
on its own gives: the same records, and a malformed payload failing alone."""

from __future__ import annotations

import math

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from asynctrack import events as ev


def one_by_one(payloads):
    records, errors = [], {}
    for i, p in enumerate(payloads):
        got, bad = _single(p)
        if bad:
            errors[i] = bad[0]
        else:
            records.extend(got)
    return records, errors


def _single(payload):
    # Below _BULK_MIN payloads decode_many decodes one by one: the reference.
    return ev.decode_many([payload])


def sample(n, run="r" * 32):
    out = []
    for i in range(n):
        if i % 7 == 3:
            out.append(ev.encode(ev.BATCH, run, [["k", 1.5, i, i]], [["p", "v"]], []))
        elif i % 11 == 5:
            out.append(ev.encode(ev.PARAM, run, f"p{i}", "x"))
        else:
            out.append(ev.encode_metric(run, f"k{i % 5}", i * 0.5, 1000 + i, i))
    return out


def test_bulk_gives_the_same_records():
    payloads = sample(500)
    records, errors = ev.decode_many(payloads)
    assert errors == {}
    assert records == one_by_one(payloads)[0]
    assert all(type(r) is tuple for r in records)
    assert records[0] == (ev.VERSION, ev.METRIC, "r" * 32, "k0", 0.0, 1000, 0)


GARBAGE = [
    b"",  # nothing
    b"\xc1",  # never used
    b"\x93\x01\x01",  # an array shorter than it says
    msgpack.packb([2, ev.METRIC, "r", "k", 1.0, 1, 1]),  # another version
    msgpack.packb([ev.VERSION, 99, "r"]),  # an unknown op
    msgpack.packb({"a": 1}),  # not an array
    msgpack.packb(7),
    msgpack.packb([ev.VERSION, ev.METRIC] + list(range(20))),  # 22 items: not a fixarray
]


def test_each_kind_of_garbage_fails_alone_at_its_position():
    for junk in GARBAGE + [sample(1)[0][:-1], sample(1)[0] + b"\x01"]:
        payloads = sample(200)
        payloads.insert(77, junk)
        records, errors = ev.decode_many(payloads)
        ref_records, ref_errors = one_by_one(payloads)
        assert records == ref_records
        assert set(errors) == set(ref_errors)
        assert len(records) + len(errors) == len(payloads)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 199), max_size=4),
    st.lists(st.binary(max_size=12), min_size=1, max_size=4),
    st.integers(0, 2**32),
)
def test_mutated_payloads_agree_with_one_by_one(positions, junk, seed):
    payloads = sample(200)
    for k, pos in enumerate(positions):
        p = payloads[pos]
        mode = (seed >> (2 * k)) % 3
        if mode == 0:
            payloads[pos] = p[: max(0, len(p) - 1 - k)]  # truncated
        elif mode == 1:
            payloads[pos] = p + junk[k % len(junk)]  # trailing bytes
        else:
            payloads[pos] = junk[k % len(junk)]  # replaced
    records, errors = ev.decode_many(payloads)
    ref_records, ref_errors = one_by_one(payloads)
    assert records == ref_records and set(errors) == set(ref_errors)


def test_floats_survive_the_bulk_decode_bit_for_bit():
    values = [0.0, -0.0, 5e-324, math.inf, -math.inf, 1.7976931348623157e308, 0.1]
    payloads = [ev.encode_metric("r", "k", v, 0, 0) for v in values] * 20
    records, _ = ev.decode_many(payloads)
    got = [r[4] for r in records[: len(values)]]
    assert [math.copysign(1, g) for g in got] == [math.copysign(1, v) for v in values]
    assert got == values
    nan, _ = ev.decode_many([ev.encode_metric("r", "k", math.nan, 0, 0)] * 100)
    assert all(math.isnan(r[4]) for r in nan)
