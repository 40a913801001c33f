"""Scanner metadata served to Harbor from memory, refreshed from PostgreSQL in the background."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from service.api import media
from service.config import Settings
from service.persistence.scans import read_database_updated_at
from service.scan import scanner_identity

logger = logging.getLogger(__name__)

# Key of the vulnerability_database row that the worker fills from Sysdig's feeds call.
LEGACY_SCANNING_BACKEND = "sysdig-secure-legacy-scanning"

SCANNER_TYPE_PROPERTY = "harbor.scanner-adapter/scanner-type"
DATABASE_UPDATED_AT_PROPERTY = "harbor.scanner-adapter/vulnerability-database-updated-at"

REFRESH_INTERVAL_SECONDS = 30.0
REFRESH_TIMEOUT_SECONDS = 5.0
FIRST_VALUE_INTERVAL_SECONDS = 2.0


class MetadataCache:
    """The metadata document Harbor fetches before every scan.

    Harbor caches errors for 30 s, so serving never waits on the database or Sysdig:
    it reads what the last background refresh stored.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._refresh_failing = False
        self.database_updated_at: datetime | None = None

    def document(self) -> dict[str, Any]:
        properties = {SCANNER_TYPE_PROPERTY: "os-package-vulnerability"}
        if self.database_updated_at is not None:
            properties[DATABASE_UPDATED_AT_PROPERTY] = rfc3339(self.database_updated_at)

        return {
            "scanner": scanner_identity(),
            "capabilities": [
                {
                    "type": "vulnerability",
                    "consumes_mime_types": list(media.SCANNABLE_MANIFEST_TYPES),
                    "produces_mime_types": [media.VULNERABILITY_REPORT_V1_1],
                }
            ],
            "properties": properties,
        }

    async def refresh(self, sessions: async_sessionmaker) -> None:
        """Load the vulnerability database time; on failure keep the last known value."""
        try:
            async with sessions() as session:
                updated_at = await asyncio.wait_for(
                    read_database_updated_at(session, LEGACY_SCANNING_BACKEND), REFRESH_TIMEOUT_SECONDS
                )
        except Exception as exc:  # the database may be down, and metadata must still be served
            if not self._refresh_failing:  # once per outage, not every few seconds
                logger.warning("could not refresh the vulnerability database time: %s", type(exc).__name__)
            self._refresh_failing = True
            return

        if self._refresh_failing:
            logger.info("vulnerability database time readable again")
        self._refresh_failing = False
        if updated_at is not None:
            self.database_updated_at = updated_at

    async def refresh_forever(self, sessions: async_sessionmaker) -> None:
        while True:
            await self.refresh(sessions)
            # Until the worker has stored a first value, look again soon.
            known = self.database_updated_at is not None
            await asyncio.sleep(REFRESH_INTERVAL_SECONDS if known else FIRST_VALUE_INTERVAL_SECONDS)


def rfc3339(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with whole seconds, e.g. 2026-01-31T10:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
