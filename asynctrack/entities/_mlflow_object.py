"""The shared base of the entities: MLflow's property iteration, `repr` and `from_dictionary`.

MLflow builds `dict(entity)` and `repr(entity)` from the *sorted public properties defined on the
entity's own class*; reproducing that rule keeps `Run.to_dictionary()` and reprs byte-identical.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Any


class _MlflowObject:
    __slots__ = ()

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for prop in self._properties():
            yield prop, getattr(self, prop)

    @classmethod
    def _get_properties_helper(cls) -> list[str]:
        return sorted(
            p
            for p in cls.__dict__
            if isinstance(getattr(cls, p, None), (property, cached_property))
        )

    @classmethod
    def _properties(cls) -> list[str]:
        return cls._get_properties_helper()

    @classmethod
    def from_dictionary(cls, the_dict: dict[str, Any]) -> Any:
        """Build an entity from a dict, ignoring keys that are not properties (as MLflow does)."""
        props = cls._properties()
        return cls(**{key: value for key, value in the_dict.items() if key in props})

    def __repr__(self) -> str:
        return to_string(self)


def to_string(obj: Any) -> str:
    """MLflow's entity printer: `<Class: prop=value, ...>`, other values through pprint."""
    if isinstance(obj, _MlflowObject):
        inner = ", ".join(f"{key}={to_string(value)}" for key, value in obj)
        return f"<{type(obj).__name__}: {inner}>"
    import pprint  # only needed when something is printed

    return pprint.PrettyPrinter().pformat(obj)
