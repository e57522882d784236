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

import sys
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


def describe(record: tuple) -> dict[str, Any]:
    """A decoded record as a dict, for logs and spool inspection."""
    version, op, *fields = record
    return {"version": version, "op": op, **dict(zip(FIELDS[op], fields))}
