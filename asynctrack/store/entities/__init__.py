"""Store-level entities, at MLflow's import path (``mlflow.store.entities.PagedList``)."""

from ...entities._paged_list import PagedList

__all__ = ["PagedList"]
