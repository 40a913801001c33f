"""Actors that step a scan through its states. Messages carry the scan id only."""

from __future__ import annotations

import logging
import uuid

import dramatiq

from actors.broker import QUEUE_NAME
from actors.runtime import runtime
from service.backend_mode import Followup
from service.logs import scan_context

logger = logging.getLogger(__name__)

# Dramatiq retries failures the steps do not handle themselves (database down, a bug)
# with backoff. Once its retries run out, the sweeper re-drives the scan.
_ACTOR_OPTIONS = {
    "queue_name": QUEUE_NAME,
    "max_retries": 8,
    "min_backoff": 1_000,
    "max_backoff": 120_000,
    "time_limit": 300_000,
}


@dramatiq.actor(**_ACTOR_OPTIONS)
def start_scan(scan_id: str) -> None:
    """Register the registry credentials and queue the image in Sysdig Secure."""
    with scan_context(scan_id):
        parsed = _parse(scan_id)
        if parsed is not None:
            schedule(scan_id, runtime().scanner.start(parsed))


@dramatiq.actor(**_ACTOR_OPTIONS)
def poll_scan(scan_id: str) -> None:
    """Check the analysis and store the report once Sysdig has finished."""
    with scan_context(scan_id):
        parsed = _parse(scan_id)
        if parsed is not None:
            schedule(scan_id, runtime().scanner.poll(parsed))


def schedule(scan_id: str, followup: Followup | None) -> None:
    """Send the message for `followup` with the delay it names."""
    if followup is None:
        return
    actor = start_scan if followup.step == "start" else poll_scan
    actor.send_with_options(args=(scan_id,), delay=int(followup.delay * 1000))


def publish_new_scan(scan_id: str) -> None:
    """Enqueue the first step of a newly stored scan (called by the API)."""
    start_scan.send(scan_id)


def _parse(scan_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(scan_id)
    except (ValueError, TypeError, AttributeError):
        logger.error("message carries %r, which is not a scan id; dropping it", str(scan_id)[:64])
        return None
