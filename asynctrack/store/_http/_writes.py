"""Applying batches of event records to a tracking server over MLflow's REST API.

Lifecycle records map one to one to their endpoints and are sent one at a time, in order.
Consecutive logging records (METRIC/PARAM/TAG/BATCH) are grouped by run and packed into
``runs/log-batch`` requests within MLflow's limits (1,000 metrics, 100 params, 100 tags, 1,000
entities, 1 MB of JSON; a param or tag key never twice in one request); up to ``MAX_IN_FLIGHT``
requests are in flight at once. Order matters where MLflow's semantics need it: the requests of
one run that carry params or tags (first param value wins, last tag value wins) are sent one
after another, in order; metric-only requests, which commute (identical points are stored once,
the latest value is a maximum), are sent concurrently.

A request the server refuses is split in halves until the culprit records are alone, so one bad
record fails alone and the others are stored; re-sending is harmless because every logging op
is idempotent on MLflow's server. When the server cannot be reached, or answers with a
retryable status, the whole batch is ``StoreUnavailable`` (the writer holds, retries, spools).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from ... import events as ev
from ..._rest import API_PREFIX, AsyncTransport, JsonBody, RestConfig, Unreachable, verify
from ..._rest._transport import retry_after_s
from ..._rest._config import TRANSIENT_STATUSES, UNPROCESSED_STATUSES
from ...exceptions import MlflowException
from ..base import StoreUnavailable

MAX_IN_FLIGHT = 8
MAX_METRICS = 1000
MAX_PARAMS_TAGS = 100
MAX_ENTITIES = 1000
MAX_REQUEST_BYTES = 1_000_000
_MEMO_MAX = 10_000

# Errors about the run or the caller, not a record: every record of the request shares them.
_WHOLE_REQUEST_CODES = frozenset(
    {"RESOURCE_DOES_NOT_EXIST", "PERMISSION_DENIED", "UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED"}
)

_LIFECYCLE_ENDPOINTS = {
    ev.CREATE_EXPERIMENT: "/mlflow/experiments/create",
    ev.DELETE_EXPERIMENT: "/mlflow/experiments/delete",
    ev.RESTORE_EXPERIMENT: "/mlflow/experiments/restore",
    ev.RENAME_EXPERIMENT: "/mlflow/experiments/update",
    ev.SET_EXPERIMENT_TAG: "/mlflow/experiments/set-experiment-tag",
    ev.DELETE_EXPERIMENT_TAG: "/mlflow/experiments/delete-experiment-tag",
    ev.CREATE_RUN: "/mlflow/runs/create",
    ev.UPDATE_RUN: "/mlflow/runs/update",
    ev.DELETE_RUN: "/mlflow/runs/delete",
    ev.RESTORE_RUN: "/mlflow/runs/restore",
    ev.DELETE_TAG: "/mlflow/runs/delete-tag",
    ev.LOG_INPUTS: "/mlflow/runs/log-inputs",
}
_NOT_IDEMPOTENT = frozenset({ev.CREATE_EXPERIMENT, ev.CREATE_RUN})
_LOG_BATCH = API_PREFIX + "/mlflow/runs/log-batch"


def _json_float(value: float) -> Any:
    """A double in protobuf's JSON mapping (NaN and infinities as strings)."""
    if math.isfinite(value):
        return value
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _text(value: Any) -> Any:
    """A tag value as MLflow's JSON needs it: a string. The client passes other values through
    (MLflow's SQLite store keeps ``tags={"n": 1}`` as "1"), and MLflow's server reads a number
    in a string field as a broken request (it stored '' and dropped the run's other fields), so
    non-strings are sent as the text SQLite makes of them (1.0e+20, True -> "1"), the same as
    asynctrack (and MLflow) store in a SQLite file. None stays null, which the server stores
    as ''."""
    if value is None or isinstance(value, str):
        return value
    import sqlite3  # rare: only values that are not strings

    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        return db.execute("SELECT CAST(? AS TEXT)", (value,)).fetchone()[0]


def _tags(pairs: Sequence) -> list[dict]:
    return [{"key": k, "value": _text(v)} for k, v in pairs]


