"""What one sample reads: CPU, memory, disk and network through psutil, as MLflow 3.18's
monitors (mlflow/system_metrics/metrics/*.py), with their metric names and aggregation.

Imported only when system metrics are enabled: psutil is the ``system-metrics`` extra.
"""

from __future__ import annotations

import os
from collections import defaultdict

import psutil


class Source:
    """A group of metrics sampled together: ``collect`` appends one sample per metric name,
    ``aggregate`` turns the samples since the last ``clear`` into the values logged."""

    def __init__(self) -> None:
        self._metrics: defaultdict[str, list[float]] = defaultdict(list)

    def collect(self) -> None:
        raise NotImplementedError

    def aggregate(self) -> dict[str, float]:
        # MLflow averages the samples and rounds to one decimal.
        return {k: round(sum(v) / len(v), 1) for k, v in self._metrics.items()}

    def clear(self) -> None:
        self._metrics.clear()


class CPUSource(Source):
    """CPU utilisation and system memory (MLflow's CPUMonitor)."""

    def collect(self) -> None:
        self._metrics["cpu_utilization_percentage"].append(psutil.cpu_percent())
        memory = psutil.virtual_memory()
        self._metrics["system_memory_usage_megabytes"].append(memory.used / 1e6)
        self._metrics["system_memory_usage_percentage"].append(memory.used / memory.total * 100)


class DiskSource(Source):
    """Usage of the root file system (MLflow's DiskMonitor)."""

    def collect(self) -> None:
        usage = psutil.disk_usage(os.sep)
        self._metrics["disk_usage_percentage"].append(usage.percent)
        self._metrics["disk_usage_megabytes"].append(usage.used / 1e6)
        self._metrics["disk_available_megabytes"].append(usage.free / 1e6)


class NetworkSource(Source):
    """Megabytes received and sent since monitoring started (MLflow's NetworkMonitor): the
    latest reading, not an average, and not rounded."""

    def __init__(self) -> None:
        super().__init__()
        usage = psutil.net_io_counters()
        self._initial_receive = usage.bytes_recv / 1e6
        self._initial_transmit = usage.bytes_sent / 1e6
        self._latest: dict[str, float] = {}

    def collect(self) -> None:
        usage = psutil.net_io_counters()
        self._latest["network_receive_megabytes"] = usage.bytes_recv / 1e6 - self._initial_receive
        self._latest["network_transmit_megabytes"] = usage.bytes_sent / 1e6 - self._initial_transmit

    def aggregate(self) -> dict[str, float]:
        return dict(self._latest)

    def clear(self) -> None:
        self._latest.clear()


def default_sources() -> list[Source]:
    """The sources every monitor has, in MLflow's order (CPU, disk, network)."""
    return [CPUSource(), DiskSource(), NetworkSource()]
