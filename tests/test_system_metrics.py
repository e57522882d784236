"""System metrics (issue #17): the sampler thread start_run starts and end_run stops, MLflow
3.18's metric names, steps, averaging, node-id prefix, variables and setters, and the GPU path
against a fake NVML (tests/_fake_pynvml.py, put in sys.modules as ``pynvml``), compared with
MLflow's own sampler where the oracle has psutil."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from tests.oracle import needs_mlflow, oracle_python, run as oracle_run  # noqa: F401 (skipif)

FAKE_NVML = Path(__file__).with_name("_fake_pynvml.py")
ROOT = Path(__file__).resolve().parent.parent

BASE = {
    "system/cpu_utilization_percentage",
    "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage",
    "system/disk_usage_percentage",
    "system/disk_usage_megabytes",
    "system/disk_available_megabytes",
    "system/network_receive_megabytes",
    "system/network_transmit_megabytes",
}
GPU = {  # the fake's readings, as MLflow's GPUMonitor logs them (GPU 1 has no power readings)
    "system/gpu_0_memory_usage_percentage": 25.0,
    "system/gpu_0_memory_usage_megabytes": 2000.0,
    "system/gpu_0_power_usage_watts": 50.0,
    "system/gpu_0_power_usage_percentage": 25.0,
    "system/gpu_1_memory_usage_percentage": 33.3,
    "system/gpu_1_memory_usage_megabytes": 1000.0,
    "system/gpu_1_utilization_percentage": 55.0,
}
CPU = "system/cpu_utilization_percentage"
UTIL0 = "system/gpu_0_utilization_percentage"
VARS = (
    "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING",
    "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL",
    "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING",
    "MLFLOW_SYSTEM_METRICS_NODE_ID",
)


def fake_nvml(**overrides) -> types.ModuleType:
    """A fresh fake ``pynvml`` (its own utilisation counters)."""
    module = types.ModuleType("pynvml")
    exec(compile(FAKE_NVML.read_text(), str(FAKE_NVML), "exec"), module.__dict__)
    module.__dict__.update(overrides)
    return module


def samplers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "SystemMetricsMonitor" and t.is_alive()]


def history(mlflow, run_id: str, key: str) -> list:
    return sorted(mlflow.MlflowClient().get_metric_history(run_id, key), key=lambda m: m.step)


def wait_steps(mlflow, run_id: str, key: str, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(history(mlflow, run_id, key)) < n:
        assert time.monotonic() < deadline, f"{key}: fewer than {n} steps in {timeout} s"
        time.sleep(0.05)


def system_keys(mlflow, run_id: str) -> set[str]:
    return {k for k in mlflow.get_run(run_id).data.metrics if k.startswith("system/")}


@pytest.fixture
def sm(fluent, monkeypatch):
    """The fluent API with a 0.05 s sampling interval and no GPU (pynvml unimportable)."""
    monkeypatch.setitem(sys.modules, "pynvml", None)
    fluent.set_system_metrics_sampling_interval(0.05)
    yield fluent
    assert samplers() == []


def test_names_steps_and_end_run_stops_the_sampler(sm):
    with sm.start_run(log_system_metrics=True) as run:
        assert len(samplers()) == 1
        wait_steps(sm, run.info.run_id, CPU, 3)
    assert samplers() == []
    run_id = run.info.run_id
    assert system_keys(sm, run_id) == BASE
    histories = {key: history(sm, run_id, key) for key in BASE}
    n = len(histories[CPU])
    assert n >= 3
    for key, points in histories.items():
        assert [m.step for m in points] == list(range(n)), key
        # One step is one batch: every name of a step has the same timestamp.
        assert [m.timestamp for m in points] == [m.timestamp for m in histories[CPU]], key
    for key in BASE - {"system/network_receive_megabytes", "system/network_transmit_megabytes"}:
        assert all(m.value == round(m.value, 1) for m in histories[key]), key  # averaged, rounded
    for key in (CPU, "system/system_memory_usage_percentage", "system/disk_usage_percentage"):
        assert all(0 <= m.value <= 100 for m in histories[key]), key
    assert all(m.value >= 0 for m in histories["system/system_memory_usage_megabytes"])
    # Stopped for good: nothing is logged after end_run.
    time.sleep(0.2)
    assert len(history(sm, run_id, CPU)) == n
    assert sm.get_run(run_id).info.status == "FINISHED"


def test_resumed_run_continues_the_steps(sm):
    with sm.start_run(log_system_metrics=True) as run:
        sm.log_metric("loss", 1.0, step=100)  # not a system metric: does not move the steps
        wait_steps(sm, run.info.run_id, CPU, 2)
    run_id = run.info.run_id
    first = len(history(sm, run_id, CPU))
    with sm.start_run(run_id=run_id, log_system_metrics=True):
        wait_steps(sm, run_id, CPU, first + 2)
    for key in BASE:
        steps = [m.step for m in history(sm, run_id, key)]
        assert steps == list(range(len(steps))), key
        assert len(steps) >= first + 2
    # A new run starts again at 0.
    with sm.start_run(log_system_metrics=True) as other:
        wait_steps(sm, other.info.run_id, CPU, 1)
    assert history(sm, other.info.run_id, CPU)[0].step == 0


def test_node_id_prefix_from_setter_and_variable(sm):
    sm.set_system_metrics_node_id("node_0")
    assert os.environ["MLFLOW_SYSTEM_METRICS_NODE_ID"] == "node_0"
    with sm.start_run(log_system_metrics=True) as run:
        wait_steps(sm, run.info.run_id, "system/node_0/cpu_utilization_percentage", 1)
    assert system_keys(sm, run.info.run_id) == {k.replace("system/", "system/node_0/") for k in BASE}
    sm.set_system_metrics_node_id(None)
    assert "MLFLOW_SYSTEM_METRICS_NODE_ID" not in os.environ
    os.environ["MLFLOW_SYSTEM_METRICS_NODE_ID"] = "node_1"
    with sm.start_run(log_system_metrics=True) as run:
        wait_steps(sm, run.info.run_id, "system/node_1/cpu_utilization_percentage", 1)
    assert system_keys(sm, run.info.run_id) == {k.replace("system/", "system/node_1/") for k in BASE}


def test_samples_before_logging_averages_the_samples(sm, monkeypatch):
    # GPU 0's utilisation cycles 10, 20, 30, 40: two samples a step log 15, 35, 15, ...
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    sm.set_system_metrics_samples_before_logging(2)
    assert os.environ["MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING"] == "2"
    with sm.start_run(log_system_metrics=True) as run:
        wait_steps(sm, run.info.run_id, UTIL0, 3)
    values = [m.value for m in history(sm, run.info.run_id, UTIL0)]
    assert values == [15.0, 35.0] * (len(values) // 2) + [15.0] * (len(values) % 2)
    # One sample a step: every reading of the cycle, in order.
    sm.set_system_metrics_samples_before_logging(None)
    assert "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING" not in os.environ
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    with sm.start_run(log_system_metrics=True) as run:
        wait_steps(sm, run.info.run_id, UTIL0, 5)
    values = [m.value for m in history(sm, run.info.run_id, UTIL0)]
    assert values[:5] == [10.0, 20.0, 30.0, 40.0, 10.0]


def test_gpu_metrics_from_nvml(sm, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    with caplog.at_level(logging.WARNING, logger="asynctrack"):
        with sm.start_run(log_system_metrics=True) as run:
            wait_steps(sm, run.info.run_id, UTIL0, 2)
    run_id = run.info.run_id
    assert system_keys(sm, run_id) == BASE | set(GPU) | {UTIL0}
    for key, value in GPU.items():
        points = history(sm, run_id, key)
        assert [m.value for m in points] == [value] * len(points), key
        assert [m.step for m in points] == list(range(len(points))), key
    assert "Encountered error Not Supported when trying to collect GPU power usage metrics." in [
        r.getMessage() for r in caplog.records
    ]


def test_nvml_that_fails_to_start_leaves_out_the_gpu_metrics(sm, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(FAIL_INIT=True))
    with sm.start_run(log_system_metrics=True) as run:
        wait_steps(sm, run.info.run_id, CPU, 1)
    assert system_keys(sm, run.info.run_id) == BASE


def test_disabled_by_default_and_the_switches(sm):
    def sampled(**kwargs) -> bool:
        with sm.start_run(**kwargs):
            return len(samplers()) == 1

    assert sampled() is False
    sm.enable_system_metrics_logging()
    assert os.environ["MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"] == "True"
    assert sampled() is True
    assert sampled(log_system_metrics=False) is False
    sm.disable_system_metrics_logging()
    assert os.environ["MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"] == "False"
    assert sampled() is False
    assert sampled(log_system_metrics=True) is True
    for value, expected in (("1", True), ("TRUE", True), ("0", False), ("false", False)):
        os.environ["MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"] = value
        assert sampled() is expected, value
    # A run without a sampler has no system metrics at all.
    del os.environ["MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"]
    with sm.start_run() as run:
        time.sleep(0.2)
    assert system_keys(sm, run.info.run_id) == set()


def test_bad_variables(sm, caplog):
    os.environ["MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"] = "yes"
    with pytest.raises(ValueError) as err:
        sm.start_run()
    assert str(err.value) == (
        "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING value must be one of ['true', 'false', '1', '0'] "
        "(case-insensitive), but got yes"
    )
    assert sm.active_run() is None  # as in MLflow: the run was made, but is not active
    del os.environ["MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"]
    os.environ["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = "abc"
    with caplog.at_level(logging.ERROR, logger="asynctrack"):
        with sm.start_run(log_system_metrics=True) as run:
            assert samplers() == []  # the run goes on without a sampler
    assert run.info.status == "RUNNING"
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "Failed to start system metrics monitoring: Failed to convert 'abc' for "
        "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL: could not convert string to float: 'abc'."
    ]


def test_missing_psutil_raises_mlflows_error(sm, monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)
    with pytest.raises(sm.MlflowException) as err:
        sm.start_run(log_system_metrics=True)
    assert err.value.message == (
        "Failed to start system metrics monitoring as package `psutil` is not installed. "
        "Please run `pip install psutil` to resolve the issue, otherwise you can disable "
        "system metrics logging by passing `log_system_metrics=False` to "
        "`mlflow.start_run()` or calling `mlflow.disable_system_metrics_logging`."
    )
    assert err.value.error_code == "INTERNAL_ERROR"
    assert sm.active_run() is None and samplers() == []
    with sm.start_run():  # without system metrics, psutil is not needed
        pass


def test_run_ended_elsewhere_stops_the_sampler(sm):
    with sm.start_run(log_system_metrics=True) as run:
        wait_steps(sm, run.info.run_id, CPU, 1)
        sm.MlflowClient().set_terminated(run.info.run_id)
        deadline = time.monotonic() + 10
        while samplers():
            assert time.monotonic() < deadline, "the sampler outlived its run"
            time.sleep(0.02)


def test_nothing_imported_until_a_sampler_starts(tmp_path):
    code = (
        "import sys, asynctrack as mlflow\n"
        f"mlflow.set_tracking_uri('sqlite:///{tmp_path}/m.db')\n"
        "with mlflow.start_run(): pass\n"
        "print('psutil' in sys.modules, 'pynvml' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


# -- against MLflow 3.18 -------------------------------------------------------------------------

_ORACLE_SETTERS = """
import os, mlflow
names = ARGS["vars"]
snap = lambda: [os.environ.get(n) for n in names]
out = []
for call, arg in ARGS["calls"]:
    getattr(mlflow, call)(*([] if arg == "-" else [arg]))
    out.append(snap())
