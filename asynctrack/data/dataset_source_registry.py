"""``mlflow.data.dataset_source_registry``'s functions (the registry is fixed here: MLflow's
built-in sources, no plugin entry points)."""

from .sources import get_dataset_source_from_json, get_registered_sources, resolve_dataset_source

__all__ = ["get_dataset_source_from_json", "get_registered_sources", "resolve_dataset_source"]
