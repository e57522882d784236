"""The Store's reads, answered the same way by every SQL store: each store supplies only how a
read reaches its database (``_read``: which connection, which retries, which errors), its
search module, and how an experiment id becomes its column's integer."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from ...entities import Experiment, Metric, Run
from . import reads


class SqlReads:
    """Mixin for a Store over MLflow's SQL tables (see the module)."""

    _search: ModuleType  # search_runs(conn, ...), search_experiments(conn, ...)

    def _read(self, fn: Callable[..., Any], *args: Any, raw: bool = False, heavy: bool = False) -> Any:
        """``fn(connection, *args)``; ``raw``: the driver's connection as it is, not one that
        takes ``?`` placeholders (``reads.Reader``); ``heavy``: a search or a history, which a
        store with a read replica may answer there (point lookups stay on the primary: every
        write call reads back what it wrote)."""
        raise NotImplementedError

    def _experiment_key(self, experiment_id: str) -> int:
        return int(experiment_id)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._read(reads.experiment_by_id, self._experiment_key(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._read(reads.experiment_by_name, name)

    def get_run(self, run_id: str) -> Run:
        return self._read(reads.run, run_id)

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> tuple[list[Metric], str | None]:
        return self._read(reads.metric_history, run_id, key, max_results, page_token, heavy=True)

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None,
        run_view_type: int,
        max_results: int | None,
        order_by: list[str] | None,
        page_token: str | None,
    ) -> tuple[list[Run], str | None]:
        return self._read(
            self._search.search_runs,
            experiment_ids,
            filter_string,
            run_view_type,
            max_results,
            order_by,
            page_token,
            raw=True,
            heavy=True,
        )

    def search_experiments(
        self,
        view_type: int,
        max_results: int | None,
        filter_string: str | None,
        order_by: list[str] | None,
        page_token: str | None,
    ) -> tuple[list[Experiment], str | None]:
        return self._read(
            self._search.search_experiments,
            view_type,
            max_results,
            filter_string,
            order_by,
            page_token,
            raw=True,
            heavy=True,
        )
