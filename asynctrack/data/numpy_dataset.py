"""mlflow.data.from_numpy: arrays (or dicts of them) as a dataset, with MLflow's digest,
tensor-spec schema and shape/size/nbytes profile."""

from __future__ import annotations

import json
import logging
from functools import cached_property
from typing import Any

from ._schema import Schema, infer_tensor_schema
from .dataset import Dataset
from .digest_utils import compute_numpy_digest
from .sources import DatasetSource, source_of

_logger = logging.getLogger(__name__)


class TensorDatasetSchema:
    """Features and targets schemas of a tensor dataset."""

    def __init__(self, features: Schema, targets: Schema | None = None) -> None:
        self.features = features
        self.targets = targets

    def to_dict(self) -> dict[str, Any]:
        return {
            "mlflow_tensorspec": {
                "features": self.features.to_json(),
                "targets": self.targets.to_json() if self.targets is not None else None,
            },
        }

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TensorDatasetSchema)
            and self.features == other.features
            and self.targets == other.targets
        )


class NumpyDataset(Dataset):
    """NumPy features (and targets) for use with MLflow Tracking."""

    def __init__(
        self,
        features: Any,
        source: DatasetSource,
        targets: Any = None,
        name: str | None = None,
        digest: str | None = None,
    ) -> None:
        self._features = features
        self._targets = targets
        super().__init__(source=source, name=name, digest=digest)

    def _compute_digest(self) -> str:
        return compute_numpy_digest(self._features, self._targets)

    def to_dict(self) -> dict[str, str]:
        """name, digest, source, source type, schema and profile (JSON strings)."""
        schema = json.dumps(self.schema.to_dict()) if self.schema else None
        config = super().to_dict()
        config.update({"schema": schema, "profile": json.dumps(self.profile)})
        return config

    @property
    def source(self) -> DatasetSource:
        return self._source

    @property
    def features(self) -> Any:
        return self._features

    @property
    def targets(self) -> Any:
        return self._targets

    @property
    def profile(self) -> Any | None:
        def attr(data: Any, name: str) -> Any:
            if isinstance(data, dict):
                return {key: getattr(array, name) for key, array in data.items()}
            return getattr(data, name)

        profile = {
            "features_shape": attr(self._features, "shape"),
            "features_size": attr(self._features, "size"),
            "features_nbytes": attr(self._features, "nbytes"),
        }
        if self._targets is not None:
            profile.update({
                "targets_shape": attr(self._targets, "shape"),
                "targets_size": attr(self._targets, "size"),
                "targets_nbytes": attr(self._targets, "nbytes"),
            })
        return profile

    @cached_property
    def schema(self) -> TensorDatasetSchema | None:
        try:
            features = infer_tensor_schema(self._features)
            targets = infer_tensor_schema(self._targets) if self._targets is not None else None
            return TensorDatasetSchema(features=features, targets=targets)
        except Exception as e:  # noqa: BLE001 - MLflow: no schema, with a warning
            _logger.warning("Failed to infer schema for NumPy dataset. Exception: %s", e)
            return None


def from_numpy(
    features: Any,
    source: Any = None,
    targets: Any = None,
    name: str | None = None,
    digest: str | None = None,
) -> NumpyDataset:
    """A NumpyDataset; ``source`` a URI, path or DatasetSource (None: the calling code)."""
    return NumpyDataset(features=features, source=source_of(source), targets=targets, name=name, digest=digest)
