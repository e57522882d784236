"""MLflow's system-metrics environment variables, read per call and converted as MLflow's
``_EnvironmentVariable`` converts them (the same errors for bad values)."""

from __future__ import annotations

import os

ENABLE = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"
SAMPLING_INTERVAL = "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"
SAMPLES_BEFORE_LOGGING = "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING"
NODE_ID = "MLFLOW_SYSTEM_METRICS_NODE_ID"


def enabled() -> bool:
    """MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING: false when unset; only true/false/1/0."""
    val = os.environ.get(ENABLE)
    if val is None:
        return False
    lowered = val.lower()
    if lowered not in ["true", "false", "1", "0"]:
        raise ValueError(
            f"{ENABLE} value must be one of ['true', 'false', '1', '0'] (case-insensitive), "
            f"but got {val}"
        )
    return lowered in ["true", "1"]


def _typed(name: str, type_: type):
    val = os.environ.get(name)
    if val is None:
        return None
    try:
        return type_(val)
    except Exception as e:  # noqa: BLE001 - MLflow's message for any conversion failure
        raise ValueError(f"Failed to convert {val!r} for {name}: {e}") from None


def sampling_interval() -> float | None:
    return _typed(SAMPLING_INTERVAL, float)


def samples_before_logging() -> int | None:
    return _typed(SAMPLES_BEFORE_LOGGING, int)


def node_id() -> str | None:
    return _typed(NODE_ID, str)
