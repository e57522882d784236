"""Model signatures as MLflow 3.18 writes them into ``MLmodel``: a column schema for a
DataFrame (``[{"type": "double", "name": "a", "required": true}]``), a tensor schema for a
numpy array (``[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}]``).
Only what sklearn-style models need: DataFrames, Series, arrays, lists of scalars."""

from __future__ import annotations

import json
from typing import Any

# numpy dtype kind/name -> MLflow's DataType name (mlflow/types/schema.py DataType)
_COLUMN_TYPES = {
    "float64": "double",
    "float32": "float",
    "int64": "long",
    "int32": "integer",
    "int16": "integer",
    "int8": "integer",
    "uint8": "integer",
    "uint16": "integer",
    "uint32": "long",
    "bool": "boolean",
    "boolean": "boolean",
    "object": "string",
    "str": "string",
    "string": "string",
    "bytes": "binary",
}
_DATETIME = "datetime"


def _column_type(dtype: Any) -> str:
    name = str(dtype)
    if name.startswith("datetime64"):
        return _DATETIME
    if name in _COLUMN_TYPES:
        return _COLUMN_TYPES[name]
    if name.lower().startswith("string") or name == "str":
        return "string"
    raise ValueError(f"Unsupported column type {name!r} for a model signature")


def infer_schema(data: Any) -> list[dict[str, Any]]:
    """MLflow's schema (as its JSON list) of ``data``: columns for a DataFrame or Series,
    a tensor for a numpy array or a list of rows."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return [
            {"type": _column_type(dtype), "name": str(col), "required": True}
            for col, dtype in zip(data.columns, data.dtypes)
        ]
    if isinstance(data, pd.Series):
        spec: dict[str, Any] = {"type": _column_type(data.dtype)}
        if data.name is not None:
            spec["name"] = str(data.name)
        spec["required"] = True
        return [spec]
    if isinstance(data, list):
        data = np.asarray(data)
    if isinstance(data, np.ndarray):
        shape = [-1, *data.shape[1:]]
        return [{"type": "tensor", "tensor-spec": {"dtype": str(data.dtype), "shape": shape}}]
    raise ValueError(f"Cannot infer a model schema from {type(data).__name__}")


class ModelSignature:
    """Inputs and outputs of a model (MLflow's ``ModelSignature``), kept as MLflow's JSON lists."""

    def __init__(
        self,
        inputs: list[dict[str, Any]] | None = None,
        outputs: list[dict[str, Any]] | None = None,
        params: list[dict[str, Any]] | None = None,
    ) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.params = params

    def to_dict(self) -> dict[str, Any]:
        """The ``signature`` mapping of ``MLmodel``: each part a JSON string, or None."""
        return {
            "inputs": json.dumps(self.inputs) if self.inputs is not None else None,
            "outputs": json.dumps(self.outputs) if self.outputs is not None else None,
            "params": json.dumps(self.params) if self.params is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSignature:
        def part(key: str) -> Any:
            value = d.get(key)
            return json.loads(value) if value else None

        return cls(part("inputs"), part("outputs"), part("params"))

    def is_tensor(self) -> bool:
        return bool(self.inputs) and self.inputs[0].get("type") == "tensor"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSignature) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"ModelSignature(inputs={self.inputs!r}, outputs={self.outputs!r}, params={self.params!r})"


def infer_signature(model_input: Any, model_output: Any = None) -> ModelSignature:
    """MLflow's ``infer_signature`` for DataFrames, Series and arrays."""
    outputs = infer_schema(model_output) if model_output is not None else None
    return ModelSignature(infer_schema(model_input), outputs)


def signature_from_example(example: Any, predict: Any) -> ModelSignature | None:
    """MLflow's ``_infer_signature_from_input_example``: the example's schema, and the schema of
    the model's prediction on it (a 1-D array beside column inputs counts as a Series). Any
    failure gives None, as MLflow's does (it only warns)."""
    import numpy as np
    import pandas as pd

    try:
        inputs = infer_schema(example)
        prediction = predict(example)
        if inputs[0].get("type") != "tensor" and isinstance(prediction, np.ndarray):
            if prediction.ndim == 1:
                prediction = pd.Series(prediction)
        try:
            outputs = infer_schema(prediction)
        except Exception:
            outputs = None
        return ModelSignature(inputs, outputs)
    except Exception:
        return None
