"""When the store is down: keep the asynchronous records, in order, and never lose them.

A batch the store cannot take (``StoreUnavailable``) is first retried for ``STORE_RETRY_S``,
which covers the I/O hiccup and the lock that goes away. Past that the writer is in an outage:
synchronous callers are told at once (``TEMPORARILY_UNAVAILABLE``, nothing of their call
stored), asynchronous records are held, oldest first, and retried with backoff up to
``RETRY_MAX_DELAY_S``; past ``HOLD_MAX`` held records they go to a spool file so memory stays
bounded, and when the store comes back the spool is stored first, then the held records. At exit
the writer keeps trying for ``EXIT_TIMEOUT_S`` and then spools what is left, with one log line
that names the file and the command that stores it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable

from .._spool import Spool, read_spool
from ..exceptions import TEMPORARILY_UNAVAILABLE, MlflowException
from ..store import Store, StoreUnavailable
from ..store.base import redacted

_logger = logging.getLogger("asynctrack")

STORE_RETRY_S = float(os.environ.get("ASYNCTRACK_STORE_RETRY", "2"))
RETRY_MAX_DELAY_S = 5.0
HOLD_MAX = int(os.environ.get("ASYNCTRACK_MAX_QUEUE", "200000"))
EXIT_TIMEOUT_S = float(os.environ.get("ASYNCTRACK_EXIT_TIMEOUT", "10"))

Pairs = list  # [(payload, ticket)]: a ticket is the payload (asynchronous) or a waiter (synchronous)
StorePairs = Callable[[Pairs], Awaitable[tuple["StoreUnavailable | None", Pairs]]]


class Outage:
    """One writer's records that its store could not take yet, and when to try again."""

    def __init__(self, store: Store, store_pairs: StorePairs, max_batch: int) -> None:
        self._store = store
        self._store_pairs = store_pairs  # the writer's: apply a batch and settle its callers
        self._max_batch = max_batch
        self.reason: str | None = None  # None: no outage
        self.held: Pairs = []  # newer than anything in the spill
        self.spill: Spool | None = None
        self._delay = 0.0
        self.retry_at = 0.0  # on the event loop's clock

    @property
    def active(self) -> bool:
        return self.reason is not None

    async def retry_briefly(self, pairs: Pairs, failure: StoreUnavailable, stopping: bool) -> tuple[StoreUnavailable | None, Pairs]:
        """A failure that goes away within STORE_RETRY_S costs a short wait and nothing else."""
        import asyncio  # (the writer's thread imported it: see Writer._start)

        import anyio

        loop = asyncio.get_running_loop()
        give_up = loop.time() + (min(STORE_RETRY_S, 0.5) if stopping else STORE_RETRY_S)
        delay = 0.01
        while failure is not None and not failure.lasting and loop.time() < give_up:
            wait = max(delay, failure.retry_after or 0.0)
            if loop.time() + wait > give_up and failure.retry_after:
                break  # told to come back later than a brief retry waits: an outage
            await anyio.sleep(min(wait, max(0.0, give_up - loop.time())))
            delay *= 2
            failure, pairs = await self._store_pairs(pairs)
        return failure, pairs

    def hold(self, pairs: Pairs, failure: StoreUnavailable) -> None:
        """Synchronous callers get a clear error now; asynchronous records are kept."""
        import asyncio  # (the writer's thread imported it: see Writer._start)

        outcome = (
            "It may have been stored all the same: the request reached the store, which did "
            "not answer in time." if failure.maybe_stored else "Nothing of this call was stored."
        )
        error = MlflowException(
            f"asynctrack could not store this in {self._store.shown_uri}: {failure}. {outcome} "
            "Asynchronous logging is kept and retried, and spooled to disk if the store does "
            "not come back before the process ends.",
            TEMPORARILY_UNAVAILABLE,
        )
        kept = []
        for pair in pairs:
            if type(pair[1]) is bytes:
                kept.append(pair)
            else:
                pair[1].resolve(error)
        if not kept and self.reason is None:
            return  # only synchronous callers were waiting, and they are told
        if self.reason is None:
            _logger.warning(
                "asynctrack: cannot write to %s (%s); keeping asynchronous logging and retrying.",
                self._store.shown_uri,
                failure,
            )
            self._delay = 0.05
        else:
            self._delay = min(self._delay * 2, RETRY_MAX_DELAY_S)
        self.reason = str(failure)
        self.held.extend(kept)
        self.retry_at = asyncio.get_running_loop().time() + max(self._delay, failure.retry_after or 0.0)
        if len(self.held) > HOLD_MAX:
            self.spill_held()

    async def retry(self, new_pairs: Pairs) -> None:
        """The spill first, then the held records, then the new ones: the order they came in."""
        candidates = self.held + new_pairs
        self.held = []
        if self.spill is not None:
            failure = await self._replay_spill()
            if failure is not None:
                self.hold(candidates, failure)
                return
        stored = 0
        step = self._max_batch
        for i in range(0, len(candidates), step):
            chunk = candidates[i : i + step]
            failure, rest = await self._store_pairs(chunk)
            if failure is not None:
                self.hold(rest + candidates[i + step :], failure)
                return
            stored += len(chunk)
        if stored:
            _logger.warning(
                "asynctrack: %s can be written again; the %d records kept meanwhile are stored.",
                self._store.shown_uri,
                stored,
            )
        self.reason = None

    async def _replay_spill(self) -> StoreUnavailable | None:
        spill = self.spill
        assert spill is not None and spill.path is not None
        _, payloads, _ = read_spool(spill.path)
        chunk: Pairs = []
        for payload in payloads:
            chunk.append((payload, payload))
            if len(chunk) == self._max_batch:
                failure, _ = await self._store_pairs(chunk)
                if failure is not None:
                    payloads.close()
                    return failure
                chunk = []
        if chunk:
            failure, _ = await self._store_pairs(chunk)
            if failure is not None:
                return failure
        try:
            os.remove(spill.path)
        except OSError:
            pass
        self.spill = None
        return None

    def spill_held(self) -> None:
        """Too much held in memory: to disk, oldest first, so memory stays bounded."""
        if self.spill is None:
            self.spill = Spool(self._store.replay_uri, self.reason or "store unavailable")
        try:
            self.spill.append(p for p, _ in self.held)
        except OSError as exc:
            _logger.error("asynctrack: cannot write a spool file either (%s); keeping records in memory.", exc)
            return
        self.held = []

    async def end_at_exit(self) -> None:
        """Keep trying for EXIT_TIMEOUT_S, then spool what is left and say where."""
        import asyncio

        import anyio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + EXIT_TIMEOUT_S
        self._store.limit_retries(time.monotonic() + EXIT_TIMEOUT_S)
        while self.active and loop.time() < deadline:
            await anyio.sleep(max(0.0, min(self.retry_at, deadline) - loop.time()))
            await self.retry([])
        if not self.active:
            return
        self.spill_held()
        spill = self.spill
        if spill is not None and spill.path is not None and not self.held:
            _log_spooled(self._store, self.reason, spill)
        else:
            _logger.error(
                "asynctrack: %s could not be written (%s) and no spool file could be made: "
                "%d logged records are lost.",
                self._store.shown_uri,
                self.reason,
                len(self.held),
            )


def spool_now(store: Store, payloads: list[bytes], reason: str) -> None:
    """Spool ``payloads`` from outside the writer (its thread is stuck in the store at exit)."""
    if not payloads:
        return
    spool = Spool(store.replay_uri, reason)
    try:
        spool.append(payloads)
    except OSError as exc:
        _logger.error("asynctrack: %s (%s), and no spool file could be made (%s): %d logged "
                      "records are lost.", store.shown_uri, reason, exc, len(payloads))
        return
    _log_spooled(store, reason, spool)


def _log_spooled(store: Store, reason: str | None, spool: Spool) -> None:
    _logger.error(
        "asynctrack: %s could not be written (%s): %d logged records are saved in %s; store them "
        "with: asynctrack replay %s --tracking-uri %s",
        store.shown_uri, reason, spool.count, spool.path, spool.path, redacted(store.replay_uri),
    )
