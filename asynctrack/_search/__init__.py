"""MLflow's search language (filters, order_by, page tokens), pure Python, shared by stores."""

# MLflow's page sizes (mlflow.store.tracking and mlflow.tracking.fluent).
SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50000
SEARCH_MAX_RESULTS_PANDAS = 100000
NUM_RUNS_PER_PAGE_PANDAS = 10000

from .filters import (  # noqa: E402
    Clause,
    experiment_clauses,
    parse_experiment_filter,
    parse_run_filter,
    run_clauses,
)
from .order_by import parse_experiment_order_by, parse_run_order_by  # noqa: E402

__all__ = [
    "NUM_RUNS_PER_PAGE_PANDAS",
    "SEARCH_MAX_RESULTS_DEFAULT",
    "SEARCH_MAX_RESULTS_PANDAS",
    "SEARCH_MAX_RESULTS_THRESHOLD",
    "Clause",
    "experiment_clauses",
    "parse_experiment_filter",
    "parse_experiment_order_by",
    "parse_run_filter",
    "parse_run_order_by",
    "run_clauses",
]
