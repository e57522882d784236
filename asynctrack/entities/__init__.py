"""The tracking entities of MLflow 3.18 (same constructors, properties, equality and reprs),
stdlib-only so that importing them stays cheap."""

from asynctrack.entities._dataset import Dataset, DatasetInput, InputTag
from asynctrack.entities._enums import LifecycleStage, RunStatus, SourceType, ViewType
from asynctrack.entities._experiment import Experiment
from asynctrack.entities._file_info import FileInfo
from asynctrack.entities._logged_model import LoggedModel, LoggedModelOutput, LoggedModelStatus
from asynctrack.entities._metric import Metric
from asynctrack.entities._param import Param
from asynctrack.entities._run import Run
from asynctrack.entities._run_data import RunData
from asynctrack.entities._run_info import RunInfo
from asynctrack.entities._run_inputs import RunInputs, RunOutputs
from asynctrack.entities._tags import ExperimentTag, RunTag

__all__ = [
    "Dataset",
    "DatasetInput",
    "InputTag",
    "Experiment",
    "ExperimentTag",
    "FileInfo",
    "LifecycleStage",
    "LoggedModel",
    "LoggedModelOutput",
    "LoggedModelStatus",
    "Metric",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunOutputs",
    "RunStatus",
    "RunTag",
    "SourceType",
    "ViewType",
]
