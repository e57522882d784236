"""``mlflow.pyfunc``: load any model in MLflow's format through its ``python_function`` flavour
and ``predict`` with it. The flavour's ``loader_module`` is MLflow's (``mlflow.sklearn``);
asynctrack loads it with its own module of the same name (``asynctrack.sklearn``)."""

from __future__ import annotations

import importlib
import os
from typing import Any

from ..exceptions import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, MlflowException
from ..models.model import Model

FLAVOR_NAME = "python_function"


def _loader(module_name: str):
    if module_name.startswith("mlflow."):
        module_name = "asynctrack." + module_name[len("mlflow."):]
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise MlflowException(
            f"asynctrack cannot load models of loader module {module_name!r}",
            INVALID_PARAMETER_VALUE,
        ) from exc


class PyFuncModel:
    """A loaded model with MLflow's pyfunc interface: ``predict``, ``metadata``."""

    def __init__(self, model_meta: Model, model_impl: Any) -> None:
        self._model_meta = model_meta
        self._model_impl = model_impl

    @property
    def metadata(self) -> Model:
        return self._model_meta

    @property
    def loader_module(self) -> str:
        return self._model_meta.flavors[FLAVOR_NAME]["loader_module"]

    def get_raw_model(self) -> Any:
        return self._model_impl.get_raw_model()

    def unwrap_python_model(self) -> Any:
        return self._model_impl

    def _enforce(self, data: Any) -> Any:
        """The columns of a DataFrame in the signature's order, each as its declared type
        (MLflow's schema enforcement, for column signatures; a missing column is refused)."""
        schema = self._model_meta.get_input_schema()
        if not schema or schema[0].get("type") == "tensor":
            return data
        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            return data
        names = [c["name"] for c in schema if "name" in c]
        if not names:
            return data
        required_missing = [
            c["name"] for c in schema
            if "name" in c and c["name"] not in data.columns and c.get("required", True)
        ]
        if required_missing:
            raise MlflowException(
                f"Model is missing inputs {required_missing}. Note that there were extra inputs: "
                f"{sorted(set(data.columns) - set(names))}.",
                INVALID_PARAMETER_VALUE,
            )
        out = data[[n for n in names if n in data.columns]].copy()
        casts = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32"}
        for col in schema:
            target = casts.get(col.get("type", ""))
            if target and col["name"] in out.columns and str(out[col["name"]].dtype) != target:
                if not (target.startswith("int") and out[col["name"]].dtype.kind == "f"):
                    out[col["name"]] = out[col["name"]].astype(target)
        return out

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self._model_impl.predict(self._enforce(data), params=params)

    def __repr__(self) -> str:
        return f"mlflow.pyfunc.loaded_model:\n  flavor: {self.loader_module}"


def load_model(
    model_uri: str,
    suppress_warnings: bool = False,
    dst_path: str | None = None,
    model_config: Any = None,
) -> PyFuncModel:
    """The model at ``model_uri`` (path, ``runs:/``, ``models:/m-<id>``) as a PyFuncModel."""
    from ..models._uri import model_dir

    local = model_dir(model_uri)
    meta = Model.load(local)
    conf = meta.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise MlflowException(
            f'Model does not have the "{FLAVOR_NAME}" flavor', RESOURCE_DOES_NOT_EXIST
        )
    data_path = os.path.join(local, conf["model_path"]) if "model_path" in conf else local
    impl = _loader(conf["loader_module"])._load_pyfunc(data_path)
    return PyFuncModel(meta, impl)
