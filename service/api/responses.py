"""Responses in Harbor's media types, including the error envelope."""

from __future__ import annotations

import json
import logging
from typing import Any

from sanic import HTTPResponse, Request
from sanic.exceptions import SanicException, ServiceUnavailable

from service.api import media
from service.errors import ClientError

logger = logging.getLogger(__name__)


def json_response(body: Any, status: int, content_type: str, headers: dict[str, str] | None = None) -> HTTPResponse:
    return HTTPResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        headers=headers,
        content_type=content_type,
    )


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> HTTPResponse:
    """Render Harbor's error envelope; Harbor copies `message` into the scan log users read."""
    return json_response({"error": {"message": message}}, status, media.ERROR, headers)


def handle_client_error(request: Request, exc: ClientError) -> HTTPResponse:
    logger.info("rejected %s %s with %d: %s", request.method, request.path, exc.status, exc.message)
    return error_response(exc.status, exc.message)


def handle_sanic_error(request: Request, exc: SanicException) -> HTTPResponse:
    """Put Sanic's own errors (404 route, 405, 413, ...) in the envelope, quietly."""
    status = getattr(exc, "status_code", 500) or 500
    if isinstance(exc, ServiceUnavailable):
        # Sanic's response timeout, typically a client that sent less body than announced.
        logger.warning("request %s %s timed out: %s", request.method, request.path, exc)
        return error_response(status, "request timed out before the adapter could answer it")
    if status >= 500:
        logger.error("request %s %s failed: %s", request.method, request.path, exc, exc_info=exc)
        return error_response(status, "internal error; see the adapter's log")
    return error_response(status, str(exc) or "request rejected", getattr(exc, "headers", None))


def handle_database_error(request: Request, exc: Exception) -> HTTPResponse:
    """Tell Harbor the database is out of reach; the outage is logged without a traceback."""
    logger.error("request %s %s failed: database unavailable (%s)", request.method, request.path, type(exc).__name__)
    return error_response(500, "the adapter cannot reach its database; nothing was changed, try again later")


def handle_unexpected_error(request: Request, exc: Exception) -> HTTPResponse:
    logger.error("request %s %s failed unexpectedly", request.method, request.path, exc_info=exc)
    return error_response(500, "internal error; see the adapter's log")