def lifecycle_body(record: tuple) -> dict:
    """The JSON body MLflow's RestStore sends for a lifecycle record."""
    op, f = record[1], record[2:]
    if op == ev.CREATE_EXPERIMENT:
        name, location, tags, _created = f
        body: dict = {"name": name}
        if location:
            body["artifact_location"] = location
        if tags:
            body["tags"] = _tags(tags)
        return body
    if op in (ev.DELETE_EXPERIMENT, ev.RESTORE_EXPERIMENT):
        return {"experiment_id": f[0]}
    if op == ev.RENAME_EXPERIMENT:
        return {"experiment_id": f[0], "new_name": f[1]}
    if op == ev.SET_EXPERIMENT_TAG:
        return {"experiment_id": f[0], "key": f[1], "value": f[2]}
    if op == ev.DELETE_EXPERIMENT_TAG:
        return {"experiment_id": f[0], "key": f[1]}
    if op == ev.CREATE_RUN:
        _run_id, experiment_id, user_id, start_time, tags, run_name = f
        body = {"experiment_id": experiment_id, "user_id": user_id, "start_time": start_time}
        if tags:
            body["tags"] = _tags(tags)
        if run_name is not None:
            body["run_name"] = run_name
        return body
    if op == ev.UPDATE_RUN:
        run_id, status, end_time, run_name = f
        body = {"run_uuid": run_id, "run_id": run_id}
        if status is not None:
            body["status"] = status
        if end_time is not None:
            body["end_time"] = end_time
        if run_name is not None:
            body["run_name"] = run_name
        return body
    if op in (ev.DELETE_RUN, ev.RESTORE_RUN):
        return {"run_id": f[0]}
    if op == ev.DELETE_TAG:
        return {"run_id": f[0], "key": f[1]}
    if op == ev.LOG_INPUTS:
        return {"run_id": f[0], "datasets": [_dataset_input(d) for d in f[1]]}
    raise MlflowException(f"Unsupported record op {op}")


def _dataset_input(entry: Sequence) -> dict:
    """A LOG_INPUTS entry as MLflow's DatasetInput.to_proto: tags (when any), then the dataset
    (schema and profile when set). The uuids stay here: the server makes its own."""
    _dataset_uuid, _input_uuid, name, digest, source_type, source, schema, profile, tags = entry
    dataset = {"name": name, "digest": digest, "source_type": source_type, "source": source}
    if schema:
        dataset["schema"] = schema
    if profile:
        dataset["profile"] = profile
    out: dict = {}
    if tags:
        out["tags"] = [{"key": k, "value": v} for k, v in tags]
    out["dataset"] = dataset
    return out


def _logging_parts(record: tuple) -> tuple[str, list, list, list]:
    """(run_id, metric entries, param pairs, tag pairs) of a logging record."""
    op = record[1]
    if op == ev.METRIC:
        return record[2], [record[3:7]], [], []
    if op == ev.PARAM:
        return record[2], [], [record[3:5]], []
    if op == ev.TAG:
        return record[2], [], [], [record[3:5]]
    return record[2], list(record[3]), list(record[4]), list(record[5])


def _single(record: tuple) -> tuple[str, dict | None]:
    """A lone METRIC, PARAM or TAG record goes to its own endpoint, as MLflow's client sends a
    synchronous log_metric, log_param or set_tag (and so gets the same error messages)."""
    op, run_id = record[1], record[2]
    if op == ev.METRIC:
        _, _, _, key, value, timestamp, step = record
        return API_PREFIX + "/mlflow/runs/log-metric", {
            "run_uuid": run_id, "run_id": run_id, "key": key, "value": _json_float(value),
            "timestamp": timestamp, "step": step,
        }
    if op == ev.PARAM:
        return API_PREFIX + "/mlflow/runs/log-parameter", {
            "run_uuid": run_id, "run_id": run_id, "key": record[3], "value": _text(record[4]),
        }
    if op == ev.TAG:
        return API_PREFIX + "/mlflow/runs/set-tag", {
            "run_uuid": run_id, "run_id": run_id, "key": record[3], "value": _text(record[4]),
        }
    return "", None


