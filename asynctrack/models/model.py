"""The MLflow model format on disk, as MLflow 3.18 writes it: the ``MLmodel`` YAML file, the
input example files and the environment files (``conda.yaml``, ``python_env.yaml``,
``requirements.txt``).

``mlflow_version`` is written as ``3.18.0``: the file is MLflow 3.18's format, and MLflow
compares that field with its own version when it loads a model (a model that claims another
version makes it warn of a mismatch). The ``python_function`` loader module is ``mlflow.sklearn``
for the same reason: real MLflow can load the model; asynctrack maps ``mlflow.X`` to its own
``asynctrack.X``.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import re
import uuid
from typing import Any

from .signature import ModelSignature

MLMODEL_FILE_NAME = "MLmodel"
MLFLOW_FORMAT_VERSION = "3.18.0"
CONDA_ENV_FILE = "conda.yaml"
PYTHON_ENV_FILE = "python_env.yaml"
REQUIREMENTS_FILE = "requirements.txt"
EXAMPLE_FILE = "input_example.json"
SERVING_EXAMPLE_FILE = "serving_input_example.json"


def _yaml():
    from .._extras import require

    return require("yaml", "sklearn", "Saving or loading an MLflow model", "PyYAML")


class Model:
    """An ``MLmodel`` file's content (MLflow's ``mlflow.models.Model``)."""

    def __init__(
        self,
        artifact_path: str | None = None,
        run_id: str | None = None,
        model_uuid: str | None = None,
        model_id: str | None = None,
        utc_time_created: str | None = None,
        flavors: dict[str, Any] | None = None,
        signature: ModelSignature | None = None,
        saved_input_example_info: dict[str, Any] | None = None,
        mlflow_version: str | None = MLFLOW_FORMAT_VERSION,
        metadata: dict[str, Any] | None = None,
        model_size_bytes: int | None = None,
        **extra: Any,
    ) -> None:
        self.artifact_path = artifact_path
        self.run_id = run_id
        self.model_uuid = model_uuid or uuid.uuid4().hex
        self.model_id = model_id
        self.utc_time_created = utc_time_created or str(
            datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        )
        self.flavors = flavors or {}
        self.signature = signature
        self.saved_input_example_info = saved_input_example_info
        self.mlflow_version = mlflow_version
        self.metadata = metadata
        self.model_size_bytes = model_size_bytes
        self.prompts = extra.pop("prompts", None)
        self._extra = extra  # fields another writer put there, kept on a rewrite

    def add_flavor(self, name: str, **params: Any) -> Model:
        self.flavors[name] = params
        return self

    def to_dict(self) -> dict[str, Any]:
        """The mapping MLflow 3.18's ``Model.to_dict`` gives (its null fields included)."""
        res: dict[str, Any] = dict(self._extra)
        res.update(
            artifact_path=self.artifact_path,
            run_id=self.run_id,
            model_uuid=self.model_uuid,
            model_id=self.model_id,
            utc_time_created=self.utc_time_created,
            flavors=self.flavors,
            mlflow_version=self.mlflow_version,
            prompts=self.prompts,
        )
        if self.signature is not None:
            res["signature"] = self.signature.to_dict()
            res["is_signature_from_type_hint"] = False
            res["type_hint_from_example"] = False
        if self.saved_input_example_info is not None:
            res["saved_input_example_info"] = self.saved_input_example_info
        if self.mlflow_version is None:
            res.pop("mlflow_version")
        if self.metadata is not None:
            res["metadata"] = self.metadata
        if self.model_size_bytes is not None:
            res["model_size_bytes"] = self.model_size_bytes
        if self.artifact_path is None:
            res.pop("artifact_path")
        if self.run_id is None:
            res.pop("run_id")
        return res

    def save(self, path: str) -> None:
        with open(path, "w") as out:
            _yaml().safe_dump(self.to_dict(), stream=out, default_flow_style=False)

    @classmethod
    def load(cls, path: str) -> Model:
        """From an ``MLmodel`` file, a model directory holding one, or a model URI
        (``runs:/``, ``models:/m-<id>``), as MLflow's ``Model.load``."""
        path = os.fspath(path)
        if "://" in path or path.startswith(("runs:", "models:")):
            from ._uri import model_dir

            path = model_dir(path)
        if os.path.isdir(path):
            path = os.path.join(path, MLMODEL_FILE_NAME)
        with open(path) as f:
            d = _yaml().safe_load(f)
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Model:
        d = dict(d)
        sig = d.pop("signature", None)
        d.pop("is_signature_from_type_hint", None)
        d.pop("type_hint_from_example", None)
        return cls(signature=ModelSignature.from_dict(sig) if sig else None, **d)

    def get_input_schema(self) -> list[dict[str, Any]] | None:
        return self.signature.inputs if self.signature else None


