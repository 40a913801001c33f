"""Handlers of Harbor's three routes and the probes. They read and write PostgreSQL only."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sanic import HTTPResponse, Request, Sanic

from service.api import media
from service.api.responses import error_response, json_response
from service.api.scan_request import ScanRequest, parse_scan_request
from service.errors import ClientError
from service.logs import scan_context
from service.persistence.models import Scan
from service.persistence.scans import find_scan, insert_scan
from service.report import report_for_media_type
from service.scan import PENDING_STATES, ScanMode, ScanState

logger = logging.getLogger(__name__)


def setup_routes(app: Sanic) -> None:
    app.add_route(get_metadata, "/api/v1/metadata", methods=["GET"])
    app.add_route(accept_scan_request, "/api/v1/scan", methods=["POST"])
    app.add_route(get_scan_report, "/api/v1/scan/<scan_request_id:str>/report", methods=["GET"])
    app.add_route(probe_healthy, "/probe/healthy", methods=["GET"])
    app.add_route(probe_ready, "/probe/ready", methods=["GET"])


async def get_metadata(request: Request) -> HTTPResponse:
    return json_response(request.app.ctx.metadata.document(), 200, media.METADATA)


async def accept_scan_request(request: Request) -> HTTPResponse:
    """Store the scan request and enqueue its first step; Sysdig is not called here."""
    scan_request = parse_scan_request(request.body)
    scan = _new_scan(request.app, scan_request)

    async with request.app.ctx.sessions.begin() as session:
        await insert_scan(session, scan)

    with scan_context(scan.id):
        logger.info(
            "accepted scan of %s/%s@%s", scan_request.registry_host, scan_request.repository, scan_request.digest
        )
        try:
            await request.app.ctx.publish_scan(str(scan.id))
        except Exception as exc:  # the row is stored; the sweeper re-drives the scan
            logger.warning("could not publish the scan; the sweeper will start it: %s", type(exc).__name__)

    return json_response({"id": str(scan.id)}, 202, media.SCAN_RESPONSE)


def _new_scan(app: Sanic, scan_request: ScanRequest) -> Scan:
    settings = app.ctx.settings
    credentials = app.ctx.cipher.encrypt(scan_request.authorization) if scan_request.authorization else None
    return Scan(
        id=uuid.uuid4(),
        mode=(ScanMode.INLINE if settings.inline_scanning else ScanMode.BACKEND).value,
        registry_url=scan_request.registry_url,
        repository=scan_request.repository,
        digest=scan_request.digest,
        tag=scan_request.tag,
        manifest_media_type=scan_request.manifest_media_type,
        registry_credentials=credentials,
        deadline_at=datetime.now(UTC) + timedelta(seconds=settings.scan_deadline),
    )


async def get_scan_report(request: Request, scan_request_id: str) -> HTTPResponse:
    """302 while the scan runs, 200 with the report, 500 with the reason once it failed."""
    scan_id = _parse_scan_id(scan_request_id)
    async with request.app.ctx.sessions() as session:
        scan = await find_scan(session, scan_id)
    if scan is None:
        raise ClientError(404, f"scan {scan_request_id} not found")

    media_type = media.choose_report_type(request.headers.get("Accept"))
    if media_type is None:
        raise ClientError(
            501,
            f"report type {request.headers.get('Accept')[:200]!r} is not produced by this scanner; "
            f"ask for {media.VULNERABILITY_REPORT_V1_1!r}",
        )

    with scan_context(scan.id):
        return _report_response(request.app, scan, media_type)


def _report_response(app: Sanic, scan: Scan, media_type: str) -> HTTPResponse:
    state = ScanState(scan.state)
    if state is ScanState.REPORT_READY:
        return json_response(report_for_media_type(scan.report, media_type), 200, media_type)

    if state is ScanState.FAILED:
        return error_response(500, f"scan failed: {scan.last_error or 'no reason recorded'}")

    if state in PENDING_STATES and scan.deadline_at < datetime.now(UTC):
        # The worker records the failure on its next sweep; Harbor learns it now.
        timeout = int(app.ctx.settings.scan_deadline)
        return error_response(500, f"scan failed: it did not finish within {timeout} seconds")

    return HTTPResponse(status=302, headers={"Refresh-After": str(app.ctx.settings.refresh_after)})


def _parse_scan_id(raw: str) -> uuid.UUID:
    """Accept only the id form POST /scan returns (36 characters, hyphenated), in any case."""
    try:
        scan_id = uuid.UUID(raw)
    except ValueError:
        scan_id = None
    if scan_id is None or str(scan_id) != raw.lower():
        raise ClientError(404, f"scan {raw[:100]!r} not found: scan ids are UUIDs returned by POST /api/v1/scan")
    return scan_id


async def probe_healthy(request: Request) -> HTTPResponse:
    return json_response({"status": "ok"}, 200, "application/json")


async def probe_ready(request: Request) -> HTTPResponse:
    checks = {
        "database": await request.app.ctx.database_ready(),
        "broker": await request.app.ctx.broker_ready(),
    }
    ready = all(checks.values())
    return json_response({"ready": ready, "checks": checks}, 200 if ready else 503, "application/json")
