"""mlflow.data.from_pandas: a DataFrame as a dataset, with MLflow's digest, column-spec schema
and row/element profile."""

from __future__ import annotations

import json
import logging
from functools import cached_property
from typing import Any

from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException
from ._schema import Schema, infer_pandas_schema
from .dataset import Dataset
from .digest_utils import compute_pandas_digest
from .sources import DatasetSource, source_of

_logger = logging.getLogger(__name__)


class PandasDataset(Dataset):
    """A pandas DataFrame for use with MLflow Tracking."""

    def __init__(
        self,
        df: Any,
        source: DatasetSource,
        targets: str | None = None,
        name: str | None = None,
        digest: str | None = None,
        predictions: str | None = None,
    ) -> None:
        if targets is not None and targets not in df.columns:
            raise MlflowException(
                f"The specified pandas DataFrame does not contain the specified targets column '{targets}'.",
                INVALID_PARAMETER_VALUE,
            )
        if predictions is not None and predictions not in df.columns:
            raise MlflowException(
                "The specified pandas DataFrame does not contain the specified predictions column"
                f" '{predictions}'.",
                INVALID_PARAMETER_VALUE,
            )
        self._df = df
        self._targets = targets
        self._predictions = predictions
        super().__init__(source=source, name=name, digest=digest)

    def _compute_digest(self) -> str:
        return compute_pandas_digest(self._df)

    def to_dict(self) -> dict[str, str]:
        """name, digest, source, source type, schema and profile (JSON strings)."""
        schema = json.dumps({"mlflow_colspec": self.schema.to_dict()}) if self.schema else None
        config = super().to_dict()
        config.update({"schema": schema, "profile": json.dumps(self.profile)})
        return config

    @property
    def df(self) -> Any:
        return self._df

    @property
    def source(self) -> DatasetSource:
        return self._source

    @property
    def targets(self) -> str | None:
        return self._targets

    @property
    def predictions(self) -> str | None:
        return self._predictions

    @property
    def profile(self) -> Any | None:
        return {"num_rows": len(self._df), "num_elements": int(self._df.size)}

    @cached_property
    def schema(self) -> Schema | None:
        try:
            return infer_pandas_schema(self._df)
        except Exception as e:  # noqa: BLE001 - MLflow: no schema, logged at debug
            _logger.debug("Failed to infer schema for Pandas dataset. Exception: %s", e)
            return None


def from_pandas(
    df: Any,
    source: Any = None,
    targets: str | None = None,
    name: str | None = None,
    digest: str | None = None,
    predictions: str | None = None,
) -> PandasDataset:
    """A PandasDataset; ``source`` a URI, path or DatasetSource (None: the calling code)."""
    return PandasDataset(
        df=df, source=source_of(source), targets=targets, name=name, digest=digest, predictions=predictions
    )
