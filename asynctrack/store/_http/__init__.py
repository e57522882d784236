"""The HTTP store: any MLflow tracking server, through MLflow's REST API 2.0 as MLflow's own
client speaks it (``mlflow/store/tracking/rest_store.py``).

Reads are blocking calls in the caller's thread over a keep-alive ``httpx.Client``, retried as
MLflow retries them (MLFLOW_HTTP_REQUEST_MAX_RETRIES, _BACKOFF_FACTOR, _BACKOFF_JITTER,
Retry-After). Writes go through the writer like any store's (see ``_writes``); there each
request is made once and the writer's own retries, outage hold and spool do the rest, so that a
synchronous caller hears TEMPORARILY_UNAVAILABLE within the writer's brief retry instead of
after MLflow's minutes of backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..._rest import API_PREFIX, RestConfig, SyncTransport
from ...entities import Experiment, Metric, Run
from ...exceptions import MlflowException
from ..base import Store
from . import _entities as js
from ._writes import HttpWriter

GET_METRIC_HISTORY_MAX_RESULTS = 25_000  # MLflow's client pages the history by this many
_VIEW_TYPES = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}


class HttpStore(Store):
    """A tracking server at ``uri`` (http:// or https://)."""

    remote = True

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._host = uri.rstrip("/")
        RestConfig.from_env(self._host)  # MLflow's errors for bad settings, at once
        self._sync = SyncTransport()
        self._writer = HttpWriter(self.config)

    def config(self) -> RestConfig:
        """The settings, read from the environment per call as MLflow reads them."""
        return RestConfig.from_env(self._host)

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        return self._sync.call(self.config(), method, API_PREFIX + path, body)

    # -- writes -------------------------------------------------------------------------------
    def limit_retries(self, until: float | None) -> None:
        self._writer.give_up_at = until

    def prepare_writer(self) -> None:
        import httpx  # noqa: F401  (see Store.prepare_writer)

    async def open_writer(self) -> None:
        pass

    async def apply(
        self, records: Sequence[tuple], on_commit: Callable[[list[Any]], None] | None = None
    ) -> list[Any]:
        return await self._writer.apply(records, on_commit)

    async def close_writer(self) -> None:
        await self._writer.transport.aclose()

    def reset_after_fork(self) -> None:
        """The child of a fork opens connections of its own."""
        self._writer.transport.forget()
        self._sync = SyncTransport()

    # -- reads --------------------------------------------------------------------------------
    def get_experiment(self, experiment_id: str) -> Experiment:
        # str(None) as MLflow's client sends it: the server names what is wrong with it.
        body = self._call("GET", "/mlflow/experiments/get", {"experiment_id": str(experiment_id)})
        return js.experiment(body.get("experiment") or {})

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            body = self._call("GET", "/mlflow/experiments/get-by-name", {"experiment_name": name})
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return js.experiment(body.get("experiment") or {})

    def get_run(self, run_id: str) -> Run:
        body = self._call("GET", "/mlflow/runs/get", {"run_uuid": run_id, "run_id": run_id})
        return js.run(body.get("run") or {})

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> tuple[list[Metric], str | None]:
        """With ``max_results`` None, every page, GET_METRIC_HISTORY_MAX_RESULTS at a time
        (MLflow's client's way); else the one page asked for."""
        pages_all = max_results is None
        history: list[Metric] = []
        while True:
            query: dict[str, Any] = {"run_uuid": run_id, "run_id": run_id, "metric_key": key}
            query["max_results"] = GET_METRIC_HISTORY_MAX_RESULTS if pages_all else max_results
            if page_token:
                query["page_token"] = page_token
            body = self._call("GET", "/mlflow/metrics/get-history", query)
            history.extend(js.metric(m) for m in body.get("metrics", ()))
            page_token = body.get("next_page_token") or None
            if not pages_all or page_token is None:
                return history, page_token

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None,
        run_view_type: int,
        max_results: int | None,
        order_by: list[str] | None,
        page_token: str | None,
    ) -> tuple[list[Run], str | None]:
        body: dict[str, Any] = {"experiment_ids": [str(e) for e in experiment_ids]}
        if filter_string is not None:
            body["filter"] = filter_string
        body["run_view_type"] = _VIEW_TYPES.get(run_view_type, run_view_type)
        if max_results is not None:
            body["max_results"] = max_results
        if order_by:
            body["order_by"] = list(order_by)
        if page_token is not None:
            body["page_token"] = page_token
        answer = self._call("POST", "/mlflow/runs/search", body)
        runs = [js.run(r) for r in answer.get("runs", ())]
        return runs, answer.get("next_page_token") or None

    def search_experiments(
        self,
        view_type: int,
        max_results: int | None,
        filter_string: str | None,
        order_by: list[str] | None,
        page_token: str | None,
    ) -> tuple[list[Experiment], str | None]:
        body: dict[str, Any] = {"view_type": _VIEW_TYPES.get(view_type, view_type)}
        if max_results is not None:
            body["max_results"] = max_results
        if page_token is not None:
            body["page_token"] = page_token
        if order_by:
            body["order_by"] = list(order_by)
        if filter_string is not None:
            body["filter"] = filter_string
        answer = self._call("POST", "/mlflow/experiments/search", body)
        experiments = [js.experiment(e) for e in answer.get("experiments", ())]
        token = answer.get("next_page_token")
        return experiments, (token if token is not None else None)

    def close(self) -> None:
        self._sync.close()


def is_http_uri(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


__all__ = ["HttpStore", "is_http_uri"]
