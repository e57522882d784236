"""The ASGI app: MLflow 3.18's REST routes under ``/api/2.0`` and ``/ajax-api/2.0``, served
from one ``MlflowClient`` (one writer) per worker process.

Handlers are blocking and run in anyio's thread pool (a limiter of ``THREADS``), so concurrent
requests share the writer's group commits. Bodies are read here, bounded, before a handler
runs; anything a handler raises that is not an ``MlflowException`` is answered as MLflow's
INTERNAL_ERROR JSON, without a traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request as HttpRequest
from starlette.responses import FileResponse, PlainTextResponse, Response

from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException
from . import _auth, _handlers_experiments, _handlers_runs
from ._artifacts import Artifacts
from ._backend import Backend, open_client
from ._context import Request, ServerConfig
from ._errors import error_response, method_not_allowed, not_found, unexpected_error_response
from ._json import FlaskJson, dumps, flask_dumps

THREADS = 128  # ~100 concurrent clients each with a request in flight, and some to spare
ARTIFACTS_PREFIX = "/api/2.0/mlflow-artifacts/artifacts"
_logger = logging.getLogger("asynctrack.server")


def _version() -> str:
    return "3.18.0"  # the MLflow version whose REST API this server speaks


def _too_large(limit: int) -> MlflowException:
    return MlflowException(
        f"Request body too large: this server accepts at most {limit} bytes.", INVALID_PARAMETER_VALUE
    )


class App:
    """ASGI application (plain ASGI around Starlette's request and response types)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._backend: Backend | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self.artifacts = Artifacts(config.artifacts_destination, config.max_artifact_bytes)
        self.routes: dict[str, dict[str, Callable]] = {}
        for path, method, handler in _handlers_experiments.ROUTES + _handlers_runs.ROUTES + [
            ("/mlflow/artifacts/list", "GET", self.artifacts.list_run)
        ]:
            for prefix in ("/api/2.0", "/ajax-api/2.0"):
                self.routes.setdefault(prefix + path, {})[method] = handler
        for path, method, handler in _handlers_runs.AJAX_ROUTES:
            self.routes.setdefault("/ajax-api/2.0" + path, {})[method] = handler

    @property
    def backend(self) -> Backend:
        if self._backend is None:  # in the worker process, on first use
            self._backend = Backend(
                open_client(
                    self.config.backend_store_uri,
                    self.config.default_artifact_root,
                    self.config.read_replica_backend_store_uri,
                )
            )
        return self._backend

    # -- ASGI -------------------------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = HttpRequest(scope, receive)
        try:
            response = await self._dispatch(request)
        except MlflowException as exc:
            response = error_response(exc)
        except Exception as exc:  # noqa: BLE001 - the catch-all: no traceback to the client
            response = unexpected_error_response(exc, scope.get("path", "?"))
        await response(scope, receive, send)

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if not self.config.artifacts_only:
                        await anyio.to_thread.run_sync(lambda: self.backend)
                except Exception as exc:  # noqa: BLE001 - reported, and the server does not start
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # uvicorn has let in-flight requests finish; drain whatever the writer holds.
                if self._backend is not None:
                    await anyio.to_thread.run_sync(self._backend.client.flush)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _dispatch(self, request: HttpRequest) -> Response:
        # The ASGI path, decoded: request.url re-parses it (Starlette < 1.10 cut "a%23b" at the "#").
        path = request.scope["path"]
        if not _auth.authorized(self.config.basic_auth, path, request.headers.get("authorization")):
            return error_response(_auth.unauthenticated(), {"WWW-Authenticate": 'Basic realm="mlflow"'})
        method = request.method
        if path == "/health":
            return PlainTextResponse("OK")
        if path == "/version":
            return Response(_version(), media_type="text/html")
        if path == ARTIFACTS_PREFIX or path.startswith(ARTIFACTS_PREFIX + "/"):
            return await self._artifact_route(request, path[len(ARTIFACTS_PREFIX) + 1 :])
        methods = self.routes.get(path)
        if methods is None:
            return not_found()
        method_key = "GET" if method == "HEAD" else method
        handler = methods.get(method_key)
        if handler is None:
            return method_not_allowed(list(methods))
        if self.config.artifacts_only:
            return self._disabled(path, "in `--artifacts-only` mode. To enable tracking server "
                                  "functionality, run `mlflow server` without `--artifacts-only`")
        req = await self._read(request)
        result = await self._run(handler, self.backend, req)
        if isinstance(result, FlaskJson):
            return Response(flask_dumps(result), media_type="application/json")
        return Response(dumps(result), media_type="application/json")

    async def _run(self, fn: Callable, *args: Any) -> Any:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(THREADS)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def _read(self, request: HttpRequest) -> Request:
        limit = self.config.max_json_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return Request(
            request.method,
            list(request.query_params.multi_items()),
            b"".join(chunks),
            request.headers.get("content-type"),
            {},
        )

    @staticmethod
    def _disabled(path: str, why: str) -> Response:
        return Response(f"Endpoint: {path} disabled due to the mlflow server running {why}", 503)

    # -- artifacts --------------------------------------------------------------------------
    async def _artifact_route(self, request: HttpRequest, artifact_path: str) -> Response:
        method = request.method
        allowed = ["GET"] if not artifact_path else ["GET", "PUT", "DELETE"]
        if (method == "HEAD" and "GET" not in allowed) or (method != "HEAD" and method not in allowed):
            return method_not_allowed(allowed)
        if not self.config.serve_artifacts:
            return self._disabled(
                request.scope["path"],
                "with `--no-serve-artifacts`. To enable artifacts server functionality, run "
                "`mlflow server` with `--serve-artifacts`",
            )
        if not artifact_path:
            req = await self._read(request)
            return Response(dumps(await self._run(self.artifacts.list, req)), media_type="application/json")
        if method in ("GET", "HEAD"):
            path, name, media = await self._run(self.artifacts.download, artifact_path)
            response = FileResponse(path, headers={"Content-Disposition": f"attachment; filename={name}"})
            response.headers["content-type"] = media  # as MLflow: no charset added
            return response
        if method == "DELETE":
            await self._read(request)
            return Response(dumps(await self._run(self.artifacts.delete, artifact_path)), media_type="application/json")
        return await self._upload(request, artifact_path)

    async def _upload(self, request: HttpRequest, artifact_path: str) -> Response:
        limit = self.artifacts.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        final, handle, tmp = await self._run(self.artifacts.start_upload, artifact_path)
        try:
            size, pending = 0, []
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                pending.append(chunk)
                if sum(map(len, pending)) >= 1 << 20:
                    data, pending = b"".join(pending), []
                    await self._run(handle.write, data)
            if pending:
                await self._run(handle.write, b"".join(pending))
            await self._run(handle.close)
            await self._run(os.replace, tmp, final)
        except BaseException:
            handle.close()
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise
        return Response(b"", status_code=200)


def create_app() -> App:
    """The app for uvicorn's ``--factory``: configuration from the environment the CLI set."""
    return App(ServerConfig.from_env())
