"""MlflowClient: MLflow 3.18's tracking client, turning calls into events for the writer.

Input is checked here, in the caller's thread, with MLflow's rules and messages; what depends on
the database (a run's state, a param already logged) is checked by the store when the record is
applied. Reads flush this process's pending writes first, so a process always reads its own
writes, asynchronous ones included.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Sequence
from itertools import zip_longest
from typing import Any

from . import events
from . import _validation as v
from ._client_models import LoggedModelCalls
from ._names import generate_run_name
from ._search import SEARCH_MAX_RESULTS_DEFAULT
from .entities import Experiment, FileInfo, Metric, Param, Run, RunStatus, RunTag, ViewType
from .entities._paged_list import PagedList
from .exceptions import INTERNAL_ERROR, INVALID_PARAMETER_VALUE, MlflowException
from .run_operations import RunOperations, get_combined_run_operations
from .store import Store, store_for_uri
from .tracking_uri import get_tracking_uri
from .writer import Writer, writer_for

RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# log_metric's hot path, bound once.
_pack = events._packb
_VERSION, _METRIC = events.VERSION, events.METRIC
_pending = RunOperations._pending
_time = time.time

# Keys and run ids already found valid: the hot path checks a set instead of a regex.
_valid_metric_keys: set[str] = set()
_MAX_CACHED_KEYS = 100_000


_FLOAT_ONLY = {float}


def _known_keys(metrics: Any) -> bool:
    """All of ``metrics``' names valid (checked once each, then remembered)."""
    if _valid_metric_keys.issuperset(metrics):
        return True
    for key in metrics:
        if key not in _valid_metric_keys:
            if not v.plain_metric_key(key):
                return False
            _remember_valid_key(key)
    return True


def _remember_valid_key(key: str) -> None:
    if len(_valid_metric_keys) >= _MAX_CACHED_KEYS:
        _valid_metric_keys.clear()
    _valid_metric_keys.add(key)


def _valid_run_id(run_id: Any) -> bool:
    try:
        v.validate_run_id(run_id)
    except MlflowException:
        return False
    return True


def _now_ms() -> int:
    return int(time.time() * 1000)


def _async_default() -> bool:
    """MLFLOW_ENABLE_ASYNC_LOGGING, read per call as MLflow does."""
    return os.environ.get("MLFLOW_ENABLE_ASYNC_LOGGING", "false").strip().lower() in ("true", "1")


def _experiment_id_int(experiment_id: Any) -> int:
    return v.parse_experiment_id(experiment_id)


def _resolve_if_local(location: str) -> str:
    """MLflow's resolve_uri_if_local: a relative local path becomes absolute."""
    import pathlib
    import urllib.parse

    parsed = urllib.parse.urlparse(location)
    if parsed.scheme not in ("", "file") and len(parsed.scheme) != 1:
        return location
    local_path = parsed.path if parsed.scheme == "file" else location
    if pathlib.Path(local_path).is_absolute():
        return location
    absolute = pathlib.Path.cwd().joinpath(local_path).as_posix()
    if parsed.scheme == "":
        return absolute
    return urllib.parse.urlunsplit((parsed.scheme, None, absolute, parsed.query, parsed.fragment))



_INT_TOO_LARGE = "Python int too large to convert to SQLite INTEGER"  # sqlite3's own message


def _has_int_beyond_sqlite(value: Any) -> bool:
    """Whether a record holds an int SQLite's INTEGER (int64) cannot bind, at any depth."""
    if isinstance(value, int):
        return not -(2**63) <= value <= 2**63 - 1
    if isinstance(value, (list, tuple)):
        return any(_has_int_beyond_sqlite(item) for item in value)
    return False