class _Request:
    """One log-batch request of one run: the records (by index in the batch) it carries."""

    __slots__ = ("run_id", "indices", "metrics", "params", "tags", "size", "param_keys", "tag_keys")

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.indices: list[int] = []
        self.metrics: list = []
        self.params: list = []
        self.tags: list = []
        self.size = 64 + len(run_id)
        self.param_keys: set = set()
        self.tag_keys: set = set()

    @property
    def ordered(self) -> bool:
        return bool(self.params or self.tags)

    def fits(self, metrics: list, params: list, tags: list, size: int) -> bool:
        if not self.indices:
            return True
        n_metrics = len(self.metrics) + len(metrics)
        n_params = len(self.params) + len(params)
        n_tags = len(self.tags) + len(tags)
        return (
            n_metrics <= MAX_METRICS
            and n_params <= MAX_PARAMS_TAGS
            and n_tags <= MAX_PARAMS_TAGS
            and n_metrics + n_params + n_tags <= MAX_ENTITIES
            and self.size + size <= MAX_REQUEST_BYTES
            and not any(k in self.param_keys for k, _ in params)
            and not any(k in self.tag_keys for k, _ in tags)
            and len({k for k, _ in params}) == len(params)
            and len({k for k, _ in tags}) == len(tags)
        )

    def add(self, index: int, metrics: list, params: list, tags: list, size: int) -> None:
        self.indices.append(index)
        self.metrics.extend(metrics)
        self.params.extend(params)
        self.tags.extend(tags)
        self.param_keys.update(k for k, _ in params)
        self.tag_keys.update(k for k, _ in tags)
        self.size += size

    def body(self) -> dict | JsonBody:
        if self.metrics and not self.params and not self.tags:
            text = _metrics_json(self.run_id, self.metrics)
            if text is not None:
                return text
        body: dict = {"run_id": self.run_id}
        if self.metrics:
            body["metrics"] = [
                {"key": k, "value": _json_float(v), "timestamp": t, "step": s}
                for k, v, t, s in self.metrics
            ]
        if self.params:
            body["params"] = [{"key": k, "value": v} for k, v in self.params]
        if self.tags:
            body["tags"] = _tags(self.tags)
        return body


_METRIC_JSON = '{"key":%s,"value":%r,"timestamp":%d,"step":%d}'
_FLOAT_ONLY = {float}


def _metrics_json(run_id: str, metrics: list) -> JsonBody | None:
    """The JSON of a metrics-only request, formatted in one pass (half of what json.dumps of
    the dicts costs), when every value is a finite float (``repr`` is then JSON's own number);
    else None: the general way encodes NaN and the infinities as MLflow's strings."""
    values = [m[1] for m in metrics]
    if set(map(type, values)) != _FLOAT_ONLY or not all(map(math.isfinite, values)):
        return None
    quoted = {k: json.dumps(k) for k in {m[0] for m in metrics}}
    items = ",".join([_METRIC_JSON % (quoted[k], v, t, s) for k, v, t, s in metrics])
    return JsonBody(('{"run_id":%s,"metrics":[%s]}' % (json.dumps(run_id), items)).encode())


def pack_block(block: ev.MetricBlock) -> list[list[_Request]] | None:
    """``pack`` of a batch of metric points, column by column: each run's points in order, in
    requests of MAX_METRICS (a thousand valid ASCII names of at most 250 characters stay far
    under MAX_REQUEST_BYTES). None when a name is not ASCII (its escapes may be longer than
    the bound: ``pack`` measures them)."""
    fields = block.fields
    run_ids, keys, values, stamps, steps = (fields[i::7] for i in range(2, 7))
    if not all(map(str.isascii, set(keys))):
        return None
    runs = set(run_ids)
    chains = []
    if len(runs) == 1:
        run_id, n = run_ids[0], len(run_ids)
        chain = []
        for a in range(0, n, MAX_METRICS):
            b = min(n, a + MAX_METRICS)
            request = _Request(run_id)
            request.indices = list(range(a, b))
            request.metrics = list(zip(keys[a:b], values[a:b], stamps[a:b], steps[a:b]))
            chain.append(request)
        return [chain]
    by_run: dict[str, list[int]] = {r: [] for r in dict.fromkeys(run_ids)}
    for i, run_id in enumerate(run_ids):
        by_run[run_id].append(i)
    for run_id, indices in by_run.items():
        chain = []
        for a in range(0, len(indices), MAX_METRICS):
            request = _Request(run_id)
            request.indices = indices[a : a + MAX_METRICS]
            request.metrics = [(keys[i], values[i], stamps[i], steps[i]) for i in request.indices]
            chain.append(request)
        chains.append(chain)
    return chains


