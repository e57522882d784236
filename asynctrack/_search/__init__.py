"""MLflow's search language (filters, order_by, page tokens), pure Python, shared by stores."""

from .filters import (
    Clause,
    experiment_clauses,
    parse_experiment_filter,
    parse_run_filter,
    run_clauses,
)
from .order_by import parse_experiment_order_by, parse_run_order_by

__all__ = [
    "Clause",
    "experiment_clauses",
    "parse_experiment_filter",
    "parse_experiment_order_by",
    "parse_run_filter",
    "parse_run_order_by",
    "run_clauses",
]
