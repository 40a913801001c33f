"""A client that calls the adapter the way Harbor's scan job does, for the demo and tests.

It keeps the Harbor habits that matter to an adapter. Each call has a 5 s timeout and
follows no redirects, and `Accept` carries the exact media types. Metadata is validated
before each scan, and every advertised report type is polled. `Refresh-After` is read as
a signed 8-bit integer, and any status other than 200 or 302 ends the scan at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

METADATA_TYPE = "application/vnd.scanner.adapter.metadata+json; version=1.0"
SCAN_REQUEST_TYPE = "application/vnd.scanner.adapter.scan.request+json; version=1.0"
SCAN_RESPONSE_TYPE = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
REPORT_TYPES = (
    "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0",
    "application/vnd.security.vulnerability.report; version=1.1",
    "application/vnd.security.sbom.report+json; version=1.0",
)
HARBOR_TIMEOUT_SECONDS = 5.0
DEFAULT_REFRESH_AFTER = 5


class HarborScanError(Exception):
    """The scan failed the way Harbor would record it in the scan log."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (unexpected status code: {status}, expected: 200)")
        self.status = status
        self.message = message


@dataclass
class PollRecord:
    status: int
    refresh_after: str | None


class HarborClient:
    def __init__(self, base_url: str, api_key: str | None = None, first_poll_delay: float = 2.0) -> None:
        headers = {"X-ScannerAdapter-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=HARBOR_TIMEOUT_SECONDS, follow_redirects=False, headers=headers
        )
        self._first_poll_delay = first_poll_delay
        self.polls: list[PollRecord] = []

    def close(self) -> None:
        self._http.close()

    def metadata(self) -> dict[str, Any]:
        """Fetch and validate the metadata as Harbor does before every scan."""
        response = self._http.get("/api/v1/metadata", headers={"Accept": METADATA_TYPE})
        if response.status_code != 200:
            raise HarborScanError(response.status_code, _envelope_message(response))
        metadata = response.json()
        check_metadata(metadata)
        return metadata

    def submit(self, scan_request: dict[str, Any]) -> str:
        response = self._http.post(
            "/api/v1/scan",
            json=scan_request,
            headers={"Content-Type": SCAN_REQUEST_TYPE, "Accept": SCAN_RESPONSE_TYPE},
        )
        if response.status_code != 202:
            raise HarborScanError(response.status_code, _envelope_message(response))
        return response.json()["id"]

    def wait_for_report(self, scan_id: str, media_type: str, max_wait: float = 120.0) -> dict[str, Any]:
        """Poll one report type until 200, honouring Refresh-After; raise on any other status."""
        time.sleep(self._first_poll_delay)
        deadline = time.monotonic() + max_wait
        while time.monotonic() < deadline:
            response = self._http.get(f"/api/v1/scan/{scan_id}/report", headers={"Accept": media_type})
            self.polls.append(PollRecord(response.status_code, response.headers.get("Refresh-After")))
            if response.status_code == 200:
                return response.json()
            if response.status_code != 302:
                raise HarborScanError(response.status_code, _envelope_message(response))
            time.sleep(refresh_after_seconds(response.headers.get("Refresh-After")))
        raise TimeoutError(f"scan {scan_id} had no report after {max_wait:.0f} s")

    def scan(self, scan_request: dict[str, Any], max_wait: float = 120.0) -> tuple[str, dict[str, dict[str, Any]]]:
        """Run one scan job: metadata, submit, then every advertised report type."""
        metadata = self.metadata()
        scan_id = self.submit(scan_request)
        produced = [
            media_type
            for capability in metadata["capabilities"]
            if capability.get("type", "vulnerability") == "vulnerability"
            for media_type in capability["produces_mime_types"]
        ]
        reports = {media_type: self.wait_for_report(scan_id, media_type, max_wait) for media_type in produced}
        return scan_id, reports


def check_metadata(metadata: dict[str, Any]) -> None:
    """Raise ValueError where Harbor would refuse the scanner's metadata."""
    scanner = metadata.get("scanner") or {}
    for key in ("name", "vendor", "version"):
        if not scanner.get(key):
            raise ValueError(f"scanner.{key} is empty, so Harbor rejects the registration")
    capabilities = metadata.get("capabilities") or []
    if not capabilities:
        raise ValueError("metadata lists no capabilities")
    for capability in capabilities:
        if DOCKER_MANIFEST_V2 not in capability.get("consumes_mime_types", []):
            raise ValueError("a capability does not consume the Docker v2 manifest type")
        if not set(REPORT_TYPES) & set(capability.get("produces_mime_types", [])):
            raise ValueError("a capability produces no report type Harbor understands")


def refresh_after_seconds(value: str | None) -> int:
    """Read Refresh-After as Harbor does: a signed 8-bit integer, else 5; at least 0."""
    try:
        seconds = int(value) if value is not None else DEFAULT_REFRESH_AFTER
    except ValueError:
        return DEFAULT_REFRESH_AFTER
    if not -128 <= seconds <= 127:
        return DEFAULT_REFRESH_AFTER
    return max(seconds, 0)


def _envelope_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"response body is not the error envelope: {response.text[:200]!r}"