def _size(metrics: list, params: list, tags: list) -> int:
    """An upper bound on the compact JSON these entities take (keys and values at most
    doubled by escaping; numbers at most 24 characters)."""
    size = 0
    for m in metrics:
        size += 2 * len(m[0]) + 100
    for k, v in params:
        size += 2 * (len(k) + len(v)) + 30
    for k, v in tags:
        size += 2 * (len(k) + len(v)) + 30
    return size


def pack(records: Sequence[tuple], indices: list[int]) -> list[list[_Request]]:
    """The log-batch requests of consecutive logging records, one list per run, in order."""
    by_run: dict[str, list[_Request]] = {}
    for i in indices:
        run_id, metrics, params, tags = _logging_parts(records[i])
        size = _size(metrics, params, tags)
        chain = by_run.get(run_id)
        if chain is None:
            chain = by_run[run_id] = [_Request(run_id)]
        last = chain[-1]
        if not last.fits(metrics, params, tags, size):
            last = _Request(run_id)
            chain.append(last)
        last.add(i, metrics, params, tags, size)
    return list(by_run.values())


class HttpWriter:
    """The write side of the HTTP store: one AsyncTransport on the writer's loop."""

    def __init__(self, config: Callable[[], RestConfig]) -> None:
        self._config = config
        self.transport = AsyncTransport(max_connections=2 * MAX_IN_FLIGHT)
        self.give_up_at: float | None = None  # see Store.limit_retries
        # Outcomes of lifecycle records applied in a batch that then failed as a whole
        # (StoreUnavailable): when the writer applies that batch again, they are not re-sent
        # (a run or an experiment would be created twice).
        self._memo: dict[tuple, Any] = {}

    # -- one request ----------------------------------------------------------------------
    def _timeout(self, config: RestConfig) -> float:
        if self.give_up_at is None:
            return config.timeout
        left = self.give_up_at - time.monotonic()
        if left <= 0:
            raise StoreUnavailable("the time to store at exit is over")
        return min(config.timeout, left)

    async def _post(self, config: RestConfig, endpoint: str, body: dict) -> Any:
        try:
            return await self.transport.send(
                config, "POST", endpoint, body, timeout=self._timeout(config)
            )
        except Unreachable as exc:
            raise StoreUnavailable(str(exc), maybe_stored=exc.sent) from None

    @staticmethod
    def _unavailable(config: RestConfig, endpoint: str, response: Any) -> StoreUnavailable:
        """A retryable answer: the store is unavailable, for as long as Retry-After says when
        MLflow's client would respect it."""
        after = retry_after_s(response) if config.respect_retry_after else None
        return StoreUnavailable(f"{endpoint} answered {response.status_code}", retry_after=after)

    @staticmethod
    def _retryable(response: Any) -> bool:
        """A status a later attempt may get past: MLflow's transient statuses, unless the
        server itself answered with an MLflow error other than TEMPORARILY_UNAVAILABLE."""
        if response.status_code not in TRANSIENT_STATUSES:
            return False
        try:
            body = response.json()
        except Exception:  # noqa: BLE001 - a proxy's page: retry
            return True
        if not isinstance(body, dict) or "error_code" not in body:
            return True
        return body.get("error_code") in ("TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED")

    # -- a batch --------------------------------------------------------------------------
    async def apply(
        self, records: Sequence[tuple], on_commit: Callable[[list[Any]], None] | None = None
    ) -> list[Any]:
        import asyncio  # the writer's thread imported it

        config = self._config()
        semaphore = asyncio.Semaphore(MAX_IN_FLIGHT)
        outcomes: list[Any] = [None] * len(records)
        chains = pack_block(records) if isinstance(records, ev.MetricBlock) else None
        if chains is not None:  # metric points only: no tuple built per record
            await self._log(config, records, chains, outcomes, semaphore)
            if on_commit is not None:
                on_commit(outcomes)
            return outcomes
        records = list(records)
        done: dict[tuple, Any] = {}
        try:
            i = 0
            while i < len(records):
                if records[i][1] in ev.LOGGING_OPS:
                    j = i
                    while j < len(records) and records[j][1] in ev.LOGGING_OPS:
                        j += 1
                    chains = pack(records, list(range(i, j)))
                    await self._log(config, records, chains, outcomes, semaphore)
                    i = j
                else:
                    record = records[i]
                    if record in self._memo:
                        outcomes[i] = self._memo.pop(record)
                    else:
                        outcomes[i] = await self._lifecycle(config, record)
                        done[record] = outcomes[i]
                    i += 1
        except StoreUnavailable:
            if done and len(self._memo) + len(done) <= _MEMO_MAX:
                self._memo.update(done)
            raise
        if on_commit is not None:
            on_commit(outcomes)
        return outcomes

    async def _lifecycle(self, config: RestConfig, record: tuple) -> Any:
        op = record[1]
        endpoint = API_PREFIX + _LIFECYCLE_ENDPOINTS[op]
        try:
            response = await self.transport.send(
                config, "POST", endpoint, lifecycle_body(record), timeout=self._timeout(config)
            )
        except Unreachable as exc:
            if exc.sent and op in _NOT_IDEMPOTENT:
                # It may have reached the server: MLflow does not send it again either.
                return MlflowException(str(exc))
            raise StoreUnavailable(str(exc), maybe_stored=exc.sent) from None
        if op in _NOT_IDEMPOTENT:
            if response.status_code in UNPROCESSED_STATUSES:
                raise self._unavailable(config, endpoint, response)
        elif self._retryable(response):
            raise self._unavailable(config, endpoint, response)
        try:
            body = verify(response, endpoint)
        except MlflowException as exc:
            return exc
        if op == ev.CREATE_EXPERIMENT:
            return body.get("experiment_id")
        if op == ev.CREATE_RUN:
            return ((body.get("run") or {}).get("info") or {}).get("run_id")
        return None

    async def _log(
        self, config: RestConfig, records: list, chains: list[list[_Request]], outcomes: list, semaphore
    ) -> None:
        import asyncio

        tasks = []
        for chain in chains:
            ordered = [r for r in chain if r.ordered]
            if ordered:
                tasks.append(self._send_chain(config, records, ordered, outcomes, semaphore))
            for request in chain:
                if not request.ordered:
                    tasks.append(self._send_chain(config, records, [request], outcomes, semaphore))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _send_chain(self, config, records, chain: list[_Request], outcomes, semaphore) -> None:
        for request in chain:
            async with semaphore:
                await self._send(config, records, request, outcomes)

    async def _send(self, config, records, request: _Request, outcomes: list) -> None:
        endpoint, body = _LOG_BATCH, None
        if len(request.indices) == 1:
            endpoint, body = _single(records[request.indices[0]])
        if body is None:
            endpoint, body = _LOG_BATCH, request.body()
        response = await self._post(config, endpoint, body)
        if self._retryable(response):
            raise self._unavailable(config, endpoint, response)
        try:
            verify(response, endpoint)
            return
        except MlflowException as exc:
            error = exc
        if len(request.indices) == 1 or error.error_code in _WHOLE_REQUEST_CODES or (
            "must be in the 'active' state" in error.message
        ):
            for i in request.indices:
                outcomes[i] = error
            return
        # Find the culprits: each half on its own, in order (params: first value wins).
        half = len(request.indices) // 2
        for part in (request.indices[:half], request.indices[half:]):
            for chain in pack(records, part):
                for sub in chain:
                    await self._send(config, records, sub, outcomes)
