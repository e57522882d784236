"""The schema MLflow 3.18 infers for a dataset (mlflow.types.utils._infer_schema), kept as the
JSON-ready dicts its ``to_dict`` gives: column specs for a DataFrame, tensor specs for numpy.

Types are plain values: a DataType is its name (``"long"``), ``_Array(items)``, ``_Object``
(name -> (type, required)) and ``ANY``. Imports numpy and pandas only when called."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException

ANY = "any"
_MULTIPLE_TYPES = (
    "Expected all values in the list to be of the same type. To specify a model signature "
    "with a list containing elements of multiple types, define the signature manually "
    "using the Array(AnyType()) type from mlflow.models.schema."
)


class _Array:
    __slots__ = ("items",)

    def __init__(self, items: Any) -> None:
        self.items = items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Array) and self.items == other.items


class _Object:
    __slots__ = ("props",)

    def __init__(self, props: dict[str, tuple[Any, bool]]) -> None:
        self.props = dict(sorted(props.items()))  # MLflow sorts an Object's properties by name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Object) and self.props == other.props


class Schema:
    """A list of column or tensor specs, as ``mlflow.types.Schema`` serialises them."""

    def __init__(self, inputs: list[dict[str, Any]], tensor: bool = False) -> None:
        self.inputs = inputs
        self._tensor = tensor

    def __len__(self) -> int:  # an empty schema is falsy: a DataFrame with no columns has none
        return len(self.inputs)

    def is_tensor_spec(self) -> bool:
        return self._tensor

    def input_names(self) -> list[Any]:
        return [spec.get("name") for spec in self.inputs]

    def to_dict(self) -> list[dict[str, Any]]:
        return [dict(spec) for spec in self.inputs]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.inputs == other.inputs

    def __repr__(self) -> str:
        return repr(self.inputs)


def type_dict(t: Any) -> dict[str, Any]:
    """A type's ``to_dict``."""
    if isinstance(t, _Array):
        return {"type": "array", "items": type_dict(t.items)}
    if isinstance(t, _Object):
        return {
            "type": "object",
            "properties": {n: {**type_dict(pt), "required": req} for n, (pt, req) in t.props.items()},
        }
    return {"type": t}


def _merge(a: Any, b: Any) -> Any:
    """MLflow's ``_merge`` of two inferred types (Array, Object, Any)."""
    if a == ANY:
        if a == b or not isinstance(b, (_Array, _Object)):
            return b
        return _merge(b, ANY)  # the other type, made optional
    if isinstance(a, _Array):
        if b == ANY or a == b:
            return a
        if not isinstance(b, _Array):
            raise MlflowException(f"Can't merge array with non-array type: {type(b).__name__}")
        if not isinstance(a.items, (_Array, _Object)) and a.items != ANY:
            if a.items == b.items or b.items == ANY:
                return _Array(a.items)
            raise MlflowException("Array types are incompatible")
        return _Array(_merge(a.items, b.items))
    if isinstance(a, _Object):
        if b == ANY:
            return _Object({n: (t, False) for n, (t, _) in a.props.items()})
        if not isinstance(b, _Object):
            raise MlflowException("Can't merge object with non-object type")
        if a == b:
            return a
        props: dict[str, tuple[Any, bool]] = {}
        for name in set(a.props) | set(b.props):
            if name in a.props and name in b.props:
                (ta, ra), (tb, rb) = a.props[name], b.props[name]
                if isinstance(ta, (_Array, _Object)) or ta == ANY:
                    t = _merge(ta, tb)
                elif ta == tb or tb == ANY:
                    t = ta
                else:
                    raise MlflowException(f"Properties are incompatible for {ta} and {tb}")
                props[name] = (t, ra and rb)
            else:
                props[name] = ((a.props.get(name) or b.props[name])[0], False)
        return _Object(props)
    raise MlflowException("Types are incompatible")


def _is_none_or_nan(x: Any) -> bool:
    import numpy as np
    import pandas as pd

    if isinstance(x, float):
        return bool(np.isnan(x))
    return x is None or x is pd.NA or x is pd.NaT


