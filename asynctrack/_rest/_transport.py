"""MLflow's REST calls over httpx: one keep-alive pool per thread kind (a sync ``httpx.Client``
for reads in the caller's thread, an ``httpx.AsyncClient`` on the writer's loop), urllib3's
retry schedule as MLflow configures it, and MLflow's errors. No httpx exception leaves here.

httpx is imported only when a server is first called (``import asynctrack`` never loads it).
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from .._extras import require
from ..exceptions import (
    ERROR_CODE_NAME_TO_NUMBER,
    HTTP_STATUS_TO_ERROR_CODE,
    INTERNAL_ERROR,
    MlflowException,
    get_error_code,
)
from ._config import (
    BACKOFF_MAX_S,
    RETRY_AFTER_STATUSES,
    TRANSIENT_STATUSES,
    RestConfig,
)

API_PREFIX = "/api/2.0"
_ARMERIA_OK = "200 OK"


def httpx_module():
    """httpx, or MLflow-style MissingExtraError naming asynctrack's ``http`` extra."""
    return require("httpx", "http", "An http(s):// tracking URI")


class Unreachable(Exception):
    """No answer the caller can use: connection errors or retryable statuses outlived the
    retries (``response`` is the last one, if any). ``sent``: the request may have reached the
    server (a read error), so a non-idempotent write must not be sent again blindly."""

    def __init__(self, message: str, response: Any = None, sent: bool = False, timeout: bool = False):
        super().__init__(message)
        self.response = response
        self.sent = sent
        self.timeout = timeout


# -- retries --------------------------------------------------------------------------------
def backoff_s(config: RestConfig, failures: int) -> float:
    """urllib3's Retry.get_backoff_time after ``failures`` consecutive failures, with MLflow's
    jitter: none after the first, then factor * 2**(failures - 1) + U(0, jitter), at most 120 s."""
    if failures <= 1:
        return 0.0
    value = config.backoff_factor * (2 ** (failures - 1))
    if config.backoff_jitter:
        value += random.random() * config.backoff_jitter
    return float(max(0.0, min(BACKOFF_MAX_S, value)))


def retry_after_s(response: Any) -> float | None:
    """The Retry-After header as seconds (a number or an HTTP date), as urllib3 parses it."""
    value = response.headers.get("Retry-After") if response is not None else None
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class Policy:
    """Which failures one call retries (MLflow's http_request arguments)."""

    __slots__ = ("statuses", "read_errors", "on_retry_after", "max_retries")

    def __init__(
        self,
        statuses: frozenset = TRANSIENT_STATUSES,
        read_errors: bool = True,
        on_retry_after: bool = True,
        max_retries: int | None = None,
    ) -> None:
        self.statuses = statuses
        self.read_errors = read_errors
        self.on_retry_after = on_retry_after
        self.max_retries = max_retries  # None: the config's (MLFLOW_HTTP_REQUEST_MAX_RETRIES)

    def retries_status(self, config: RestConfig, response: Any) -> bool:
        status = response.status_code
        if status in self.statuses:
            return True
        return (
            self.on_retry_after
            and config.respect_retry_after
            and status in RETRY_AFTER_STATUSES
            and "Retry-After" in response.headers
        )


def _classify(httpx, exc: Exception) -> tuple[bool, bool]:
    """(connect error: the request never reached the server, timeout)."""
    connect = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    return connect, isinstance(exc, httpx.TimeoutException)


def _wait_s(config: RestConfig, failures: int, response: Any) -> float:
    if config.respect_retry_after and response is not None:
        after = retry_after_s(response)
        if after:
            return after
    return backoff_s(config, failures)


# -- errors ---------------------------------------------------------------------------------
def _json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except Exception:  # noqa: BLE001 - not JSON: MLflow's "Response body" error
        return None
    return value if isinstance(value, dict) else None


