"""``mlflow.data.dataset_source``'s name for the DatasetSource base class."""

from .sources import DatasetSource

__all__ = ["DatasetSource"]
