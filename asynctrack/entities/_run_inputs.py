"""RunInputs and RunOutputs: the dataset/model links of a run, kept minimal (no datasets API)."""

from __future__ import annotations

from typing import Any

from asynctrack.entities._mlflow_object import _MlflowObject


def _as_dict(item: Any) -> Any:
    to_dictionary = getattr(item, "to_dictionary", None)
    return to_dictionary() if callable(to_dictionary) else item


class RunInputs(_MlflowObject):
    """A run's inputs: dataset inputs and model inputs (lists)."""

    def __init__(
        self, dataset_inputs: list[Any] | None = None, model_inputs: list[Any] | None = None
    ) -> None:
        self._dataset_inputs: list[Any] = dataset_inputs if dataset_inputs is not None else []
        self._model_inputs: list[Any] = model_inputs or []

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.__dict__ == other.__dict__
        return False

    __hash__ = None  # type: ignore[assignment]

    @property
    def dataset_inputs(self) -> list[Any]:
        """Array of dataset inputs."""
        return self._dataset_inputs

    @property
    def model_inputs(self) -> list[Any]:
        """Array of model inputs."""
        return self._model_inputs

    def to_dictionary(self) -> dict[str, Any]:
        return {
            "model_inputs": self.model_inputs,
            "dataset_inputs": [_as_dict(d) for d in self.dataset_inputs],
        }


class RunOutputs(_MlflowObject):
    """A run's outputs: model outputs (list)."""

    def __init__(self, model_outputs: list[Any] | None = None) -> None:
        self._model_outputs: list[Any] = model_outputs if model_outputs is not None else []

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.__dict__ == other.__dict__
        return False

    __hash__ = None  # type: ignore[assignment]

    @property
    def model_outputs(self) -> list[Any]:
        """Array of model outputs."""
        return self._model_outputs

    def to_dictionary(self) -> dict[str, Any]:
        return {"model_outputs": [_as_dict(m) for m in self.model_outputs]}
