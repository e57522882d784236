"""Optional dependencies, imported inside the calls that need them, with an error naming the
pyproject extra to install when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from .exceptions import MlflowException


class MissingExtraError(MlflowException, ImportError):
    """An optional dependency is not installed (also an ImportError, as MLflow raises)."""

    def __str__(self) -> str:
        return self.message


def require(module: str, extra: str, purpose: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise MissingExtraError saying ``pip install 'asynctrack[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} requires {package or module.split('.')[0]}, which is not installed. "
            f"Install it with: pip install 'asynctrack[{extra}]'"
        ) from exc
