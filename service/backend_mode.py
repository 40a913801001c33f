"""The steps of a backend-mode scan: Sysdig Secure's backend pulls and analyses the image.

Each step re-reads the scan row, does one piece of work, makes at most one guarded
transition and returns the step that should run next. Steps are safe to run twice: a step that
finds its scan in another state returns without doing anything.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.credentials import CredentialsCipher, RegistryCredentials, parse_basic
from service.errors import ScanFailed, TransientError, TransitionConflict
from service.persistence import scans
from service.persistence.models import Scan
from service.report import build_report, findings_of
from service.scan import ScanState, scanner_identity
from service.sysdig.client import AnalysisStatus, ImageNotAnalyzed, SecureClient

logger = logging.getLogger(__name__)

# How long a scan waits before asking again for a registry host another scan holds.
REGISTRY_BUSY_DELAY_SECONDS = 2.0


@dataclass(frozen=True)
class Followup:
    """The next step of a scan and how long to wait before it."""

    step: Literal["start", "poll"]
    delay: float


class BackendScanner:
    """Runs the steps of backend-mode scans; one instance per worker process."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], client: SecureClient, cipher: CredentialsCipher
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._client = client
        self._cipher = cipher

    # --- start: register credentials and queue the image -------------------------------

    def start(self, scan_id: uuid.UUID) -> Followup | None:
        return self._run_step(scan_id, ScanState.SUBMITTED, "start", self._start)

    def _start(self, scan: Scan) -> Followup | None:
        host = registry_host(scan.registry_url)
        credentials = self._registry_credentials(scan)

        if credentials is not None and not self._claim_registry(host, scan):
            logger.info("registry %s is in use by another scan; waiting", host)
            with self._sessions.begin() as session:
                scans.record_progress(session, scan.id, ScanState.SUBMITTED)
            return Followup("start", REGISTRY_BUSY_DELAY_SECONDS)

        self._client.register_registry(host, credentials, verify_tls=self._settings.secure.registry_verify_tls)
        queued_digest = self._client.add_image(f"{host}/{scan.repository}@{scan.digest}")
        if queued_digest != scan.digest:
            raise ScanFailed(
                f"Sysdig Secure queued digest {queued_digest} instead of the requested {scan.digest}"
            )

        with self._sessions.begin() as session:
            scans.transition(
                session,
                scan.id,
                ScanState.SUBMITTED,
                ScanState.SCANNING,
                reason="image queued in Sysdig Secure",
                scanning_started_at=datetime.now(UTC),
                # The analysis gets a full deadline, whatever time the scan spent waiting
                # for its registry host.
                deadline_at=datetime.now(UTC) + timedelta(seconds=self._settings.scan_deadline),
                attempts=0,
            )
        logger.info("image queued in Sysdig Secure; polling its analysis")
        return Followup("poll", self._settings.worker.poll_initial_delay)

    def _registry_credentials(self, scan: Scan) -> RegistryCredentials | None:
        if scan.registry_credentials is None:
            return None
        authorization = self._cipher.decrypt(scan.registry_credentials)
        if authorization.lower().startswith("bearer "):
            raise ScanFailed(
                "Sysdig Secure pulls with a user name and password, but Harbor sent a Bearer token; "
                "use Harbor's default Basic robot credentials for this scanner"
            )
        try:
            return parse_basic(authorization)
        except ValueError as exc:
            raise ScanFailed(f"stored registry authorization {exc}") from None

    def _claim_registry(self, host: str, scan: Scan) -> bool:
        ttl = timedelta(seconds=self._settings.worker.registry_lease_seconds)
        with self._sessions.begin() as session:
            return scans.claim_registry_lease(session, host, scan.id, ttl)

    # --- poll: follow the analysis and store the report -----------------------------------

    def poll(self, scan_id: uuid.UUID) -> Followup | None:
        return self._run_step(scan_id, ScanState.SCANNING, "poll", self._poll)

    def _poll(self, scan: Scan) -> Followup | None:
        status = self._client.analysis_status(scan.digest)
        if status.state == "analyzed":
            try:
                self._store_report(scan, status)
            except ImageNotAnalyzed as exc:
                status = exc.status  # the vulnerability call disagrees, and its result is the newer one
            else:
                return None

        if status.state == "failed":
            raise ScanFailed(f"Sysdig Secure could not analyse the image ({status.detail or 'analysis_failed'})")
        if status.state == "not_found" and self._past_not_found_grace(scan):
            raise ScanFailed(
                "image not found in Sysdig Secure; check that Sysdig can reach the registry URL Harbor sent "
                f"({scan.registry_url}) and that the scanner is registered without 'use internal address'"
            )
        return self._wait_for_analysis(scan, status)

    def _wait_for_analysis(self, scan: Scan, status: AnalysisStatus) -> Followup:
        with self._sessions.begin() as session:
            scans.record_progress(session, scan.id, ScanState.SCANNING)
            if scan.registry_credentials is not None:
                # Sysdig may still be pulling with this scan's credentials: keep the host.
                ttl = timedelta(seconds=self._settings.worker.registry_lease_seconds)
                scans.claim_registry_lease(session, registry_host(scan.registry_url), scan.id, ttl)
        delay = self._backoff(scan.attempts)
        logger.debug("analysis is %s (%s); next poll in %.1f s", status.state, status.detail, delay)
        return Followup("poll", delay)

    def _store_report(self, scan: Scan, status: AnalysisStatus) -> None:
        vulnerabilities = self._client.vulnerabilities(scan.digest)
        ids = sorted({str(item.get("vuln")) for item in vulnerabilities if isinstance(item.get("vuln"), str)})
        descriptions = self._client.descriptions(ids)

        generated_at = status.analyzed_at or datetime.now(UTC)
        report = build_report(
            vulnerabilities,
            descriptions,
            artifact=_artifact(scan),
            scanner=scanner_identity(),
            generated_at=generated_at,
        )
        with self._sessions.begin() as session:
            scans.insert_findings(session, scan.id, findings_of(report))
            scans.transition(
                session,
                scan.id,
                ScanState.SCANNING,
                ScanState.REPORT_READY,
                reason=f"report stored with {len(report['vulnerabilities'])} vulnerabilities",
                report=report,
                report_generated_at=generated_at,
            )
            scans.release_leases_of(session, scan.id)
        logger.info("report ready with %d vulnerabilities", len(report["vulnerabilities"]))

    def _past_not_found_grace(self, scan: Scan) -> bool:
        started = scan.scanning_started_at or scan.created_at
        return datetime.now(UTC) - started > timedelta(seconds=self._settings.not_found_grace)

    # --- shared ---------------------------------------------------------------------------

    def _run_step(
        self,
        scan_id: uuid.UUID,
        expected: ScanState,
        step: Literal["start", "poll"],
        body: Callable[[Scan], Followup | None],
    ) -> Followup | None:
        """Run `body` on the scan if it is still in `expected`, turning errors into outcomes."""
        scan = self._load(scan_id, expected)
        if scan is None:
            return None
        try:
            return body(scan)
        except TransientError as exc:
            return self._retry_later(scan, expected, step, exc)
        except ScanFailed as exc:
            self.fail(scan.id, expected, str(exc))
            return None
        except TransitionConflict:
            logger.info("another worker moved the scan on first; this %s step stops here", step)
            return None

    def fail(self, scan_id: uuid.UUID, source: ScanState, reason: str) -> bool:
        """Move a scan to `failed` with `reason`; returns False if it had already moved on."""
        try:
            with self._sessions.begin() as session:
                scans.transition(session, scan_id, source, ScanState.FAILED, reason=reason)
                scans.release_leases_of(session, scan_id)
        except TransitionConflict:
            logger.info("scan already left %s; not marking it failed", source)
            return False
        logger.warning("scan failed: %s", reason)
        return True

    def _load(self, scan_id: uuid.UUID, expected: ScanState) -> Scan | None:
        with self._sessions() as session:
            scan = scans.get_scan(session, scan_id)
        if scan is None:
            logger.warning("scan does not exist; dropping the message")
            return None
        if scan.state != expected.value:
            logger.debug("scan is %s, not %s; nothing to do", scan.state, expected)
            return None
        if scan.deadline_at < datetime.now(UTC):
            self.fail(scan.id, expected, f"it did not finish within {int(self._settings.scan_deadline)} seconds")
            return None
        return scan

    def _retry_later(self, scan: Scan, state: ScanState, step: Literal["start", "poll"], exc: TransientError) -> Followup:
        delay = max(exc.retry_after or 0.0, self._backoff(scan.attempts))
        with self._sessions.begin() as session:
            scans.record_progress(session, scan.id, state, last_error=str(exc))
        logger.info("%s step will retry in %.1f s: %s", step, delay, exc)
        return Followup(step, delay)

    def _backoff(self, attempts: int) -> float:
        worker = self._settings.worker
        delay = min(worker.poll_initial_delay * 2 ** min(attempts, 16), worker.poll_max_delay)
        return delay * random.uniform(0.9, 1.1)


def registry_host(registry_url: str) -> str:
    """`host[:port]` of a registry URL; Sysdig keys credentials and image names by it."""
    return urlsplit(registry_url).netloc


def _artifact(scan: Scan) -> dict[str, str]:
    artifact = {"repository": scan.repository, "digest": scan.digest, "mime_type": scan.manifest_media_type}
    if scan.tag:
        artifact["tag"] = scan.tag
    return artifact
