"""Storing a spool file: the records a writer could not store, applied as they were logged.

Every record a spool holds is a logging op (metric, param, tag, batch) and each of them is
idempotent in the store (an identical metric point is stored once, a param re-logged with its
value is accepted, a tag is set to the value it had), so a spool replayed twice, or replayed
after part of it did reach the store, stores nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import events as ev
from ._spool import SpoolHeader, read_spool
from .exceptions import INVALID_PARAMETER_VALUE, MlflowException
from .store import store_for_uri
from .writer import writer_for

CHUNK = 10_000  # records per synchronous group: bounded memory for a spool of any size


@dataclass
class ReplayReport:
    """What a replay did: how many records were read and stored, and which failed and why."""

    path: str
    tracking_uri: str
    header: SpoolHeader
    read: int = 0
    stored: int = 0
    failed: list[tuple[int, dict, str]] = field(default_factory=list)  # (index, record, error)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems


def replay_spool(path: str, tracking_uri: str | None = None) -> ReplayReport:
    """Store the records of the spool at ``path`` in ``tracking_uri`` (default: the store the
    spool was written for). Raises MlflowException when the store cannot be written at all;
    a record the store refuses is reported in ``failed`` and the others are stored."""
    header, payloads, problems = read_spool(path)
    uri = tracking_uri or header.tracking_uri
    if not uri:
        raise MlflowException(
            f"{path} does not say which store its records belong to: pass --tracking-uri.",
            INVALID_PARAMETER_VALUE,
        )
    writer = writer_for(store_for_uri(uri))
    report = ReplayReport(path=path, tracking_uri=uri, header=header)
    chunk: list[bytes] = []
    for payload in payloads:
        chunk.append(payload)
        if len(chunk) == CHUNK:
            _store_chunk(writer, chunk, report)
            chunk = []
    if chunk:
        _store_chunk(writer, chunk, report)
    report.problems.extend(problems)
    return report


def _store_chunk(writer, chunk: list[bytes], report: ReplayReport) -> None:
    outcomes = writer.submit_wait_many(chunk)
    for offset, (payload, outcome) in enumerate(zip(chunk, outcomes)):
        index = report.read + offset
        if isinstance(outcome, MlflowException) and outcome.error_code == "TEMPORARILY_UNAVAILABLE":
            raise MlflowException(
                f"{report.tracking_uri} cannot be written ({outcome.message}); nothing more of "
                f"{report.path} was stored (records before #{index} were). Replay it again once "
                "the store is back: records already stored are not stored twice.",
                outcome.error_code,
            )
        if isinstance(outcome, BaseException):
            report.failed.append((index, _describe(payload), str(outcome)))
        else:
            report.stored += 1
    report.read += len(chunk)


def _describe(payload: bytes) -> dict:
    try:
        return ev.describe(ev.decode(payload))
    except Exception:  # noqa: BLE001 - an undecodable record is described by its size
        return {"bytes": len(payload)}
