"""Errors as MLflow's server answers them: ``{"error_code": ..., "message": ...}`` with the
HTTP status of the code, Flask's HTML pages for unknown routes and methods, and never a
traceback (anything unexpected is an INTERNAL_ERROR whose message names no internals)."""

from __future__ import annotations

import logging

from starlette.responses import Response

from ..exceptions import INTERNAL_ERROR, MlflowException

_logger = logging.getLogger("asynctrack.server")

NOT_FOUND_HTML = (
    "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    "<p>The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again.</p>\n"
)
METHOD_NOT_ALLOWED_HTML = (
    "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n"
    "<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n"
)


def error_response(exc: MlflowException, headers: dict[str, str] | None = None) -> Response:
    return Response(
        exc.serialize_as_json(),
        status_code=exc.get_http_status_code(),
        media_type="application/json",
        headers=headers,
    )


def unexpected_error_response(exc: BaseException, where: str) -> Response:
    """A bug or an unforeseen failure: logged here in full, answered without details."""
    _logger.error("Unexpected error in %s", where, exc_info=exc)
    return error_response(
        MlflowException(f"Internal server error ({type(exc).__name__}) in {where}.", INTERNAL_ERROR)
    )


def not_found() -> Response:
    return Response(NOT_FOUND_HTML, status_code=404, media_type="text/html")


def method_not_allowed(allowed: list[str]) -> Response:
    methods = sorted({*allowed, "OPTIONS", *(["HEAD"] if "GET" in allowed else [])})
    return Response(
        METHOD_NOT_ALLOWED_HTML,
        status_code=405,
        media_type="text/html",
        headers={"Allow": ", ".join(methods)},
    )
