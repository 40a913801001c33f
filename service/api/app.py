"""Sanic application factory: one `setup_<concern>` per concern."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.api import responses, routes
from service.api.metadata import MetadataCache
from service.config import Settings
from service.credentials import CredentialsCipher
from service.errors import ClientError
from service.persistence.engine import async_sessions, create_api_engine

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 2.0
# Harbor gives POST /scan 5 s in all. A publish that takes longer is abandoned: the row is
# stored, and the sweeper starts the scan.
PUBLISH_TIMEOUT_SECONDS = 2.0
MAX_REQUEST_BYTES = 1024 * 1024  # a scan request is well under 2 KiB

Publish = Callable[[str], None]
BrokerCheck = Callable[[], bool]


def create_app(
    settings: Settings,
    publish: Publish,
    broker_ready: BrokerCheck,
    name: str = "harbor-scanner-sysdig",
) -> Sanic:
    """Build the API. `publish(scan_id)` enqueues the first step of a scan (blocking call)."""
    app = Sanic(name, configure_logging=False)
    app.config.REQUEST_MAX_SIZE = MAX_REQUEST_BYTES
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.ctx.settings = settings
    app.ctx.cipher = CredentialsCipher(settings.credentials_keys)

    setup_database(app, settings)
    setup_broker(app, publish, broker_ready)
    setup_metadata(app, settings)
    setup_auth(app, settings)
    setup_errors(app)
    routes.setup_routes(app)
    return app


def setup_database(app: Sanic, settings: Settings) -> None:
    @app.before_server_start
    async def open_engine(app: Sanic) -> None:
        app.ctx.engine = create_api_engine(settings.database_url)
        app.ctx.sessions = async_sessions(app.ctx.engine)

    @app.after_server_stop
    async def close_engine(app: Sanic) -> None:
        await app.ctx.engine.dispose()

    async def database_ready() -> bool:
        try:
            async with app.ctx.engine.connect() as connection:
                await asyncio.wait_for(connection.execute(text("SELECT 1")), PROBE_TIMEOUT_SECONDS)
            return True
        except Exception as exc:  # any failure means "not ready"; the probe reports it
            logger.warning("readiness: database check failed: %s", type(exc).__name__)
            return False

    app.ctx.database_ready = database_ready


def setup_broker(app: Sanic, publish: Publish, broker_ready: BrokerCheck) -> None:
    # Publishing with pika blocks, so it runs on a small pool beside the event loop.
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="publish")

    async def publish_scan(scan_id: str) -> None:
        publishing = asyncio.get_running_loop().run_in_executor(executor, publish, scan_id)
        await asyncio.wait_for(publishing, PUBLISH_TIMEOUT_SECONDS)

    async def broker_is_ready() -> bool:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(executor, broker_ready), PROBE_TIMEOUT_SECONDS)
        except Exception as exc:
            logger.warning("readiness: broker check failed: %s", type(exc).__name__)
            return False

    @app.after_server_stop
    async def stop_executor(app: Sanic) -> None:
        executor.shutdown(wait=False, cancel_futures=True)

    app.ctx.publish_scan = publish_scan
    app.ctx.broker_ready = broker_is_ready


def setup_metadata(app: Sanic, settings: Settings) -> None:
    app.ctx.metadata = MetadataCache(settings)

    @app.after_server_start
    async def start_refresh(app: Sanic) -> None:
        app.ctx.metadata_refresh = asyncio.get_running_loop().create_task(
            app.ctx.metadata.refresh_forever(app.ctx.sessions), name="metadata-refresh"
        )

    @app.before_server_stop
    async def stop_refresh(app: Sanic) -> None:
        await stop_metadata_refresh(app)


async def stop_metadata_refresh(app: Sanic) -> None:
    """Cancel the refresh task and wait for it, so its pooled connection is returned.

    A connection abandoned mid-transaction would keep its lock on the table and block
    schema changes until the process exits.
    """
    task = getattr(app.ctx, "metadata_refresh", None)
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup_auth(app: Sanic, settings: Settings) -> None:
    """Require one of SCANNER_API_KEYS on Harbor's routes when any is configured.

    Harbor sends the key as `X-ScannerAdapter-API-Key` (API key mode) or as
    `Authorization: Bearer` (Bearer mode). Probes stay open for the orchestrator.
    """
    if not settings.api_keys:
        logger.warning("SCANNER_API_KEYS is not set: Harbor's routes accept requests without authentication")
        return
    keys = [key.encode() for key in settings.api_keys]

    @app.on_request
    async def authenticate(request: Request) -> None:
        if not request.path.startswith("/api/"):
            return
        presented = request.headers.get("X-ScannerAdapter-API-Key") or _bearer(request.headers.get("Authorization"))
        if presented is None or not _matches_any(presented.encode(), keys):
            raise ClientError(401, "missing or invalid credentials; configure the scanner's API key in Harbor")


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _matches_any(presented: bytes, keys: list[bytes]) -> bool:
    # Compare against every key so the time taken does not reveal which one matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key)
    return matched


def setup_errors(app: Sanic) -> None:
    app.error_handler.add(ClientError, responses.handle_client_error)
    app.error_handler.add(SanicException, responses.handle_sanic_error)
    # Connection failures reach the handlers as SQLAlchemy errors or, while connecting,
    # as OSError and timeouts from asyncpg.
    for database_error in (SQLAlchemyError, OSError, asyncio.TimeoutError):
        app.error_handler.add(database_error, responses.handle_database_error)
    app.error_handler.add(Exception, responses.handle_unexpected_error)
