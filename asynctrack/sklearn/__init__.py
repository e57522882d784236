"""``mlflow.sklearn``: save, log and load scikit-learn models in MLflow 3.18's model format
(``MLmodel`` with the ``python_function`` and ``sklearn`` flavours), so that real MLflow loads
what asynctrack saved and the other way round. Needs the ``sklearn`` extra.

One deliberate difference: the default ``serialization_format`` is ``cloudpickle`` where MLflow
3.18 defaults to ``skops`` (skops is not an asynctrack dependency; ``serialization_format="skops"``
works where skops is installed, and models MLflow saved with skops load with it)."""

from __future__ import annotations

import os
import platform
import shutil
from typing import Any

from ..exceptions import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    MlflowException,
)
from ..models.model import (
    CONDA_ENV_FILE,
    MLMODEL_FILE_NAME,
    PYTHON_ENV_FILE,
    Model,
    default_requirements,
    process_requirements,
    save_example,
    total_size,
    write_environment,
)
from ..models.signature import ModelSignature, signature_from_example

FLAVOR_NAME = "sklearn"
SERIALIZATION_FORMAT_SKOPS = "skops"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SUPPORTED_SERIALIZATION_FORMATS = [
    SERIALIZATION_FORMAT_SKOPS,
    SERIALIZATION_FORMAT_PICKLE,
    SERIALIZATION_FORMAT_CLOUDPICKLE,
]
_PICKLE_FILE = "model.pkl"
_SKOPS_FILE = "model.skops"
_LOADER_MODULE = "mlflow.sklearn"  # MLflow's name: real MLflow can load the model


def _require(module: str, package: str | None = None, extra: str = "sklearn"):
    from .._extras import require

    return require(module, extra, "A scikit-learn model in MLflow's format", package)


def _prepare_path(path: str) -> None:
    """MLflow's ``_validate_and_prepare_target_save_path``."""
    if os.path.exists(path) and any(os.scandir(path)):
        raise MlflowException(
            f"Path '{path}' already exists and is not empty", RESOURCE_ALREADY_EXISTS
        )
    os.makedirs(path, exist_ok=True)


def _dump(sk_model: Any, out: str, fmt: str, trusted: list[str] | None) -> None:
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        sio = _require("skops.io", "skops", "skops")
        try:
            sio.dump(sk_model, out)
            sio.load(out, trusted=trusted)  # MLflow refuses a model it could not load back
        except Exception as exc:
            if os.path.exists(out):
                os.remove(out)
            if type(exc).__name__ == "UntrustedTypesFoundException":
                raise MlflowException(
                    "The saved sklearn model references untrusted types. If you are sure "
                    "loading these types is safe, set the 'skops_trusted_types' parameter when "
                    "calling 'log_model' or 'save_model' to the list of trusted types. "
                    f"Root error: {exc!s}"
                ) from exc
            raise MlflowException(
                "The sklearn model could not be serialized in the skops serialization format. "
                "skops does not support custom functions or classes that are not defined at "
                "the top level. To work around this limitation, you can set the "
                "serialization_format 'cloudpickle', while exercising caution due to the "
                "possible arbitrary code during model deserialization using CloudPickle."
            ) from exc
        return
    import pickle

    module = _require("cloudpickle") if fmt == SERIALIZATION_FORMAT_CLOUDPICKLE else pickle
    with open(out, "wb") as f:
        # Python's default protocol, as MLflow (cloudpickle's own default is the highest,
        # which older Pythons cannot read: mlflow/mlflow#5419).
        module.dump(sk_model, f, protocol=pickle.DEFAULT_PROTOCOL)


