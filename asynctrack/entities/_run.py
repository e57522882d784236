"""Run: a run's info, data, inputs and outputs together."""

from __future__ import annotations

from typing import Any

from asynctrack.entities._mlflow_object import _MlflowObject
from asynctrack.entities._run_data import RunData
from asynctrack.entities._run_info import RunInfo
from asynctrack.entities._run_inputs import RunInputs, RunOutputs
from asynctrack.exceptions import MlflowException


class Run(_MlflowObject):
    """Run object, as `mlflow.entities.Run`."""

    def __init__(
        self,
        run_info: RunInfo,
        run_data: RunData,
        run_inputs: RunInputs | None = None,
        run_outputs: RunOutputs | None = None,
    ) -> None:
        if run_info is None:
            raise MlflowException("run_info cannot be None")
        self._info = run_info
        self._data = run_data
        self._inputs = run_inputs
        self._outputs = run_outputs

    @classmethod
    def _from_store(cls, run_info: RunInfo, run_data: RunData) -> Run:
        """A stored run as MLflow's store returns it (no inputs, no outputs), without the
        constructor's call and check (a search builds a thousand at once)."""
        run = object.__new__(cls)
        run._info = run_info
        run._data = run_data
        run._inputs = RunInputs()
        run._outputs = None
        return run

    @property
    def info(self) -> RunInfo:
        """The run metadata, such as the run id, start time, and status."""
        return self._info

    @property
    def data(self) -> RunData:
        """The run data: metrics, parameters, and tags."""
        return self._data

    @property
    def inputs(self) -> RunInputs | None:
        """The run inputs, including dataset inputs."""
        return self._inputs

    @property
    def outputs(self) -> RunOutputs | None:
        """The run outputs, including model outputs."""
        return self._outputs

    def to_dictionary(self) -> dict[Any, Any]:
        run_dict: dict[Any, Any] = {"info": dict(self.info)}
        if self.data:
            run_dict["data"] = self.data.to_dictionary()
        if self.inputs:
            run_dict["inputs"] = self.inputs.to_dictionary()
        if self.outputs:
            run_dict["outputs"] = self.outputs.to_dictionary()
        return run_dict