def save_example(model: Model, example: Any, path: str) -> Any:
    """Write ``input_example.json`` and ``serving_input_example.json`` as MLflow does, record
    them in ``model.saved_input_example_info``; returns the example as the model takes it
    (a DataFrame, or an array), or None."""
    if example is None:
        return None
    import numpy as np
    import pandas as pd

    if isinstance(example, dict) or (isinstance(example, list) and example and isinstance(example[0], dict)):
        example = pd.DataFrame(example if isinstance(example, list) else [example])
    elif isinstance(example, pd.Series):
        example = example.to_frame()
    elif isinstance(example, list):
        example = np.asarray(example)
    if isinstance(example, pd.DataFrame):
        split = json.loads(example.to_json(orient="split", index=False))
        content = {"columns": split["columns"], "data": split["data"]}
        serving = {"dataframe_split": content}
        info = {"artifact_path": EXAMPLE_FILE, "type": "dataframe", "pandas_orient": "split"}
    elif isinstance(example, np.ndarray):
        content = example.tolist()
        serving = {"inputs": content}
        info = {"artifact_path": EXAMPLE_FILE, "type": "ndarray"}
    else:
        raise TypeError(f"Unsupported input example type {type(example).__name__}")
    with open(os.path.join(path, EXAMPLE_FILE), "w") as f:
        json.dump(content, f)
    with open(os.path.join(path, SERVING_EXAMPLE_FILE), "w") as f:
        json.dump(serving, f, indent=2)
    info["serving_input_path"] = SERVING_EXAMPLE_FILE
    model.saved_input_example_info = info
    return example


def load_input_example(path: str) -> Any:
    """The input example saved in a model directory (a DataFrame or an array), or None."""
    model = Model.load(path)
    info = model.saved_input_example_info
    if not info:
        return None
    with open(os.path.join(path, info["artifact_path"])) as f:
        content = json.load(f)
    if info["type"] == "dataframe":
        import pandas as pd

        return pd.DataFrame(content["data"], columns=content["columns"])
    import numpy as np

    return np.asarray(content)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def default_requirements(packages: list[str]) -> list[str]:
    """The installed versions of the packages the model's loading imports, sorted."""
    reqs = set()
    for pkg in packages:
        version = _version(pkg)
        reqs.add(f"{pkg}=={version}" if version else pkg)
    return sorted(reqs)


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _requirement_list(reqs: list[str] | str) -> list[str]:
    """A list as it is; a string names a requirements file, read without comments or blank
    lines (MLflow's ``_parse_pip_requirements``)."""
    if isinstance(reqs, (str, os.PathLike)):
        with open(reqs) as f:
            lines = [line.split("#", 1)[0].strip() for line in f]
        return [line for line in lines if line]
    return [str(r) for r in reqs]


def process_requirements(
    default: list[str], pip_requirements: list[str] | None, extra: list[str] | None
) -> list[str]:
    """MLflow's ``_process_pip_requirements``: the caller's list, or the default plus the extra
    ones; ``mlflow==3.18.0`` first unless one names mlflow already (the reader of this
    format); duplicates dropped, first kept."""
    if pip_requirements is not None:
        reqs = _requirement_list(pip_requirements)
    else:
        reqs = list(default) + _requirement_list(extra or [])
    names = [(m.group(1).lower() if (m := _REQ_NAME.match(r)) else r) for r in reqs]
    if "mlflow" not in names:
        reqs.insert(0, f"mlflow=={MLFLOW_FORMAT_VERSION}")
    seen: set[str] = set()
    out = []
    for r in reqs:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


def write_environment(path: str, requirements: list[str]) -> None:
    """``conda.yaml``, ``python_env.yaml`` and ``requirements.txt`` as MLflow 3.18 writes them."""
    yaml = _yaml()
    python = platform.python_version()
    pip = _version("pip")
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", f"pip<={pip}" if pip else "pip", {"pip": requirements}],
        "name": "mlflow-env",
    }
    with open(os.path.join(path, CONDA_ENV_FILE), "w") as f:
        yaml.safe_dump(conda, stream=f, default_flow_style=False)
    with open(os.path.join(path, REQUIREMENTS_FILE), "w") as f:
        f.write("\n".join(requirements))
    build = []
    for pkg in ("pip", "setuptools", "wheel"):
        version = _version(pkg)
        build.append(f"{pkg}=={version}" if version else pkg)
    env = {"python": python, "build_dependencies": build, "dependencies": [f"-r {REQUIREMENTS_FILE}"]}
    with open(os.path.join(path, PYTHON_ENV_FILE), "w") as f:
        yaml.safe_dump(env, f, sort_keys=False, default_flow_style=False)


def total_size(path: str) -> int:
    """Bytes of all files under ``path`` (MLflow's ``model_size_bytes``)."""
    size = 0
    for root, _, files in os.walk(path):
        for name in files:
            size += os.path.getsize(os.path.join(root, name))
    return size
