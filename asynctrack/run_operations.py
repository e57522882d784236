"""What an asynchronous logging call returns: a handle to wait on, as in MLflow.

A handle holds the writer's tickets (each record's own payload object), not futures: creating a
future per logging call would cost more than the call itself. ``wait`` flushes the writer and
collects the errors of its own records.
"""

from __future__ import annotations

from typing import Any

from .exceptions import MlflowException


class RunOperations:
    """Handle on asynchronous logging operations; ``wait()`` blocks until they are stored."""

    __slots__ = ("_operation_futures", "_writer", "_tickets", "_failures")

    def __init__(self, operation_futures: list | None = None) -> None:
        # MLflow's constructor takes futures; they are honoured too.
        self._operation_futures = operation_futures or []
        self._writer: Any = None
        self._tickets: tuple[bytes, ...] = ()
        self._failures: tuple[BaseException, ...] = ()

    @classmethod
    def _pending(cls, writer: Any, *tickets: bytes) -> RunOperations:
        ops = cls.__new__(cls)
        ops._operation_futures = []
        ops._writer = writer
        ops._tickets = tickets
        ops._failures = ()
        return ops

    @classmethod
    def _failed(cls, error: BaseException) -> RunOperations:
        ops = cls.__new__(cls)
        ops._operation_futures = []
        ops._writer = None
        ops._tickets = ()
        ops._failures = (error,)
        return ops

    def wait(self) -> None:
        """Block until every operation is stored; raise if any of them failed."""
        failed: list[BaseException] = list(self._failures)
        if self._writer is not None and self._tickets:
            self._writer.flush()
            for ticket in self._tickets:
                error = self._writer.error_of(ticket)
                if error is not None:
                    failed.append(error)
        for future in self._operation_futures:
            try:
                future.result()
            except Exception as e:  # noqa: BLE001 - collected and reported together
                failed.append(e)
        if failed:
            raise MlflowException(
                "The following failures occurred while performing one or more async logging "
                f"operations: {failed}"
            )


def get_combined_run_operations(run_operations_list: list[RunOperations]) -> RunOperations | None:
    """One handle for several (None for none), as MLflow's helper of the same name."""
    if not run_operations_list:
        return None
    if len(run_operations_list) == 1:
        return run_operations_list[0]
    combined = RunOperations()
    writer = None
    tickets: list[bytes] = []
    failures: list[BaseException] = []
    for ops in run_operations_list:
        if ops is None:
            continue
        combined._operation_futures.extend(ops._operation_futures)
        writer = writer or ops._writer
        tickets.extend(ops._tickets)
        failures.extend(ops._failures)
    combined._writer = writer
    combined._tickets = tuple(tickets)
    combined._failures = tuple(failures)
    return combined