class RestException(MlflowException):
    """An error the server answered with, as MLflow's ``RestException``: an MlflowException
    whose message is "<CODE>: <message>", that keeps the server's JSON in ``json``, and whose
    name shows where errors are listed by repr (RunOperations.wait's message, as MLflow's)."""

    def __init__(self, json: dict, message: str, error_code: str, **kwargs: Any) -> None:
        super().__init__(message, error_code, **kwargs)
        self.json = json


def rest_error(body: dict) -> MlflowException:
    """MLflow's RestException: "<CODE>: <message>" with the server's code."""
    code = body.get("error_code") or "INTERNAL_ERROR"
    message = f"{code}: {body['message'] if 'message' in body else 'Response: ' + str(body)}"
    if isinstance(code, str) and code in ERROR_CODE_NAME_TO_NUMBER:
        name = code
    else:  # an HTTP status as the code becomes its ErrorCode; anything else INTERNAL_ERROR
        try:
            name = HTTP_STATUS_TO_ERROR_CODE.get(int(code), "INTERNAL_ERROR")
        except (TypeError, ValueError):
            name = "INTERNAL_ERROR"
    sqlstate = body.get("sqlstate") or None
    error_class = body.get("error_class") or None
    return RestException(body, message, name, sqlstate=sqlstate, error_class=error_class)


def verify(response: Any, endpoint: str) -> dict:
    """MLflow's verify_rest_response + call_endpoint's parse: the JSON body, or the error."""
    status = response.status_code
    text = response.text
    if status == 200 and text.strip() in (_ARMERIA_OK, ""):
        return {}
    if status != 200:
        body = _json_object(text)
        if body is not None:
            raise rest_error(body)
        code = get_error_code(status)
        raise MlflowException(
            f"API request to endpoint {endpoint} failed with error code {status} != 200. "
            f"Response body: '{text}'",
            code,
        )
    body = _json_object(text)
    if body is None:
        raise MlflowException(
            "API request to endpoint was successful but the response body was not in a valid "
            f"JSON format. Response body: '{text}'"
        )
    return body


def unreachable_error(exc: Unreachable) -> MlflowException:
    """What MLflow's client raises when requests gave up (its wording, httpx's reason)."""
    return MlflowException(str(exc), INTERNAL_ERROR)


def _failure_message(url: str, exc: Exception, timeout: bool) -> str:
    reason = str(exc) or type(exc).__name__
    if timeout:
        return (
            f"API request to {url} failed with timeout exception {reason}. To increase the "
            "timeout, set the environment variable MLFLOW_HTTP_REQUEST_TIMEOUT (default: 120) "
            "to a larger value."
        )
    return f"API request to {url} failed with exception {reason}"


class JsonBody(bytes):
    """A request body its caller encoded as JSON already (the writer builds the usual log-batch
    text in one pass); sent as it is, with JSON's content type."""


def _request_kwargs(config: RestConfig, method: str, body: Any, headers: dict | None) -> dict:
    all_headers = {"User-Agent": "asynctrack"}
    if config.authorization:
        all_headers["Authorization"] = config.authorization
    if headers:
        all_headers.update(headers)
    kwargs: dict[str, Any] = {"headers": all_headers}
    if body is not None:
        if method == "GET":
            kwargs["params"] = body
        elif isinstance(body, JsonBody):
            kwargs["content"] = body
            all_headers["Content-Type"] = "application/json"
        elif isinstance(body, (bytes, bytearray)) or hasattr(body, "read"):
            kwargs["content"] = body  # an upload: raw bytes, or a file streamed as it is read
        else:
            kwargs["content"] = json.dumps(body, allow_nan=False)
            all_headers["Content-Type"] = "application/json"
    return kwargs


