"""The store interface: what the writer and the client need from a backend.

Writes arrive only as batches of decoded event records (``asynctrack.events``) through the async
``apply``: the writer is their one caller, on its own event loop, so a backend can use whatever
async driver suits it (aiosqlite here; asyncpg or httpx for the PostgreSQL and HTTP stores to
come). Reads are plain blocking calls made in the caller's thread: a process that only reads
never starts a writer thread, and a read pays no thread hop.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..entities import Experiment, Metric, Run


def redacted(uri: str) -> str:
    """``uri`` with its password (if any) replaced by ``***``."""
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:  # not a URL with a netloc we can read: nothing to hide in it
        return uri
    if password is None and "password=" not in parts.query:
        return uri
    if "password=" in parts.query:  # libpq's URI parameter
        query = "&".join(
            "password=***" if p.startswith("password=") else p for p in parts.query.split("&")
        )
        parts = parts._replace(query=query)
    if password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}")
    return urlunsplit(parts)


class StoreUnavailable(Exception):
    """The store cannot take writes right now (file gone, read-only, disk full, I/O error, a lock
    held past every retry): nothing of the batch was stored, and the same batch can be applied
    again later. The writer keeps asynchronous records through it instead of failing them.
    ``lasting``: the store knows the cause will not pass within a brief retry (a read-only
    file), so synchronous callers are told at once. ``retry_after``: the store was told when
    to come back (a server's Retry-After, in seconds); the writer waits at least that long.
    ``maybe_stored``: the request reached the store, which did not answer (a timeout): its
    records may be stored after all (re-sending them is harmless, but a caller must not be told
    that nothing was stored)."""

    def __init__(
        self,
        *args: object,
        lasting: bool = False,
        retry_after: float | None = None,
        maybe_stored: bool = False,
    ) -> None:
        super().__init__(*args)
        self.lasting = lasting
        self.retry_after = retry_after
        self.maybe_stored = maybe_stored


class Store(abc.ABC):
    """A tracking backend. One instance per process and URI."""

    uri: str

    # A store across a network (HTTP): the server, not the client, reads an empty experiment
    # id and resolves a relative artifact location, as MLflow's RestStore leaves both to it.
    remote: bool = False

    @property
    def shown_uri(self) -> str:
        """The URI as messages and logs print it: a password in it replaced by ``***``."""
        return redacted(self.uri)

    @property
    def replay_uri(self) -> str:
        """The URI a spool file records, so that a replay from any directory finds this store."""
        return self.uri

    def limit_retries(self, until: float | None) -> None:
        """From now on give up retrying transient errors at ``time.monotonic() == until`` (and
        raise ``StoreUnavailable``): the writer's bounded wait at exit. None lifts the limit."""

    # -- writes -----------------------------------------------------------------------------
    def prepare_writer(self) -> None:
        """Called in the thread that starts the writer, before the writer's thread exists:
        import what the write path needs (an import under way on another thread when the
        process forks would leave the child that module's lock, held)."""

    @abc.abstractmethod
    async def open_writer(self) -> None:
        """Prepare the write path; called on the writer's event loop before the first apply."""

    @abc.abstractmethod
    async def apply(
        self, records: Sequence[tuple], on_commit: Callable[[list[Any]], None] | None = None
    ) -> list[Any]:
        """Apply decoded records in order; one outcome per record, or raise StoreUnavailable
        with nothing stored. ``records`` is a list of record tuples, or for a batch of metric
        points an ``events.MetricBlock``: the same records as one flat tuple of fields, which a
        store may bind as it is (or just iterate).

        An outcome is the op's result (the new experiment id for CREATE_EXPERIMENT, else None)
        or the ``MlflowException`` that this record alone failed with: a bad record never keeps
        the others from being stored. ``on_commit(outcomes)``, if given, is called once the
        outcomes are durable, on whatever thread the store commits on, before ``apply`` returns.
        """

    def apply_direct(self, records: Sequence[tuple], done: Callable[[list[Any]], None]) -> bool:
        """Optionally apply ``records`` without the event loop (the SQLite store does it in the
        calling thread), calling ``done(outcomes)`` once they are durable or failed, a
        ``StoreUnavailable`` outcome meaning "not stored, take the usual path"; False when the
        store cannot (the default). The writer uses it only for a synchronous record while
        nothing else is queued or in flight, so order holds."""
        return False

    # Set by the store when it has housekeeping to do (SQLite: a WAL checkpoint); the writer
    # then runs ``upkeep`` on its loop between batches, off every caller's path.
    wants_upkeep: bool = False

    async def upkeep(self) -> None:
        """Housekeeping the store asked for with ``wants_upkeep``; never raises."""

    @abc.abstractmethod
    async def close_writer(self) -> None:
        """Release the write path's resources (on the writer's loop)."""

    # -- reads ------------------------------------------------------------------------------
    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abc.abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abc.abstractmethod
    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> tuple[list[Metric], str | None]: ...

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None,
        run_view_type: int,
        max_results: int | None,
        order_by: list[str] | None,
        page_token: str | None,
    ) -> tuple[list[Run], str | None]:
        """A page of runs matching MLflow's filter, in MLflow's order, and the next token."""
        raise NotImplementedError

    def search_experiments(
        self,
        view_type: int,
        max_results: int | None,
        filter_string: str | None,
        order_by: list[str] | None,
        page_token: str | None,
    ) -> tuple[list[Experiment], str | None]:
        """A page of experiments matching MLflow's filter, and the next token."""
        raise NotImplementedError

    # -- logged models (MLflow 3): the SQL stores implement these (_sql.logged_model_store) --
    def _no_logged_models(self) -> Any:
        from ..exceptions import MlflowException

        raise MlflowException(
            f"Logged models are not supported by asynctrack's store for {self.shown_uri} yet"
        )

    def create_logged_model(
        self,
        experiment_id: str,
        name: str,
        source_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        model_type: str | None = None,
    ) -> Any:
        """A new PENDING LoggedModel, its artifacts under ``<experiment>/models/<id>/artifacts``."""
        return self._no_logged_models()

    def finalize_logged_model(self, model_id: str, status: Any) -> Any:
        return self._no_logged_models()

    def delete_logged_model(self, model_id: str) -> None:
        self._no_logged_models()

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        self._no_logged_models()

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self._no_logged_models()

    def log_logged_model_metrics(self, model_id: str, metrics: list[tuple]) -> None:
        """Metric points (name, value, timestamp, step, run_id, dataset name, digest) of a model."""
        self._no_logged_models()

    def log_outputs(self, run_id: str, outputs: list[tuple[str, int]]) -> None:
        """Link models (id, step) to the run as its outputs."""
        self._no_logged_models()

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> Any:
        return self._no_logged_models()

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Any], str | None]:
        return self._no_logged_models()

    def close(self) -> None:
        """Release read-side resources."""
