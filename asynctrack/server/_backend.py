"""The server's one client on the backend store, with MLflow's *store* semantics where a
server's differ from a client's (a run created with the request's user id and start time as
they are, ``update_run_info`` keeping what is not given, batch limits on the whole request).

Every write goes through the process's one writer (``MlflowClient`` → events → writer), waited
for: a response is sent once its data is durable, and concurrent requests share group commits.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from .. import _validation as v
from .. import events
from ..client import MlflowClient, _experiment_id_int, _now_ms, _resolve_if_local, validate_run_status
from ..entities import Metric, Param, RunTag
from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException


def open_client(
    backend_store_uri: str, default_artifact_root: str, read_replica_uri: str | None = None
) -> MlflowClient:
    """The client on ``backend_store_uri`` whose store gives new experiments
    ``default_artifact_root`` (MLflow's server passes it to its store the same way), reading
    searches and histories from ``read_replica_uri`` where given."""
    from ..store import store_for_uri

    root = default_artifact_root
    if "://" not in root and not root.startswith("mlflow-artifacts:"):
        root = _resolve_if_local(root)
    # the store MlflowClient then shares
    store_for_uri(backend_store_uri, artifact_root=root, read_replica_uri=read_replica_uri)
    return MlflowClient(backend_store_uri)


class Backend:
    """Store-level operations for the handlers, all blocking (run them off the event loop)."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client

    # -- experiments --------------------------------------------------------------------------
    def create_experiment(self, name: str, artifact_location: str, tags: dict[str, str]) -> str:
        """As the client's, but an absent location stays the request's "" (MLflow's server
        hands the proto default to its store, and its duplicate-name error quotes it)."""
        if artifact_location:
            return self.client.create_experiment(name, artifact_location, tags)
        v.validate_experiment_name(name)
        for key, value in tags.items():
            v.validate_experiment_tag(key, value)
        return self.client._write(events.CREATE_EXPERIMENT, name, "", list(tags.items()), _now_ms())

    # -- runs -------------------------------------------------------------------------------
    def create_run(
        self, experiment_id: str, user_id: str, start_time: int, tags: list, run_name: str
    ) -> Any:
        tag_map = {t["key"]: t["value"] for t in tags}
        exp = _experiment_id_int(experiment_id or "0")
        name_tag = tag_map.get("mlflow.runName")
        if run_name and name_tag and run_name != name_tag:
            raise MlflowException(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{run_name}', mlflow.runName='{name_tag}').",
                INVALID_PARAMETER_VALUE,
            )
        from .._names import generate_run_name

        run_name = run_name or name_tag or generate_run_name()
        pairs = [[t["key"], t["value"]] for t in tags]
        if not name_tag:
            pairs.append(["mlflow.runName", run_name])
        run_id = uuid.uuid4().hex
        self.client._write(events.CREATE_RUN, run_id, str(exp), user_id, start_time, pairs, run_name)
        return self.client.get_run(run_id)

    def update_run_info(
        self, run_id: str, status: str | None, end_time: int | None, run_name: str | None
    ) -> Any:
        run = self.client.get_run(run_id)
        status = validate_run_status(status or run.info.status)
        if end_time is None:
            end_time = run.info.end_time
        self.client._write(events.UPDATE_RUN, run_id, status, end_time, run_name or None)
        return self.client.get_run(run_id).info

    def log_param(self, run_id: str, key: str, value: str) -> None:
        """As MLflow's store: its client, not its server, adds the "changing params" hint."""
        param = v.validate_param(key, value)
        self.client._writer.submit_wait(events.encode(events.PARAM, run_id, param.key, param.value))

    def log_batch(self, run_id: str, metrics: list, params: list, tags: list) -> None:
        metric_objs = [
            Metric(m["key"], m["value"], m["timestamp"], m["step"]) for m in metrics
        ]
        param_objs = [Param(p["key"], p["value"]) for p in params]
        tag_objs = [RunTag(t["key"], t["value"]) for t in tags]
        v.validate_run_id(run_id)
        # The whole request is one store batch in MLflow's server (its client splits, its
        # store does not): its limits apply to the request as it came.
        v.validate_batch_log_limits(metric_objs, param_objs, tag_objs)
        self.client.log_batch(run_id, metric_objs, param_objs, tag_objs, synchronous=True)

    def log_batch_plain(self, run_id: str, entries: list[tuple]) -> None:
        """A log-batch that ``plain_log_batch`` found valid as it is: its record straight to
        the writer, waited for (what ``log_batch`` does, minus the per-metric objects)."""
        record = (events.VERSION, events.BATCH, run_id, entries, [], [])
        self.client._writer.submit_wait(events.encode_record(record), record)

    # -- metric history ---------------------------------------------------------------------
    def metric_history_bulk_interval(
        self, run_ids: list[str], key: str, max_results: int, start_step: int | None, end_step: int | None
    ) -> list[tuple[str, Any]]:
        """MLflow's SqlAlchemyStore sampling: NTILE(max_results) buckets over the ordered
        points, the first of each, and the last point kept."""
        if (start_step is None) != (end_step is None):
            raise MlflowException.invalid_parameter_value(
                "Both start_step and end_step must be specified together, "
                "or neither may be specified."
            )
        max_results = max(1, max_results)
        for run_id in run_ids:
            self.client.get_run(run_id)
        out: list[tuple[str, Any]] = []
        for run_id in run_ids:
            history = self.client.get_metric_history(run_id, key)
            if start_step is not None:
                history = [m for m in history if start_step <= m.step <= end_step]
            ordered = sorted(history, key=_point_order)
            out.extend((run_id, m) for m in _sample(ordered, max_results))
        return out

    def metric_history_bulk(self, run_ids: list[str], key: str, max_results: int) -> list[tuple[str, Any]]:
        """MLflow's SqlAlchemyStore.get_metric_history_bulk: the points of ``key`` in the given
        runs (unknown ones have none), by run id, then timestamp, step and value, at most
        ``max_results`` of them (SQLite's LIMIT: a negative one is no limit)."""
        store = self.client._read()
        out: list[tuple[str, Any]] = []
        for run_id in sorted(set(run_ids)):
            left = max_results - len(out) if max_results >= 0 else None
            if left == 0:
                break
            history, _ = store.get_metric_history(run_id, key, max_results=left)
            out.extend((run_id, m) for m in history)
        return out


def _point_order(m: Any) -> tuple:
    nan = m.value != m.value
    return (m.step, m.timestamp, 0.0 if nan else m.value, nan)


def _sample(rows: list, n: int) -> list:
    total = len(rows)
    if total == 0:
        return []
    picked = []
    base, extra = divmod(total, n)
    index = 0
    for bucket in range(min(n, total)):
        picked.append(rows[index])
        index += base + (1 if bucket < extra else 0)
    last = rows[-1]
    if picked[-1] is not last:
        if len(picked) >= n:
            picked[-1] = last
        else:
            picked.append(last)
    return picked


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")
