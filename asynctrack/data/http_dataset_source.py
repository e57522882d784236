"""``mlflow.data.http_dataset_source``'s name for HTTPDatasetSource."""

from .sources import HTTPDatasetSource

__all__ = ["HTTPDatasetSource"]