_out(out)
"""

SETTER_CALLS = [
    ["enable_system_metrics_logging", "-"],
    ["disable_system_metrics_logging", "-"],
    ["set_system_metrics_sampling_interval", 0.5],
    ["set_system_metrics_sampling_interval", 2],
    ["set_system_metrics_samples_before_logging", 3],
    ["set_system_metrics_node_id", "node_7"],
    ["set_system_metrics_sampling_interval", None],
    ["set_system_metrics_samples_before_logging", None],
    ["set_system_metrics_node_id", None],
]


@needs_mlflow
def test_setters_write_mlflows_variables(sm):
    expected = oracle_run(_ORACLE_SETTERS, vars=list(VARS), calls=SETTER_CALLS)
    sm.set_system_metrics_sampling_interval(None)  # the fixture's
    ours = []
    for call, arg in SETTER_CALLS:
        getattr(sm, call)(*([] if arg == "-" else [arg]))
        ours.append([os.environ.get(n) for n in VARS])
    assert ours == expected


_ORACLE_SAMPLER = """
import os, sys, time, types
fake = types.ModuleType("pynvml")
exec(open(ARGS["fake"]).read(), fake.__dict__)
sys.modules["pynvml"] = fake
try:
    import psutil
except ImportError:
    _out({"skip": "psutil is not installed in the oracle venv"}); sys.exit(0)