# -- the sync client ------------------------------------------------------------------------
class SyncTransport:
    """Blocking calls from any thread, over one keep-alive pool per (TLS settings)."""

    def __init__(self) -> None:
        self._clients: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def _client(self, config: RestConfig):
        key = (config.verify, config.client_cert)
        client = self._clients.get(key)
        if client is None:
            httpx = httpx_module()
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._clients[key] = httpx.Client(
                        verify=config.verify, cert=config.client_cert, follow_redirects=True
                    )
        return client

    def send(
        self,
        config: RestConfig,
        method: str,
        endpoint: str,
        body: Any = None,
        policy: Policy | None = None,
        headers: dict | None = None,
        timeout: float | None = None,
        stream_to: Callable[[Any], None] | None = None,
    ) -> Any:
        """The final response (maybe a retryable status past its retries); raises Unreachable
        when no response came. ``stream_to(response)`` reads a streamed body."""
        httpx = httpx_module()
        policy = policy or Policy()
        client = self._client(config)
        url = config.host + endpoint
        kwargs = _request_kwargs(config, method, body, headers)
        retries = config.max_retries if policy.max_retries is None else policy.max_retries
        failures = 0
        while True:
            response = None
            try:
                request = client.build_request(
                    method, url, timeout=timeout or config.timeout, **kwargs
                )
                response = client.send(request, stream=stream_to is not None)
                if stream_to is not None and response.status_code == 200:
                    try:
                        stream_to(response)
                    finally:
                        response.close()
                    return response
                if stream_to is not None:
                    response.read()
                    response.close()
            except httpx.HTTPError as exc:
                connect, is_timeout = _classify(httpx, exc)
                failures += 1
                if failures > retries or not (connect or policy.read_errors):
                    raise Unreachable(
                        _failure_message(url, exc, is_timeout), sent=not connect, timeout=is_timeout
                    ) from None
                time.sleep(_wait_s(config, failures, None))
                continue
            if not policy.retries_status(config, response):
                return response
            failures += 1
            if failures > retries:
                return response
            time.sleep(_wait_s(config, failures, response))

    def call(
        self,
        config: RestConfig,
        method: str,
        endpoint: str,
        body: Any = None,
        policy: Policy | None = None,
    ) -> dict:
        """An MLflow REST call: its parsed JSON, or MLflow's MlflowException."""
        try:
            response = self.send(config, method, endpoint, body, policy)
        except Unreachable as exc:
            raise unreachable_error(exc) from None
        return verify(response, endpoint)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


# -- the async client (the writer's loop) ---------------------------------------------------
class AsyncTransport:
    """Calls on the writer's event loop over one keep-alive pool. Retries are left to the
    writer (see HttpStore.apply): this makes each request once, with a deadline."""

    def __init__(self, max_connections: int = 16) -> None:
        self._client: Any = None
        self._key: tuple | None = None
        self._max_connections = max_connections

    def _client_for(self, config: RestConfig):
        key = (config.verify, config.client_cert)
        if self._client is None or self._key != key:
            httpx = httpx_module()
            old = self._client
            self._client = httpx.AsyncClient(
                verify=config.verify,
                cert=config.client_cert,
                follow_redirects=True,
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                ),
            )
            self._key = key
            if old is not None:
                self._stale = old
        return self._client

    async def send(
        self,
        config: RestConfig,
        method: str,
        endpoint: str,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """One attempt: the response, or Unreachable."""
        httpx = httpx_module()
        client = self._client_for(config)
        url = config.host + endpoint
        kwargs = _request_kwargs(config, method, body, None)
        try:
            return await client.request(method, url, timeout=timeout or config.timeout, **kwargs)
        except httpx.HTTPError as exc:
            connect, is_timeout = _classify(httpx, exc)
            raise Unreachable(
                _failure_message(url, exc, is_timeout), sent=not connect, timeout=is_timeout
            ) from None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        for c in (client, getattr(self, "_stale", None)):
            if c is not None:
                try:
                    await c.aclose()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
        self._stale = None

    def forget(self) -> None:
        """After fork: the parent's connections are not this process's."""
        self._client = None
        self._stale = None
