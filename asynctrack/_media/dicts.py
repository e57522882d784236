"""log_dict/load_dict formats: YAML for .yml/.yaml, JSON otherwise (MLflow's rule)."""

from __future__ import annotations

import json
import os
from typing import Any

from .._extras import require

YAML_EXTENSIONS = (".yml", ".yaml")


def is_yaml(artifact_file: str) -> bool:
    return os.path.splitext(artifact_file)[1] in YAML_EXTENSIONS


def dump(dictionary: Any, artifact_file: str, path: str) -> None:
    """Write ``dictionary`` to ``path`` the way MLflow's log_dict does (indent 2)."""
    if is_yaml(artifact_file):
        yaml = require("yaml", "yaml", "log_dict to a YAML file", "PyYAML")
        with open(path, "w") as f:
            yaml.dump(dictionary, f, indent=2, default_flow_style=False)
    else:
        with open(path, "w") as f:
            json.dump(dictionary, f, indent=2, default=str)
