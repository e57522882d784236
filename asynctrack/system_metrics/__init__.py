"""System metrics (MLflow 3.18's ``mlflow.system_metrics``): a sampler thread per run logs CPU,
memory, disk, network and NVIDIA GPU readings as ``system/...`` metrics.

Enabled per run by ``start_run(log_system_metrics=True)``, or for every run by
``enable_system_metrics_logging()`` / MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING. The setters write
MLflow's environment variables, as MLflow's do, so child processes inherit them. psutil and
nvidia-ml-py (the ``system-metrics`` extra) are imported only when a sampler starts.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from typing import TYPE_CHECKING

from ..exceptions import MlflowException
from . import _env

if TYPE_CHECKING:
    from ..client import MlflowClient
    from ._monitor import SystemMetricsMonitor

_logger = logging.getLogger("asynctrack")

__all__ = [
    "disable_system_metrics_logging",
    "enable_system_metrics_logging",
    "set_system_metrics_node_id",
    "set_system_metrics_samples_before_logging",
    "set_system_metrics_sampling_interval",
]


def disable_system_metrics_logging() -> None:
    """Disable system metrics for runs that do not ask (``log_system_metrics=True`` still does)."""
    os.environ[_env.ENABLE] = "False"


def enable_system_metrics_logging() -> None:
    """Enable system metrics for runs that do not opt out (``log_system_metrics=False``)."""
    os.environ[_env.ENABLE] = "True"


def _set_or_unset(name: str, value) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = str(value)


def set_system_metrics_sampling_interval(interval: float | None) -> None:
    """Seconds between samples (default 10); None goes back to the default."""
    _set_or_unset(_env.SAMPLING_INTERVAL, interval)


def set_system_metrics_samples_before_logging(samples: int | None) -> None:
    """Samples averaged into each logged step (default 1); None goes back to the default."""
    _set_or_unset(_env.SAMPLES_BEFORE_LOGGING, samples)


def set_system_metrics_node_id(node_id: str | None) -> None:
    """The machine's name in multi-node training: metrics become ``system/<node_id>/...``."""
    _set_or_unset(_env.NODE_ID, node_id)


# -- the samplers of active runs (start_run starts one, end_run stops it) --------------------------
_monitors: dict[str, SystemMetricsMonitor] = {}
_lock = threading.Lock()

_PSUTIL_MISSING = (
    "Failed to start system metrics monitoring as package `psutil` is not installed. "
    "Please run `pip install psutil` to resolve the issue, otherwise you can disable "
    "system metrics logging by passing `log_system_metrics=False` to "
    "`mlflow.start_run()` or calling `mlflow.disable_system_metrics_logging`."
)


def start_for_run(
    run_id: str, client: MlflowClient, log_system_metrics: bool | None, resumed: bool
) -> None:
    """start_run's part: start the run's sampler when asked to (or enabled globally).

    As in MLflow: a missing psutil raises (the run exists by then); any other failure to start
    is logged and the run goes on without system metrics."""
    if log_system_metrics is None:
        log_system_metrics = _env.enabled()
    if not log_system_metrics:
        return
    if importlib.util.find_spec("psutil") is None:
        raise MlflowException(_PSUTIL_MISSING)
    try:
        from ._monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(run_id, client, resume_logging=resumed)
        with _lock:
            _monitors[run_id] = monitor
        monitor.start()
    except Exception as e:  # noqa: BLE001 - the run goes on without system metrics
        _logger.error(f"Failed to start system metrics monitoring: {e}.")


def stop_for_run(run_id: str) -> None:
    """end_run's part: stop the run's sampler, if it has one, before the run's end is written."""
    with _lock:
        monitor = _monitors.pop(run_id, None)
    if monitor is not None:
        try:
            monitor.finish()
        except Exception as e:  # noqa: BLE001 - ending the run must not fail for this
            _logger.error(f"Error terminating system metrics monitoring process: {e}.")


def _forget_after_fork() -> None:
    """A forked child has none of the parent's sampler threads: nothing to stop there."""
    global _lock
    _monitors.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
