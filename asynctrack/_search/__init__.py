"""MLflow's search language (filters, order_by, page tokens), pure Python, shared by stores.

The parser loads on first use (``__getattr__``): the client only needs the page-size constants
at import, and every spawned worker pays for what ``import asynctrack`` loads.
"""

from __future__ import annotations

import importlib
from typing import Any

# MLflow's page sizes (mlflow.store.tracking and mlflow.tracking.fluent).
SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50000
SEARCH_MAX_RESULTS_PANDAS = 100000
NUM_RUNS_PER_PAGE_PANDAS = 10000

_LAZY = {
    "Clause": "filters",
    "experiment_clauses": "filters",
    "parse_experiment_filter": "filters",
    "parse_run_filter": "filters",
    "run_clauses": "filters",
    "parse_experiment_order_by": "order_by",
    "parse_run_order_by": "order_by",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "NUM_RUNS_PER_PAGE_PANDAS",
    "SEARCH_MAX_RESULTS_DEFAULT",
    "SEARCH_MAX_RESULTS_PANDAS",
    "SEARCH_MAX_RESULTS_THRESHOLD",
    *_LAZY,
]
