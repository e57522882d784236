"""The sampler thread of one run: MLflow 3.18's SystemMetricsMonitor, logging through
asynctrack's writer.

Every ``sampling_interval`` seconds it takes one sample of each source; after
``samples_before_logging`` samples it logs their aggregate as ``system/[<node_id>/]<name>`` at
the next step (0, 1, 2, ..., or on from the run's last system step when the run is resumed).
The points go to the run's client with ``synchronous=False``: the thread only queues them, and
the writer stores them with everything else, so neither the sampler nor the training loop ever
waits on the store.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ..entities import Metric
from ..exceptions import MlflowException

if TYPE_CHECKING:
    from ..client import MlflowClient
    from ._sources import Source

_logger = logging.getLogger("asynctrack")

PREFIX = "system/"


class SystemMetricsMonitor:
    """Samples the machine for one run until ``finish`` (or until the run is no longer
    RUNNING, as MLflow's does)."""

    def __init__(
        self,
        run_id: str,
        client: MlflowClient,
        sampling_interval: float = 10,
        samples_before_logging: int = 1,
        resume_logging: bool = False,
        node_id: str | None = None,
    ) -> None:
        from . import _env
        from ._gpu import gpu_source
        from ._sources import default_sources

        self.sources: list[Source] = default_sources()
        gpu = gpu_source()
        if gpu is not None:
            self.sources.append(gpu)
        # The variables win over the arguments, as in MLflow (0 or "" count as unset there).
        self.sampling_interval = _env.sampling_interval() or sampling_interval
        self.samples_before_logging = _env.samples_before_logging() or samples_before_logging
        self.node_id = _env.node_id() or node_id
        self._run_id = run_id
        self._client = client
        self._shutdown = threading.Event()
        self._thread: threading.Thread | None = None
        self._step = self._next_step() if resume_logging else 0

    def _next_step(self) -> int:
        """One past the largest step of the run's latest ``system/`` points (MLflow reads
        run.data, not the whole histories)."""
        try:
            run = self._client.get_run(self._run_id)
        except MlflowException:
            return 0
        steps = [m.step for m in run.data._metric_objs if m.key.startswith(PREFIX)]
        return max(steps) + 1 if steps else 0

    def start(self) -> None:
        """Start the sampler thread (a daemon: it never keeps the process alive)."""
        try:
            self._thread = threading.Thread(
                target=self.monitor, daemon=True, name="SystemMetricsMonitor"
            )
            self._thread.start()
            _logger.info("Started monitoring system metrics.")
        except Exception as e:  # noqa: BLE001 - the run goes on without system metrics
            _logger.warning(f"Failed to start monitoring system metrics: {e}")
            self._thread = None

    def _run_is_running(self) -> bool:
        # Read from the store without the client's read barrier (get_run flushes the writer
        # first): a status the writer still holds is seen at the next sample, and the training
        # loop's queued points are not forced out early by the sampler.
        run = self._client._store.get_run(self._run_id)
        return run.info.status == "RUNNING"

    def monitor(self) -> None:
        """The sampling loop (MLflow's): stops on ``finish``, when the run is no longer
        RUNNING, when it cannot be read, or when logging fails."""
        while not self._shutdown.is_set():
            for _ in range(self.samples_before_logging):
                self.collect_metrics()
                self._shutdown.wait(self.sampling_interval)
                try:
                    running = self._run_is_running()
                except Exception as e:  # noqa: BLE001 - as MLflow: warn and stop sampling
                    _logger.warning(f"Failed to get mlflow run: {e}.")
                    return
                if not running or self._shutdown.is_set():
                    return
            try:
                self.publish_metrics(self.aggregate_metrics())
            except Exception as e:  # noqa: BLE001 - as MLflow: warn and stop sampling
                _logger.warning(
                    f"Failed to log system metrics: {e}, this is expected if the experiment/run "
                    "is already terminated."
                )
                return

    def collect_metrics(self) -> None:
        for source in self.sources:
            source.collect()

    def aggregate_metrics(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for source in self.sources:
            metrics.update(source.aggregate())
        return metrics

    def publish_metrics(self, metrics: dict[str, float]) -> None:
        """Queue one step of aggregated metrics on the writer, and start the next step."""
        prefix = PREFIX + (self.node_id + "/" if self.node_id else "")
        timestamp = int(time.time() * 1000)
        points = [Metric(prefix + k, v, timestamp, self._step) for k, v in metrics.items()]
        self._client.log_batch(self._run_id, metrics=points, synchronous=False)
        self._step += 1
        for source in self.sources:
            source.clear()

    def finish(self) -> None:
        """Stop the thread and wait for it; what it logged is queued on the writer before this
        returns, so the run's end (a write queued after it) finds it stored."""
        if self._thread is None:
            return
        _logger.info("Stopping system metrics monitoring...")
        self._shutdown.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
        _logger.info("Successfully terminated system metrics monitoring!")
