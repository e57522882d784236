"""mlflow.data: datasets for ``log_input`` (``from_pandas``, ``from_numpy``), their sources and
digests as MLflow 3.18 computes them. pandas and numpy are imported only when a dataset of
theirs is built (the ``pandas`` extra)."""

from __future__ import annotations

from typing import Any

from .dataset import Dataset
from .sources import DatasetSource, get_dataset_source_from_json

__all__ = ["Dataset", "DatasetSource", "from_numpy", "from_pandas", "get_source"]


def from_pandas(df: Any, source: Any = None, targets: str | None = None, name: str | None = None,
                digest: str | None = None, predictions: str | None = None) -> Any:
    """A PandasDataset of ``df`` (see pandas_dataset.from_pandas)."""
    from .._extras import require

    require("pandas", "pandas", "mlflow.data.from_pandas")
    from .pandas_dataset import from_pandas as _from_pandas

    return _from_pandas(df, source=source, targets=targets, name=name, digest=digest, predictions=predictions)


def from_numpy(features: Any, source: Any = None, targets: Any = None, digest: str | None = None,
               name: str | None = None) -> Any:
    """A NumpyDataset of ``features`` (see numpy_dataset.from_numpy)."""
    from .._extras import require

    require("pandas", "pandas", "mlflow.data.from_numpy (its digest hashes with pandas)")
    from .numpy_dataset import from_numpy as _from_numpy

    return _from_numpy(features, source=source, targets=targets, name=name, digest=digest)


def get_source(dataset: Any) -> DatasetSource:
    """The source of a dataset, a DatasetInput or a Dataset entity, as MLflow's get_source."""
    from ..entities import Dataset as DatasetEntity, DatasetInput

    if isinstance(dataset, DatasetInput):
        dataset = dataset.dataset
    if isinstance(dataset, DatasetEntity):
        return get_dataset_source_from_json(dataset.source, source_type=dataset.source_type)
    if isinstance(dataset, Dataset):
        return dataset.source
    from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException

    raise MlflowException(
        f"Unrecognized dataset type {type(dataset)}. Expected one of: "
        "`mlflow.data.dataset.Dataset`, `mlflow.entities.Dataset`, `mlflow.entities.DatasetInput`.",
        INVALID_PARAMETER_VALUE,
    )