def _scalar(data: Any) -> str:
    import numpy as np

    mapping = {
        bool: "boolean", np.bool_: "boolean", int: "long", np.int64: "long", np.int32: "integer",
        float: "double", np.float64: "double", np.float32: "float", str: "string",
        np.str_: "string", object: "string", bytes: "binary", np.bytes_: "binary",
        bytearray: "binary",
    }
    found = mapping.get(type(data))
    if found:
        return found
    if type(data) in (np.datetime64, dt.datetime) or isinstance(data, dt.datetime):
        return "datetime"
    raise MlflowException(f"Data {data} is not one of the supported DataType", INVALID_PARAMETER_VALUE)


def _infer(data: Any) -> Any:
    """mlflow.types.utils._infer_datatype: None for an empty numpy array."""
    import numpy as np

    if _is_none_or_nan(data) or (isinstance(data, (list, dict)) and not data):
        return ANY
    if isinstance(data, dict):
        props = {}
        for k, v in data.items():
            t = _infer(v)
            if t is None:
                raise MlflowException("Dictionary value must not be an empty numpy array.")
            props[k] = (t, t != ANY)
        return _Object(props)
    if isinstance(data, (list, np.ndarray)):
        return _infer_array(data)
    return _scalar(data)


def _infer_array(data: Any) -> _Array | None:
    result: _Array | None = None
    for item in data:
        t = _infer(item)
        if t is None:
            continue
        if result is None:
            result = _Array(t)
        elif isinstance(result.items, (_Array, _Object)) or result.items == ANY:
            try:
                result = _Array(_merge(result.items, t))
            except MlflowException as e:
                raise MlflowException(_MULTIPLE_TYPES, INVALID_PARAMETER_VALUE) from e
        elif t != ANY and t != result.items:
            raise MlflowException(_MULTIPLE_TYPES, INVALID_PARAMETER_VALUE)
    return result


def _numpy_dtype(dtype: Any) -> str:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "boolean"
    if kind in ("i", "u"):
        if size < 4 or (kind == "i" and size == 4):
            return "integer"
        if size < 8 or (kind == "i" and size == 8):
            return "long"
    elif kind == "f":
        if size <= 4:
            return "float"
        if size <= 8:
            return "double"
    elif kind == "U":
        return "string"
    elif kind == "S":
        return "binary"
    elif kind == "M":
        return "datetime"
    raise MlflowException(f"Unsupported numpy data type '{dtype}', kind '{kind}'")


def _pandas_column(col: Any) -> Any:
    import pandas as pd

    if len(col.values.shape) > 1:
        raise MlflowException(f"Expected 1d array, got array with shape {col.shape}")
    if col.dtype.kind == "O":
        col = col.infer_objects()
    if col.dtype.kind == "O":
        try:
            t = _infer_array(col.to_list())
            if t is None:
                raise MlflowException("Numpy array must include at least one non-empty item.")
            return t.items
        except Exception as e:
            if pd.api.types.is_string_dtype(col):
                return "string"
            raise MlflowException(f"Failed to infer schema for pandas.Series {col}. Error: {e}") from e
    return _numpy_dtype(col.dtype)


def infer_pandas_schema(df: Any) -> Schema:
    """The column specs of a DataFrame: type, name, and required (no missing value)."""
    specs = []
    for name in df.columns:
        col = df[name]
        spec = type_dict(_pandas_column(col))
        spec["name"] = name
        spec["required"] = not any(_is_none_or_nan(x) for x in col)
        specs.append(spec)
    return Schema(specs)


def _tensor(array: Any, name: Any = None) -> dict[str, Any]:
    import numpy as np

    dtype = array.dtype
    if dtype.char == "U":
        dtype = np.dtype("str")
    elif dtype.char == "S":
        dtype = np.dtype("bytes")
    shape = list(array.shape)
    try:
        shape[0] = -1
    except IndexError:
        raise MlflowException(
            f"The specified variable_dimension 0 is out of bounds with respect to the number of "
            f"dimensions {array.ndim} in the input dataset"
        ) from None
    spec = {"type": "tensor", "tensor-spec": {"dtype": dtype.name, "shape": shape}}
    return spec if name is None else {"name": name, **spec}


def infer_tensor_schema(data: Any) -> Schema:
    """The tensor specs of an array, or of a dict of named arrays."""
    import numpy as np

    if isinstance(data, dict) and all(isinstance(v, np.ndarray) for v in data.values()):
        return Schema([_tensor(v, k) for k, v in data.items()], tensor=True)
    if isinstance(data, np.ndarray):
        return Schema([_tensor(data)], tensor=True)
    raise MlflowException("Failed to infer schema: expected a numpy array or a dict of them.")
