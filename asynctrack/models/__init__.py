"""MLflow's model format (``mlflow.models``): ``Model`` (the ``MLmodel`` file), signatures and
input examples. Needs the ``sklearn`` extra (PyYAML, and numpy/pandas for signatures)."""

from .model import MLMODEL_FILE_NAME, Model
from .signature import ModelSignature, infer_signature

__all__ = ["MLMODEL_FILE_NAME", "Model", "ModelSignature", "infer_signature"]