import mlflow
os.environ["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = "0.05"
os.environ["MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING"] = "2"
mlflow.set_tracking_uri("sqlite:///" + ARGS["dir"] + "/mlflow.db")
client = mlflow.MlflowClient()
with mlflow.start_run(log_system_metrics=True) as run:
    deadline = time.time() + 60
    while len(client.get_metric_history(run.info.run_id, ARGS["util"])) < 2:
        assert time.time() < deadline
        time.sleep(0.05)
rid = run.info.run_id
keys = sorted(client.get_run(rid).data.metrics)
gpu = {k: [m.value for m in sorted(client.get_metric_history(rid, k), key=lambda m: m.step)][:2]
       for k in keys if k.startswith("system/gpu_")}
_out({"keys": keys, "gpu": gpu})
"""


@needs_mlflow
@pytest.mark.sqlite_only("one comparison of the sampler with MLflow's is enough")
def test_sampler_same_names_and_gpu_values_as_mlflow(sm, monkeypatch, tmp_path):
    oracle_dir = tmp_path / "oracle"
    oracle_dir.mkdir()
    expected = oracle_run(_ORACLE_SAMPLER, cwd=oracle_dir, fake=str(FAKE_NVML),
                          dir=str(oracle_dir), util=UTIL0, timeout=180)
    if "skip" in expected:
        pytest.skip(expected["skip"])
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    sm.set_system_metrics_samples_before_logging(2)
    with sm.start_run(log_system_metrics=True) as run:
        wait_steps(sm, run.info.run_id, UTIL0, 2)
    rid = run.info.run_id
    keys = sorted(sm.get_run(rid).data.metrics)
    assert keys == expected["keys"]
    gpu = {k: [m.value for m in history(sm, rid, k)][:2] for k in keys if k.startswith("system/gpu_")}
    assert gpu == expected["gpu"]
    assert json.dumps(gpu[UTIL0]) == "[15.0, 35.0]"


def test_run_left_active_at_exit_stops_its_sampler(tmp_path):
    # No end_run: the exit hook ends the run, the sampler stops first, and its points are stored.
    code = (
        "import sys, time, asynctrack as mlflow\n"
        "sys.modules['pynvml'] = None\n"
        f"mlflow.set_tracking_uri('sqlite:///{tmp_path}/m.db')\n"
        "mlflow.set_system_metrics_sampling_interval(0.05)\n"
        "run = mlflow.start_run(log_system_metrics=True)\n"
        "time.sleep(0.5)\n"
        "print(run.info.run_id)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    from asynctrack import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    run = client.get_run(out.stdout.strip())
    assert run.info.status == "FINISHED"
    assert {k for k in run.data.metrics if k.startswith("system/")} == BASE
    steps = [m.step for m in client.get_metric_history(run.info.run_id, CPU)]
    assert sorted(steps) == list(range(len(steps))) and len(steps) >= 2
