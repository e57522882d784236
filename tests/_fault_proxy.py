"""A fault-injecting HTTP reverse proxy on loopback, in front of a real tracking server.

The faults a real server (or the network between) produces but never on demand: a 429 or 503
(with or without Retry-After) instead of the server's answer, a connection dropped before the
request reaches the server or after the server has handled it but before the answer gets back,
and a server that stalls (requests held, then passed on). Everything else is passed through to
the real server, byte for byte in the body, so what gets stored is the real server's doing.

The proxy runs an asyncio loop in a daemon thread; ``rule(seen) -> Fault | None`` decides each
request (None: pass it on). ``seen`` lists every request with what was done to it.
"""

from __future__ import annotations

import asyncio
import http
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

FORWARD = "forward"
REPLY = "reply"  # answer with a status instead of the server
DROP_BEFORE = "drop_before"  # close the connection without passing the request on
DROP_AFTER = "drop_after"  # pass the request on, then close without the server's answer

# What MLflow's server answers when it is overloaded (503) or rate-limited (429).
_INJECTED = {
    False: b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected by the fault proxy"}',
    True: b'{"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "injected by the fault proxy"}',
}
_HOP_BY_HOP = {
    "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authorization", "proxy-authenticate", "host", "content-length", "content-encoding",
}


@dataclass(frozen=True)
class Fault:
    kind: str = FORWARD
    status: int = 503
    retry_after: str | None = None
    after: bool = False  # REPLY: pass the request on first (the server did the work)


def reply(status: int, retry_after: str | None = None, after: bool = False) -> Fault:
    """Answer ``status`` instead of the server; ``after``: once the server has handled it."""
    return Fault(REPLY, status, retry_after, after)


def any_of(*rules: Callable[[Seen], Fault | None]) -> Callable[[Seen], Fault | None]:
    """The first rule's fault (every rule sees every request, so each keeps its own count)."""

    def rule(seen: Seen) -> Fault | None:
        faults = [r(seen) for r in rules]
        return next((f for f in faults if f is not None), None)

    return rule


DROP_BEFORE_FAULT = Fault(DROP_BEFORE)
DROP_AFTER_FAULT = Fault(DROP_AFTER)


@dataclass
class Seen:
    index: int  # among all requests the proxy received, from 0
    method: str
    path: str
    body: bytes
    at: float
    done: str = ""  # what the proxy did: forward, reply:<status>, drop_before, drop_after


def _counting(fault: Fault, path: str, hit: Callable[[int], bool]) -> Callable[[Seen], Fault | None]:
    """``fault`` for the requests whose path contains ``path`` and whose count (1, 2, ...
    among those) ``hit`` accepts."""
    count = [0]
    lock = threading.Lock()

    def rule(seen: Seen) -> Fault | None:
        if path not in seen.path:
            return None
        with lock:
            count[0] += 1
            n = count[0]
        return fault if hit(n) else None

    return rule


def every_nth(n: int, fault: Fault, path: str = "") -> Callable[[Seen], Fault | None]:
    """``fault`` for every ``n``-th request whose path contains ``path`` (the n-th, 2n-th...)."""
    return _counting(fault, path, lambda i: i % n == 0)


def first(k: int, fault: Fault, path: str = "") -> Callable[[Seen], Fault | None]:
    """``fault`` for the first ``k`` requests whose path contains ``path``, then pass through."""
    return _counting(fault, path, lambda i: i <= k)


class FaultProxy:
    """``url`` forwards to ``upstream`` under ``rule``; ``stall(s)`` holds every request that
    arrives in the next ``s`` seconds until they are over, then passes it on."""

    def __init__(self, upstream: str, rule: Callable[[Seen], Fault | None] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.rule = rule
        self.seen: list[Seen] = []
        self._stall_until = 0.0
        self._in_flight = 0
        self._tasks: set[asyncio.Task] = set()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fault-proxy")
        self._server: asyncio.base_events.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self.url = ""

    # -- control (any thread) -------------------------------------------------------------------
    def stall(self, seconds: float) -> None:
        self._stall_until = time.monotonic() + seconds

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Until no request is being handled (a stalled one is passed on when the stall ends,
        whether or not its client is still waiting for it)."""
        deadline = time.monotonic() + timeout
        while self._in_flight:
            if time.monotonic() > deadline:
                raise TimeoutError("the fault proxy still has requests in flight")
            time.sleep(0.05)

    def done(self, kind: str, path: str = "") -> int:
        """How many requests (whose path contains ``path``) the proxy treated as ``kind``."""
        with self._lock:
            return sum(1 for s in self.seen if s.done.startswith(kind) and path in s.path)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the fault proxy did not start")
        return self

    def __exit__(self, *exc) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._client is not None:
                await self._client.aclose()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    # -- the loop ------------------------------------------------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._client = httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=None))
            self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
            port = self._server.sockets[0].getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"

        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()
            self._tasks.discard(task)

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request on the connection; False when the connection is over."""
        head = await reader.readuntil(b"\r\n\r\n")
        self._in_flight += 1  # (only this loop's thread changes it)
        try:
            return await self._handle(head, reader, writer)
        finally:
            self._in_flight -= 1

    async def _handle(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        lower = {k.lower(): v for k, v in headers}
        body = await _read_body(reader, lower)
        with self._lock:
            seen = Seen(len(self.seen), method, target.split("?", 1)[0], body, time.monotonic())
            self.seen.append(seen)
        wait = self._stall_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        fault = (self.rule(seen) if self.rule is not None else None) or Fault()
        seen.done = fault.kind
        if fault.kind == DROP_BEFORE:
            return False
        if fault.kind == REPLY and not fault.after:
            seen.done = f"reply:{fault.status}"
            extra = [("Retry-After", fault.retry_after)] if fault.retry_after is not None else []
            await _respond(writer, fault.status, [("Content-Type", "application/json"), *extra], _INJECTED[fault.status == 429])
            return lower.get("connection", "").lower() != "close"
        assert self._client is not None
        try:
            response = await self._client.request(
                method,
                self.upstream + target,
                headers=[(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP],
                content=body,
            )
        except httpx.HTTPError as exc:
            seen.done = "bad_gateway"
            await _respond(writer, 502, [("Content-Type", "text/plain")], f"bad gateway: {exc}".encode())
            return False
        if fault.kind == DROP_AFTER:
            return False
        if fault.kind == REPLY:  # after: the server's work is done, its answer replaced
            seen.done = f"reply-after:{fault.status}"
            await _respond(writer, fault.status, [("Content-Type", "application/json")], _INJECTED[fault.status == 429])
            return lower.get("connection", "").lower() != "close"
        await _respond(
            writer,
            response.status_code,
            [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _HOP_BY_HOP],
            response.content,
        )
        return lower.get("connection", "").lower() != "close"


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length") or 0)
    return await reader.readexactly(length) if length else b""


async def _respond(writer: asyncio.StreamWriter, status: int, headers: list, body: bytes) -> None:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    out = [f"HTTP/1.1 {status} {phrase}".encode()]
    out += [f"{k}: {v}".encode("latin-1") for k, v in headers]
    out.append(f"Content-Length: {len(body)}".encode())
    writer.write(b"\r\n".join(out) + b"\r\n\r\n" + body)
    await writer.drain()
