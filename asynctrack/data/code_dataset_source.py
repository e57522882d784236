"""``mlflow.data.code_dataset_source``'s name for CodeDatasetSource."""

from .sources import CodeDatasetSource

__all__ = ["CodeDatasetSource"]
