"""Write operations as compact msgpack records.

Every write that asynctrack makes is one of these records. The caller's thread encodes it, the
writer decodes it and hands it to the store, and the very same bytes are what a spool file holds
when the store cannot be reached: so the layout is versioned, positional (a msgpack array, not a
map, to stay small and fast) and carries everything needed to replay it idempotently — ids and
timestamps are fixed by the caller, never by the store.

Layout: ``[VERSION, op, *fields]``; the fields of each op are listed in ``FIELDS``. Decoded
records keep that shape (a tuple, version first), so that the store can bind a metric record as
the parameters of its INSERT without building a row.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import msgpack

from .exceptions import INTERNAL_ERROR, MlflowException

VERSION = 1

# Logging ops. They coalesce: the store applies a run of them as one set of bulk statements.
METRIC = 1  # run_id, key, value, timestamp, step
PARAM = 2  # run_id, key, value
TAG = 3  # run_id, key, value
BATCH = 4  # run_id, [[key, value, timestamp, step]...], [[key, value]...], [[key, value]...]

# Lifecycle ops: rarer, each applied on its own inside the batch's transaction.
CREATE_EXPERIMENT = 10  # name, artifact_location | None, [[key, value]...], creation_time
DELETE_EXPERIMENT = 11  # experiment_id, time
RESTORE_EXPERIMENT = 12  # experiment_id, time
RENAME_EXPERIMENT = 13  # experiment_id, new_name, time
SET_EXPERIMENT_TAG = 14  # experiment_id, key, value
DELETE_EXPERIMENT_TAG = 15  # experiment_id, key
CREATE_RUN = 20  # run_id, experiment_id, user_id, start_time, [[key, value]...], run_name | None
UPDATE_RUN = 21  # run_id, status | None, end_time | None, run_name | None
DELETE_RUN = 22  # run_id, time
RESTORE_RUN = 23  # run_id
DELETE_TAG = 24  # run_id, key
# run_id, [[dataset_uuid, input_uuid, name, digest, source_type, source, schema, profile,
#           [[tag key, tag value]...]]...]: the uuids fixed by the caller, as for every record
LOG_INPUTS = 25

LOGGING_OPS = frozenset({METRIC, PARAM, TAG, BATCH})

FIELDS: dict[int, tuple[str, ...]] = {
    METRIC: ("run_id", "key", "value", "timestamp", "step"),
    PARAM: ("run_id", "key", "value"),
    TAG: ("run_id", "key", "value"),
    BATCH: ("run_id", "metrics", "params", "tags"),
    CREATE_EXPERIMENT: ("name", "artifact_location", "tags", "creation_time"),
    DELETE_EXPERIMENT: ("experiment_id", "time"),
    RESTORE_EXPERIMENT: ("experiment_id", "time"),
    RENAME_EXPERIMENT: ("experiment_id", "new_name", "time"),
    SET_EXPERIMENT_TAG: ("experiment_id", "key", "value"),
    DELETE_EXPERIMENT_TAG: ("experiment_id", "key"),
    CREATE_RUN: ("run_id", "experiment_id", "user_id", "start_time", "tags", "run_name"),
    UPDATE_RUN: ("run_id", "status", "end_time", "run_name"),
    DELETE_RUN: ("run_id", "time"),
    RESTORE_RUN: ("run_id",),
    DELETE_TAG: ("run_id", "key"),
    LOG_INPUTS: ("run_id", "datasets"),
}


def _make_packer():
    # One shared Packer is safe while the GIL serialises its C-level pack() (it runs no Python
    # code for the builtin types we give it) and saves a Packer allocation per call; a
    # free-threaded interpreter gets the allocating, re-entrant packb instead.
    if getattr(sys, "_is_gil_enabled", lambda: True)():
        return msgpack.Packer(use_bin_type=True, autoreset=True).pack
    return lambda obj: msgpack.packb(obj, use_bin_type=True)


_packb = _make_packer()
_unpackb = msgpack.unpackb


def encode(*record: Any) -> bytes:
    """Encode ``(op, *fields)`` as one versioned record."""
    return _packb((VERSION, *record))


def encode_record(record: tuple) -> bytes:
    """Encode a record its caller built whole, ``(VERSION, op, *fields)``."""
    return _packb(record)


def encode_metric(run_id: str, key: str, value: float, timestamp: int, step: int) -> bytes:
    """The hot path's encoder: one call, no argument repacking."""
    return _packb((VERSION, METRIC, run_id, key, value, timestamp, step))