class MlflowClient(LoggedModelCalls):
    """Client of an MLflow tracking store, with MLflow 3.18's signatures and behaviour."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        workspace_store_uri: str | None = None,
    ) -> None:
        self._tracking_uri = os.fspath(tracking_uri) if tracking_uri else get_tracking_uri()
        self._registry_uri = registry_uri or self._tracking_uri
        self._store: Store = store_for_uri(self._tracking_uri)
        self._writer: Writer = writer_for(self._store)

    @property
    def tracking_uri(self) -> str:
        return self._tracking_uri

    # -- plumbing -------------------------------------------------------------------------------
    def _write(self, *record: Any) -> Any:
        """A lifecycle write: queued behind everything logged before it, waited for."""
        if _has_int_beyond_sqlite(record):
            # MLflow binds such a value (a run tag or run name given as a big int, a start or
            # end time) into SQLite and fails with sqlite3's OverflowError, which its store
            # reports as INTERNAL_ERROR; msgpack would raise a bare OverflowError here instead.
            raise MlflowException(_INT_TOO_LARGE, INTERNAL_ERROR)
        return self._writer.submit_wait(events.encode(*record))

    def _read(self):
        self._writer.flush()
        return self._store

    # -- experiments ----------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
    ) -> str:
        v.validate_experiment_artifact_location(artifact_location)
        v.validate_experiment_name(name)
        if artifact_location and not self._store.remote:  # a server resolves it on its side
            artifact_location = _resolve_if_local(artifact_location)
            v.validate_experiment_artifact_location_length(artifact_location)
        tag_pairs = list((tags or {}).items())
        for key, value in tag_pairs:
            v.validate_experiment_tag(key, value)
        return self._write(
            events.CREATE_EXPERIMENT, name, artifact_location or None, tag_pairs, _now_ms()
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        if not experiment_id and self._store.remote:  # the server's answer, as MLflow's client
            return self._read().get_experiment(experiment_id)
        return self._read().get_experiment(_experiment_id_int(experiment_id or "0"))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._read().get_experiment_by_name(name)

    def delete_experiment(self, experiment_id: str) -> None:
        exp = _experiment_id_int(experiment_id or "0")
        self._write(events.DELETE_EXPERIMENT, str(exp), _now_ms())

    def restore_experiment(self, experiment_id: str) -> None:
        exp = _experiment_id_int(experiment_id or "0")
        self._write(events.RESTORE_EXPERIMENT, str(exp), _now_ms())

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        v.validate_experiment_name(new_name)
        exp = _experiment_id_int(experiment_id or "0")
        self._write(events.RENAME_EXPERIMENT, str(exp), new_name, _now_ms())

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        value = str(value)
        v.validate_experiment_tag(key, value)
        exp = _experiment_id_int(experiment_id or "0")
        self._write(events.SET_EXPERIMENT_TAG, str(exp), key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        exp = _experiment_id_int(experiment_id or "0")
        self._write(events.DELETE_EXPERIMENT_TAG, str(exp), key)

    # -- runs -----------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        tags = dict(tags or {})
        user_id = tags.get(USER_TAG, "unknown")
        exp = _experiment_id_int(experiment_id or "0")
        name_tag = tags.get(RUN_NAME_TAG)
        if run_name and name_tag and run_name != name_tag:
            raise MlflowException(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{run_name}', mlflow.runName='{name_tag}').",
                INVALID_PARAMETER_VALUE,
            )
        run_name = run_name or name_tag or generate_run_name()
        if not name_tag:
            tags[RUN_NAME_TAG] = run_name
        run_id = uuid.uuid4().hex
        # A tracking server assigns the run id itself: the record's outcome (None for SQLite).
        run_id = self._write(
            events.CREATE_RUN,
            run_id,
            str(exp),
            user_id,
            start_time or _now_ms(),
            [[k, val] for k, val in tags.items()],
            run_name,
        ) or run_id
        return self._store.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        v.validate_run_id(run_id)
        return self._read().get_run(run_id)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        if status is None and name is None:
            return
        run = self.get_run(run_id)
        status = status or run.info.status
        self._write(events.UPDATE_RUN, run_id, validate_run_status(status), run.info.end_time, name or None)

    def set_terminated(
        self, run_id: str, status: str | None = None, end_time: int | None = None
    ) -> None:
        end_time = end_time or _now_ms()
        status = status or RunStatus.to_string(RunStatus.FINISHED)
        self._write(events.UPDATE_RUN, run_id, validate_run_status(status), end_time, None)

    def _end_run_or_keep(self, run_id: str, status: str) -> None:
        """set_terminated for the exit and preemption paths: when the store is down, the status
        is kept with the asynchronous records (and spooled with them) instead of being lost."""
        end_time = _now_ms()
        try:
            self.set_terminated(run_id, status, end_time)
        except MlflowException as exc:
            if exc.error_code != "TEMPORARILY_UNAVAILABLE":
                raise
            self._writer.submit(events.encode(events.UPDATE_RUN, run_id, validate_run_status(status), end_time, None))

    def _resume_run(self, run_id: str, end_time: int | None, run_name: str | None) -> None:
        """RUNNING again, keeping the end time (MLflow's update_run_info on resumption)."""
        self._write(events.UPDATE_RUN, run_id, "RUNNING", end_time, run_name or None)

    def get_parent_run(self, run_id: str) -> Run | None:
        """The run named by ``run_id``'s ``mlflow.parentRunId`` tag, or None."""
        parent_run_id = self.get_run(run_id).data.tags.get("mlflow.parentRunId")
        if parent_run_id is None:
            return None
        return self.get_run(parent_run_id)

    def delete_run(self, run_id: str) -> None:
        self._write(events.DELETE_RUN, run_id, _now_ms())

    def restore_run(self, run_id: str) -> None:
        self._write(events.RESTORE_RUN, run_id)

    # -- logging --------------------------------------------------------------------------------
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
        model_id: str | None = None,
    ) -> RunOperations | None:
        if synchronous is None:
            synchronous = not _async_default()
        if timestamp is None:
            timestamp = int(_time() * 1000)
        if step is None:
            step = 0
        if type(value) is not float:
            value = v.convert_metric_value_to_float_if_possible(value)
        # The common case passes on four type checks and a set lookup; anything else gets the
        # full rules (and the exact MLflow message) below.
        if not (
            key in _valid_metric_keys
            and type(value) is float
            and type(step) is int
            and type(timestamp) is int
            and _INT64_MIN <= step <= _INT64_MAX
            and 0 <= timestamp <= _INT64_MAX
        ):
            try:
                # MLflow validates an asynchronous metric inside a one-metric batch.
                value, timestamp, step = v.validate_metric(
                    key, value, timestamp, step, path="" if synchronous else "metrics[0]"
                )
            except MlflowException as error:
                if synchronous:
                    raise
                return RunOperations._failed(error)
            _remember_valid_key(key)
        # events.encode_metric's record, packed here: one Python call fewer per point.
        payload = _pack((_VERSION, _METRIC, run_id, key, value, timestamp, step))
        writer = self._writer
        if synchronous:
            writer.submit_wait(payload)
            return None
        return _pending(writer, writer.submit(payload))

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        if synchronous is None:
            synchronous = not _async_default()
        try:
            param = v.validate_param(key, str(value))
        except MlflowException as error:
            if synchronous:
                raise _with_param_hint(error)
            return RunOperations._failed(error)
        payload = events.encode(events.PARAM, run_id, param.key, param.value)
        if synchronous:
            try:
                self._writer.submit_wait(payload)
            except MlflowException as error:
                raise _with_param_hint(error)
            return value
        return RunOperations._pending(self._writer, self._writer.submit(payload))

    def set_tag(
        self, run_id: str, key: str, value: Any, synchronous: bool | None = None
    ) -> RunOperations | None:
        if synchronous is None:
            synchronous = not _async_default()
        try:
            tag = v.validate_tag(key, str(value))
        except MlflowException as error:
            if synchronous:
                raise
            return RunOperations._failed(error)
        payload = events.encode(events.TAG, run_id, tag.key, tag.value)
        if synchronous:
            self._writer.submit_wait(payload)
            return None
        return RunOperations._pending(self._writer, self._writer.submit(payload))

    def delete_tag(self, run_id: str, key: str) -> None:
        self._write(events.DELETE_TAG, run_id, key)

    def _log_metric_dict(
        self, run_id: str, metrics: Any, timestamp: int, step: int, synchronous: bool | None
    ) -> RunOperations | None:
        """Fluent log_metrics' way in: ``metrics`` (name -> value) at one step and time, as one
        log_batch. When every point is plain (float values, valid names, an int step and time
        in range, at most a request's worth, a valid run id) its BATCH record is built straight
        from the mapping: no Metric object, no column checks (a 5-metric fluent call: 8.4 µs
        instead of 17.5). Anything else goes through Metric objects and log_batch, MLflow's way."""
        if (
            0 < len(metrics) <= v.MAX_METRICS_PER_BATCH
            and type(step) is int
            and type(timestamp) is int
            and _INT64_MIN <= step <= _INT64_MAX
            and 0 <= timestamp <= _INT64_MAX
            and set(map(type, metrics.values())) == _FLOAT_ONLY
            and _known_keys(metrics)
            and _valid_run_id(run_id)
        ):
            if synchronous is None:
                synchronous = not _async_default()
            entries = [(key, value, timestamp, step) for key, value in metrics.items()]
            record = (_VERSION, events.BATCH, run_id, entries, [], [])
            payload = events.encode_record(record)
            if synchronous:
                self._writer.submit_wait(payload, record)
                return None
            return _pending(self._writer, self._writer.submit(payload))
        batch = [Metric(key, value, timestamp, step) for key, value in metrics.items()]
        return self.log_batch(run_id, metrics=batch, params=[], tags=[], synchronous=synchronous)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
    ) -> RunOperations | None:
        if synchronous is None:
            synchronous = not _async_default()
        params = [Param(p.key, str(p.value)) for p in params]  # MLflow's client stringifies them
        if len(metrics) == 0 and len(params) == 0 and len(tags) == 0:
            return None
        # Plain metrics (float values, int steps and timestamps, valid names) are checked column
        # by column and passed on as (key, value, timestamp, step) entries; any other batch is
        # converted and checked metric by metric, as MLflow does.
        entries = v.plain_metric_entries(metrics)
        if entries is None:
            metrics = [
                Metric(
                    m.key,
                    v.convert_metric_value_to_float_if_possible(m.value),
                    m.timestamp,
                    m.step,
                )
                for m in metrics
            ]
        # MLflow's client sends the requests one after another, so the requests before an
        # invalid one are stored and the ones after it are not: the same here.
        records: list[tuple] = []
        error: MlflowException | None = None
        for chunk_metrics, chunk_params, chunk_tags in _chunk_like_mlflow(
            metrics if entries is None else entries, list(params), list(tags)
        ):
            try:
                records.append(
                    self._batch_record(
                        run_id, chunk_metrics, chunk_params, chunk_tags, plain=entries is not None
                    )
                )
            except MlflowException as exc:
                error = exc
                break
        payloads = [events.encode_record(r) for r in records]
        if synchronous:
            for record, payload in zip(records, payloads):
                self._writer.submit_wait(payload, record)
            if error is not None:
                raise error
            return None
        operations = [RunOperations._pending(self._writer, self._writer.submit(p)) for p in payloads]
        if error is not None:
            operations.append(RunOperations._failed(error))
        return get_combined_run_operations(operations)

    @staticmethod
    def _batch_record(run_id, metrics, params, tags, plain: bool = False) -> tuple:
        """Validate one MLflow-sized batch as MLflow's store does; its BATCH record. ``plain``:
        ``metrics`` are entries that `v.plain_metric_entries` found valid already."""
        v.validate_run_id(run_id)
        if plain:
            _, params, tags = v.validate_batch_log_data((), params, tags)
            entries = metrics
        else:
            metrics, params, tags = v.validate_batch_log_data(metrics, params, tags)
            entries = [[m.key, m.value, m.timestamp, m.step] for m in metrics]
        v.validate_batch_log_limits(metrics, params, tags)
        v.validate_param_keys_unique(params)
        return (
            events.VERSION,
            events.BATCH,
            run_id,
            entries,
            [[p.key, p.value] for p in params],
            [[t.key, t.value] for t in tags],
        )

    def log_inputs(self, run_id: str, datasets: list | None = None, models: list | None = None) -> None:
        """Link datasets (DatasetInput entities) to a run, as MLflow's store does; waited for."""
        from ._inputs import log_inputs_record

        if models:
            raise MlflowException(
                "Logging logged-model inputs (models=) is not supported by asynctrack yet.",
                INVALID_PARAMETER_VALUE,
            )
        self._write(*log_inputs_record(run_id, datasets))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        metrics, _ = self._read().get_metric_history(run_id, key)
        return metrics

    # -- lifecycle of the client ------------------------------------------------------------------
    def flush(self) -> None:
        """Wait until everything this process logged to this client's store is stored, pending
        asynchronous artifact copies included."""
        _wait_artifact_copies(None)
        self._writer.flush()

    # -- search ---------------------------------------------------------------------------------
    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int | None = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """Experiments matching MLflow's filter language, one page at a time (``.token``)."""
        experiments, token = self._read().search_experiments(
            view_type, max_results, filter_string, order_by, page_token
        )
        return PagedList(experiments, token)

    def search_runs(
        self,
        experiment_ids: list[str] | str | int,
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Runs matching MLflow's filter language, in MLflow's order, one page at a time."""
        if isinstance(experiment_ids, (int, str)):
            experiment_ids = [experiment_ids]
        runs, token = self._read().search_runs(
            experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
        )
        return PagedList(runs, token)

    # -- artifacts (the logic is in _client_artifacts.py) ------------------------------
    def _wait_artifact_copies(self, run_id: str | None = None) -> None:
        """Block until the asynchronous artifact copies of ``run_id`` (all runs if None) end."""
        _wait_artifact_copies(run_id)

    def _artifact_uri(self, run_id: str) -> str:
        return _arts().artifact_uri(self, run_id)

    def log_artifact(
        self,
        run_id: str,
        local_path: str | os.PathLike,
        artifact_path: str | None = None,
        synchronous: bool | None = None,
    ) -> RunOperations | None:
        """Copy a local file or directory into the run's artifacts (a directory keeps its name).

        ``synchronous=False`` (an asynctrack extension) copies off the caller's thread and
        returns a RunOperations to wait on."""
        return _arts().log_artifact(self, run_id, local_path, artifact_path, synchronous)

    def log_artifacts(
        self,
        run_id: str,
        local_dir: str | os.PathLike,
        artifact_path: str | None = None,
        synchronous: bool | None = None,
    ) -> RunOperations | None:
        """Copy the contents of a local directory into the run's artifacts."""
        return _arts().log_artifacts(self, run_id, local_dir, artifact_path, synchronous)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Store ``text`` (UTF-8) as the artifact file ``artifact_file``."""
        _arts().log_text(self, run_id, text, artifact_file)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Store ``dictionary`` as YAML (.yml/.yaml) or JSON (any other extension)."""
        _arts().log_dict(self, run_id, dictionary, artifact_file)

    def log_figure(
        self,
        run_id: str,
        figure: Any,
        artifact_file: str,
        *,
        save_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Store a matplotlib or plotly figure, in the format the extension names."""
        _arts().log_figure(self, run_id, figure, artifact_file, save_kwargs)

    def log_image(
        self,
        run_id: str,
        image: Any,
        artifact_file: str | None = None,
        key: str | None = None,
        step: int | None = None,
        timestamp: int | None = None,
        synchronous: bool | None = None,
    ) -> RunOperations | None:
        """Store a numpy array or PIL image as ``artifact_file``, or as step ``step`` of the image
        series ``key`` (MLflow's file layout and tag, for its UI)."""
        return _arts().log_image(
            self, run_id, image, artifact_file, key, step, timestamp, synchronous
        )

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """Store a dict or DataFrame as a table artifact, appended to one logged before."""
        _arts().log_table(self, run_id, data, artifact_file)

    def load_table(
        self,
        experiment_id: str,
        artifact_file: str,
        run_ids: list[str] | None = None,
        extra_columns: list[str] | None = None,
    ) -> Any:
        """The table ``artifact_file`` of the experiment's runs, concatenated (a DataFrame)."""
        return _arts().load_table(self, experiment_id, artifact_file, run_ids, extra_columns)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The run's artifacts directly under ``path`` (the root if None)."""
        return _arts().list_artifacts(self, run_id, path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """Copy an artifact file or directory to ``dst_path`` and return its local path."""
        return _arts().download_artifacts(self, run_id, path, dst_path)


def _wait_artifact_copies(run_id: str | None) -> None:
    """Wait for asynchronous artifact copies, if this process ever started one (the copy pool's
    module, and concurrent.futures with it, load only then)."""
    copies = sys.modules.get("asynctrack._artifact_copies")
    if copies is not None:
        copies.wait_for(run_id)


def _arts():
    """The artifact calls' module, imported on first use: ``import asynctrack`` stays fast."""
    from . import _client_artifacts

    return _client_artifacts


_STATUS_STRINGS = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")


def validate_run_status(status: str) -> str:
    """A run status string, refused with MlflowException (MLflow raises a bare Exception)."""
    if status not in _STATUS_STRINGS:
        raise MlflowException(
            f"Could not get run status corresponding to string {status}. Valid run status "
            f"strings: {list(_STATUS_STRINGS)}",
            INVALID_PARAMETER_VALUE,
        )
    return status


def _with_param_hint(error: MlflowException) -> MlflowException:
    """MLflow appends its 'params are immutable' explanation to a synchronous param error."""
    if error.error_code == "INVALID_PARAMETER_VALUE":
        return MlflowException(f"{error.message}{v.PARAM_VALIDATION_MSG}", INVALID_PARAMETER_VALUE)
    return error


def _chunk_like_mlflow(metrics: list, params: list, tags: list):
    """Split a batch as MLflow's client does: ≤100 params, ≤100 tags, ≤1000 entities a request."""
    limit = v.MAX_PARAMS_TAGS_PER_BATCH
    param_chunks = [params[i : i + limit] for i in range(0, len(params), limit)]
    tag_chunks = [tags[i : i + limit] for i in range(0, len(tags), limit)]
    for chunk_params, chunk_tags in zip_longest(param_chunks, tag_chunks, fillvalue=[]):
        size = min(v.MAX_ENTITIES_PER_BATCH - len(chunk_params) - len(chunk_tags), v.MAX_METRICS_PER_BATCH)
        size = max(size, 0)
        yield metrics[:size], chunk_params, chunk_tags
        metrics = metrics[size:]
    for i in range(0, len(metrics), v.MAX_METRICS_PER_BATCH):
        yield metrics[i : i + v.MAX_METRICS_PER_BATCH], [], []
