"""A fake NVML (the ``pynvml`` module of nvidia-ml-py) for the GPU path of the system-metrics
sampler: two GPUs with fixed readings, GPU 0's utilisation cycling 10, 20, 30, 40 and GPU 1
without power readings (as some boards). Loaded from this file's text as a fresh module
(``load``) in asynctrack's tests and in the MLflow oracle's interpreter alike."""

from types import SimpleNamespace


class NVMLError(Exception):
    pass


FAIL_INIT = False
GPUS = [
    {"used": 2_000_000_000, "total": 8_000_000_000, "util": [10, 20, 30, 40], "power": 50_000,
     "limit": 200_000},
    {"used": 1_000_000_000, "total": 3_000_000_000, "util": [55], "power": None,
     "limit": 300_000},
]
_util_calls = {}


def nvmlInit():
    if FAIL_INIT:
        raise NVMLError("Driver Not Loaded")


def nvmlDeviceGetCount():
    return len(GPUS)


def nvmlDeviceGetHandleByIndex(index):
    return index


def nvmlDeviceGetMemoryInfo(handle):
    gpu = GPUS[handle]
    return SimpleNamespace(used=gpu["used"], total=gpu["total"], free=gpu["total"] - gpu["used"])


def nvmlDeviceGetUtilizationRates(handle):
    seq = GPUS[handle]["util"]
    n = _util_calls.get(handle, 0)
    _util_calls[handle] = n + 1
    return SimpleNamespace(gpu=seq[n % len(seq)], memory=0)


def nvmlDeviceGetPowerUsage(handle):
    if GPUS[handle]["power"] is None:
        raise NVMLError("Not Supported")
    return GPUS[handle]["power"]


def nvmlDeviceGetEnforcedPowerLimit(handle):
    return GPUS[handle]["limit"]