def _unsupported(record: Any) -> MlflowException:
    head = record[:2] if isinstance(record, (tuple, list)) else record
    return MlflowException(
        f"Unsupported asynctrack event record (version/op {head!r}); it was written by another "
        f"asynctrack release. This release reads event version {VERSION}.",
        INTERNAL_ERROR,
    )


def decode(payload: bytes) -> tuple:
    """Decode one record, ``(VERSION, op, *fields)``; refuses versions this build does not know."""
    record = _unpackb(payload, use_list=False)
    if type(record) is not tuple or len(record) < 2 or record[0] != VERSION or record[1] not in FIELDS:
        raise _unsupported(record)
    return record


def decode_many(payloads: list[bytes]) -> tuple[list[tuple], dict[int, MlflowException]]:
    """Decode a batch: the good records in order, and the errors by position of the bad ones."""
    records: list[tuple] = []
    errors: dict[int, MlflowException] = {}
    unpackb, fields = _unpackb, FIELDS
    for i, payload in enumerate(payloads):
        try:
            record = unpackb(payload, use_list=False)
            if record[0] != VERSION or record[1] not in fields:
                raise _unsupported(record)
        except MlflowException as exc:
            errors[i] = exc
            continue
        except Exception as exc:  # noqa: BLE001 - garbage bytes fail alone
            errors[i] = MlflowException(f"Undecodable asynctrack event record: {exc}", INTERNAL_ERROR)
            continue
        records.append(record)
    return records, errors


class MetricBlock(Sequence):
    """METRIC records decoded into one flat tuple: each record's seven fields (VERSION, METRIC,
    run_id, key, value, timestamp, step) laid end to end in ``fields``.

    What the writer hands a store for a batch of metric points: it is a sequence of records
    like any other (indexing builds the record's tuple), but decoding it makes no tuple per
    record, which the cyclic GC would scan (10^6 points: ~1,400 collections), and a store can
    bind the flat layout as the parameters of a multi-row INSERT as it is."""

    __slots__ = ("fields",)

    def __init__(self, fields: tuple) -> None:
        self.fields = fields

    def __len__(self) -> int:
        return len(self.fields) // 7

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("MetricBlock index out of range")
        return self.fields[7 * index : 7 * index + 7]

    def __iter__(self) -> Iterator[tuple]:
        fields = self.fields
        return zip(*(fields[i::7] for i in range(7)))  # the records, built at C speed


_FIXARRAY7 = 0x97  # a msgpack array of 7 items: a METRIC record (no other op has five fields)
_FIRST_BYTE = operator.itemgetter(0)
_AFTER_FIRST_BYTE = operator.itemgetter(slice(1, None))


def decode_metric_block(payloads: Sequence[bytes]) -> MetricBlock | None:
    """Decode records that are all METRIC records as one MetricBlock, in C-level passes; None
    if any of them is not (then decode_many tells which, and why).

    Each record is a 7-item msgpack array; their items, taken out of their arrays and put in
    one array of 7 x n items, decode as the flat tuple. A record that is not exactly one
    7-item array shifts what follows it; the checks of the count and of every column (version,
    op, each field's type) refuse such a block, but bytes forged to make whole records across
    their boundaries would pass. So it is for the records of this process's encoder only: the
    writer uses it for its asynchronous records, never for a spool read back."""
    try:
        if not payloads or set(map(_FIRST_BYTE, payloads)) != _ONLY_FIXARRAY7:
            return None
        n = 7 * len(payloads)
        fields = _unpackb(
            b"\xdd" + n.to_bytes(4, "big") + b"".join(map(_AFTER_FIRST_BYTE, payloads)), use_list=False
        )
    except Exception:  # noqa: BLE001 - anything odd goes the record-by-record way
        return None
    if (
        len(fields) != n
        or set(fields[0::7]) != _ONLY_VERSION
        or set(fields[1::7]) != _ONLY_METRIC
        or not _STR.issuperset(map(type, fields[2::7]))  # run ids
        or not _STR.issuperset(map(type, fields[3::7]))  # keys
        or not _FLOAT.issuperset(map(type, fields[4::7]))
        or not _INT.issuperset(map(type, fields[5::7]))  # timestamps
        or not _INT.issuperset(map(type, fields[6::7]))  # steps
    ):
        return None
    return MetricBlock(fields)


_ONLY_FIXARRAY7 = {_FIXARRAY7}
_ONLY_VERSION = {VERSION}
_ONLY_METRIC = {METRIC}
_STR, _FLOAT, _INT = frozenset({str}), frozenset({float}), frozenset({int})


def describe(record: tuple) -> dict[str, Any]:
    """A decoded record as a dict, for logs and spool inspection."""
    version, op, *fields = record
    return {"version": version, "op": op, **dict(zip(FIELDS[op], fields))}