def save_model(
    sk_model: Any,
    path: str,
    conda_env: Any = None,
    code_paths: list[str] | None = None,
    mlflow_model: Model | None = None,
    serialization_format: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
    skops_trusted_types: list[str] | None = None,
    extra_files: list[str] | None = None,
) -> None:
    """Save ``sk_model`` at ``path`` in MLflow's model format (see the module)."""
    sklearn = _require("sklearn", "scikit-learn")
    fmt = serialization_format or SERIALIZATION_FORMAT_CLOUDPICKLE
    if fmt not in SUPPORTED_SERIALIZATION_FORMATS:
        raise MlflowException(
            f"Unrecognized serialization format: {fmt}. Please specify one of the following "
            f"supported formats: {SUPPORTED_SERIALIZATION_FORMATS}.",
            INVALID_PARAMETER_VALUE,
        )
    if code_paths or extra_files or conda_env is not None:
        raise MlflowException(
            "asynctrack's save_model does not take code_paths, extra_files or conda_env yet",
            INVALID_PARAMETER_VALUE,
        )
    path = os.path.abspath(os.fspath(path))
    _prepare_path(path)
    try:
        model = mlflow_model if mlflow_model is not None else Model()
        example = save_example(model, input_example, path)
        if signature is None and example is not None:
            signature = signature_from_example(example, getattr(sk_model, pyfunc_predict_fn, None))
        elif signature is False:
            signature = None
        if signature is not None:
            model.signature = signature
        if metadata is not None:
            model.metadata = metadata
        data_file = _SKOPS_FILE if fmt == SERIALIZATION_FORMAT_SKOPS else _PICKLE_FILE
        _dump(sk_model, os.path.join(path, data_file), fmt, skops_trusted_types)
        if hasattr(sk_model, pyfunc_predict_fn):
            model.add_flavor(
                "python_function",
                loader_module=_LOADER_MODULE,
                model_path=data_file,
                predict_fn=pyfunc_predict_fn,
                python_version=platform.python_version(),
                env={"conda": CONDA_ENV_FILE, "virtualenv": PYTHON_ENV_FILE},
            )
        model.add_flavor(
            FLAVOR_NAME,
            pickled_model=data_file,
            sklearn_version=sklearn.__version__,
            serialization_format=fmt,
            code=None,
            skops_trusted_types=skops_trusted_types,
        )
        if size := total_size(path):
            model.model_size_bytes = size
        model.save(os.path.join(path, MLMODEL_FILE_NAME))
        extra = ["cloudpickle"] if fmt == SERIALIZATION_FORMAT_CLOUDPICKLE else []
        extra += ["skops"] if fmt == SERIALIZATION_FORMAT_SKOPS else []
        default = default_requirements(["numpy", "pandas", "scikit-learn", "scipy", *extra])
        reqs = process_requirements(default, pip_requirements, extra_pip_requirements)
        write_environment(path, reqs)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    conda_env: Any = None,
    code_paths: list[str] | None = None,
    serialization_format: str | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    await_registration_for: int = 300,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
    extra_files: list[str] | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    name: str | None = None,
    skops_trusted_types: list[str] | None = None,
    **kwargs: Any,
):
    """Log ``sk_model`` as a LoggedModel of the active run (MLflow 3.18's ``log_model``)."""
    from ..models._log import log_model as _log

    if registered_model_name is not None:
        raise MlflowException(
            "asynctrack has no model registry: registered_model_name is not supported",
            INVALID_PARAMETER_VALUE,
        )
    return _log(
        save_model,
        name,
        artifact_path,
        params,
        tags,
        model_type,
        step,
        model_id,
        sk_model=sk_model,
        conda_env=conda_env,
        code_paths=code_paths,
        serialization_format=serialization_format,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        pyfunc_predict_fn=pyfunc_predict_fn,
        metadata=metadata,
        skops_trusted_types=skops_trusted_types,
        extra_files=extra_files,
    )


def _load_file(path: str, fmt: str, trusted: list[str] | None) -> Any:
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        return _require("skops.io", "skops", "skops").load(path, trusted=trusted)
    if fmt not in SUPPORTED_SERIALIZATION_FORMATS:
        raise MlflowException(
            f"Unrecognized serialization format: {fmt}. Please specify one of the following "
            f"supported formats: {SUPPORTED_SERIALIZATION_FORMATS}.",
            INVALID_PARAMETER_VALUE,
        )
    module = _require("cloudpickle") if fmt == SERIALIZATION_FORMAT_CLOUDPICKLE else __import__("pickle")
    with open(path, "rb") as f:
        return module.load(f)


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """The scikit-learn model at ``model_uri`` (a path, ``runs:/``, ``models:/m-<id>``)."""
    from ..models._uri import model_dir

    local = model_dir(model_uri)
    model = Model.load(local)
    conf = model.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise MlflowException(
            f'Model does not have the "{FLAVOR_NAME}" flavor', RESOURCE_DOES_NOT_EXIST
        )
    return _load_file(
        os.path.join(local, conf["pickled_model"]),
        conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE),
        conf.get("skops_trusted_types"),
    )


class _SklearnModelWrapper:
    """What ``pyfunc.load_model`` calls ``predict`` on (MLflow's ``_SklearnModelWrapper``)."""

    def __init__(self, sk_model: Any, predict_fn: str = "predict") -> None:
        self.sklearn_model = sk_model
        self._predict_fn = predict_fn

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return getattr(self.sklearn_model, self._predict_fn)(data)

    def get_raw_model(self) -> Any:
        return self.sklearn_model


def _load_pyfunc(path: str, model_config: Any = None) -> _SklearnModelWrapper:
    """The pyfunc loader: ``path`` is the model directory or its data file."""
    model_dir = path if os.path.isdir(path) else os.path.dirname(path)
    model = Model.load(model_dir)
    conf = model.flavors[FLAVOR_NAME]
    pyfunc_conf = model.flavors.get("python_function", {})
    sk_model = _load_file(
        os.path.join(model_dir, conf["pickled_model"]),
        conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE),
        conf.get("skops_trusted_types"),
    )
    return _SklearnModelWrapper(sk_model, pyfunc_conf.get("predict_fn", "predict"))
