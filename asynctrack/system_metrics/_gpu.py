"""NVIDIA GPUs through NVML (nvidia-ml-py's ``pynvml``), as MLflow 3.18's GPUMonitor: per GPU
``gpu_<i>_memory_usage_percentage``, ``_memory_usage_megabytes``, ``_utilization_percentage``,
``_power_usage_watts`` and ``_power_usage_percentage``.

``pynvml`` is imported when a monitor starts, never at asynctrack's import.
"""

from __future__ import annotations

import logging

from ._sources import Source

_logger = logging.getLogger("asynctrack")


class GPUSource(Source):
    """Every GPU NVML sees; raises when nvidia-ml-py is missing or NVML finds no driver."""

    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError:
            raise ImportError(
                "`nvidia-ml-py` is not installed, to log GPU metrics please run "
                "`pip install nvidia-ml-py` to install it."
            ) from None
        try:
            pynvml.nvmlInit()  # fails where no GPU or driver is found
        except pynvml.NVMLError as e:
            raise RuntimeError(f"Failed to initialize NVML, skip logging GPU metrics: {e}") from e
        super().__init__()
        self._nvml = pynvml
        count = pynvml.nvmlDeviceGetCount()
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]

    def collect(self) -> None:
        nvml = self._nvml
        for i, handle in enumerate(self._handles):
            # Each group is read on its own, so that a GPU lacking one (power on some boards)
            # still reports the others; the messages are MLflow's.
            try:
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                self._metrics[f"gpu_{i}_memory_usage_percentage"].append(
                    round(memory.used / memory.total * 100, 1)
                )
                self._metrics[f"gpu_{i}_memory_usage_megabytes"].append(memory.used / 1e6)
            except nvml.NVMLError as e:
                _logger.warning(f"Encountered error {e} when trying to collect GPU memory metrics.")
            try:
                rates = nvml.nvmlDeviceGetUtilizationRates(handle)
                self._metrics[f"gpu_{i}_utilization_percentage"].append(rates.gpu)
            except nvml.NVMLError as e:
                _logger.warning(
                    f"Encountered error {e} when trying to collect GPU utilization metrics."
                )
            try:
                power = nvml.nvmlDeviceGetPowerUsage(handle)
                limit = nvml.nvmlDeviceGetEnforcedPowerLimit(handle)
                self._metrics[f"gpu_{i}_power_usage_watts"].append(power / 1000)
                self._metrics[f"gpu_{i}_power_usage_percentage"].append(power / limit * 100)
            except nvml.NVMLError as e:
                _logger.warning(
                    f"Encountered error {e} when trying to collect GPU power usage metrics."
                )


def gpu_source() -> Source | None:
    """The GPU source, or None (logged at debug level, as MLflow) where NVML cannot be used."""
    try:
        return GPUSource()
    except Exception:  # noqa: BLE001 - no GPU metrics is the answer to any failure here
        _logger.debug("Failed to initialize GPU monitor for NVIDIA GPU.", exc_info=True)
    _logger.info("Skip logging GPU metrics. Set logger level to DEBUG for more details.")
    return None
