"""Backend-mode scan steps against a real PostgreSQL and the Sysdig Secure double over HTTP.

The tests call `BackendScanner.start` and `poll` the way the actors do, sleeping each
returned Followup's delay, so every Sysdig call crosses a real loopback HTTP connection.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.backend_mode import BackendScanner, Followup
from service.config import Settings
from service.credentials import CredentialsCipher
from service.persistence.engine import create_sync_engine, sync_sessions
from service.persistence.models import Finding, RegistryLease, Scan, ScanEvent
from service.scan import ScanState
from service.sysdig.client import SecureClient
from tests.doubles.sysdig_secure import SysdigSecureDouble, recorded_vulnerabilities
from tests.test_state_machine import (
    REGISTRY_HOST,
    REPOSITORY,
    ROBOT,
    ROBOT_SECRET,
    basic_authorization,
    event_rows,
    random_digest,
    run_concurrently,
    scan_row,
    store_scan,
)

SYSDIG_TOKEN = "sysdig-api-token-" + uuid.uuid4().hex
ANALYSIS_SECONDS = 0.3
MAX_STEPS = 60

SUBMITTED, SCANNING, REPORT_READY, FAILED = (state.value for state in ScanState)
HAPPY_EVENTS = [(None, SUBMITTED), (SUBMITTED, SCANNING), (SCANNING, REPORT_READY)]


class Harness:
    """One BackendScanner on a sync engine, pointed at the Sysdig double."""

    def __init__(self, settings: Settings, double: SysdigSecureDouble) -> None:
        self.settings = settings
        self.double = double
        self.engine = create_sync_engine(settings.database_url, pool_size=8)
        self.sessions: sessionmaker[Session] = sync_sessions(self.engine)
        self.cipher = CredentialsCipher(settings.credentials_keys)
        self.client = SecureClient(settings.secure)
        self.scanner = BackendScanner(settings, self.sessions, self.client, self.cipher)

    def close(self) -> None:
        self.client.close()
        self.engine.dispose()

    def store(self, **fields) -> uuid.UUID:
        return store_scan(self.sessions, self.cipher, **fields)

    def scan(self, scan_id: uuid.UUID) -> Scan:
        return scan_row(self.sessions, scan_id)

    def events(self, scan_id: uuid.UUID) -> list[tuple[str | None, str]]:
        return [(source, target) for source, target, _ in event_rows(self.sessions, scan_id)]

    def step(self, scan_id: uuid.UUID, step: str) -> Followup | None:
        return self.scanner.start(scan_id) if step == "start" else self.scanner.poll(scan_id)

    def drive(self, scan_id: uuid.UUID, followup: Followup | None) -> list[Followup]:
        """Run the step each Followup names after its delay, until a step returns None; return every Followup."""
        followups: list[Followup] = []
        for _ in range(MAX_STEPS):
            if followup is None:
                return followups
            followups.append(followup)
            time.sleep(followup.delay)
            followup = self.step(scan_id, followup.step)
        raise AssertionError(f"scan {scan_id} did not stop within {MAX_STEPS} steps: {followups[-3:]}")

    def run(self, scan_id: uuid.UUID) -> list[Followup]:
        return self.drive(scan_id, Followup("start", 0.0))

    def findings(self, scan_id: uuid.UUID) -> list[tuple[str, str, str]]:
        with self.sessions() as session:
            rows = session.execute(
                select(Finding.vulnerability_id, Finding.package, Finding.version).where(Finding.scan_id == scan_id)
            )
            return sorted(tuple(row) for row in rows)

    def lease_count(self) -> int:
        with self.sessions() as session:
            return session.execute(select(func.count()).select_from(RegistryLease)).scalar_one()

    def all_reasons(self) -> list[str]:
        with self.sessions() as session:
            errors = session.execute(select(Scan.last_error).where(Scan.last_error.is_not(None))).scalars()
            reasons = session.execute(select(ScanEvent.reason).where(ScanEvent.reason.is_not(None))).scalars()
            return [*errors, *reasons]

    def all_reports(self) -> str:
        with self.sessions() as session:
            reports = session.execute(select(Scan.report).where(Scan.report.is_not(None))).scalars()
            return json.dumps(list(reports))


@pytest.fixture
def double() -> Iterator[SysdigSecureDouble]:
    with SysdigSecureDouble(analysis_seconds=ANALYSIS_SECONDS, token=SYSDIG_TOKEN) as running:
        yield running


@pytest.fixture
def make_harness(make_settings, double):
    harnesses: list[Harness] = []

    def build(**overrides: str) -> Harness:
        environ = {
            "SECURE_URL": double.url,
            "SECURE_API_TOKEN": SYSDIG_TOKEN,
            "POLL_INITIAL_DELAY_SECONDS": "0.1",
            "POLL_MAX_DELAY_SECONDS": "0.3",
            "SECURE_MAX_ATTEMPTS": "2",
            "SECURE_MAX_RETRY_WAIT": "0.2",
            "SECURE_READ_TIMEOUT": "5",
            "NOT_FOUND_GRACE_SECONDS": "0.5",
        }
        environ.update(overrides)
        harness = Harness(make_settings(**environ), double)
        harnesses.append(harness)
        return harness

    yield build

    for harness in harnesses:
        harness.close()


@pytest.fixture
def harness(make_harness) -> Harness:
    return make_harness()


def recorded_findings() -> list[tuple[str, str, str]]:
    return sorted({(item["vuln"], item["package_name"], item["package_version"]) for item in recorded_vulnerabilities()})


# --- happy path ----------------------------------------------------------------------------------


def test_scan_reaches_report_ready(harness, double):
    digest = random_digest()
    scan_id = harness.store(digest=digest)

    first = harness.scanner.start(scan_id)

    assert first is not None
    assert first.step == "poll"
    assert harness.scan(scan_id).state == SCANNING
    assert double.images_added == [f"{REGISTRY_HOST}/{REPOSITORY}@{digest}"]

    harness.drive(scan_id, first)

    scan = harness.scan(scan_id)
    assert scan.state == REPORT_READY
    assert scan.registry_credentials is None
    assert harness.events(scan_id) == HAPPY_EVENTS
    assert harness.lease_count() == 0


def test_report_and_findings_match_recorded_data(harness):
    digest = random_digest()
    scan_id = harness.store(digest=digest)

    harness.run(scan_id)

    report = harness.scan(scan_id).report
    assert report["artifact"]["digest"] == digest
    items = sorted((item["id"], item["package"], item["version"]) for item in report["vulnerabilities"])
    assert items == recorded_findings()
    assert harness.findings(scan_id) == recorded_findings()


def test_registry_gets_scans_own_credentials(harness, double):
    scan_id = harness.store()
    harness.run(scan_id)

    (registered,) = double.registered_credentials[REGISTRY_HOST]
    assert (registered.user, registered.password) == (ROBOT, ROBOT_SECRET)


# --- redelivered messages ------------------------------------------------------------------------


def test_start_again_after_scanning_changes_nothing(harness, double):
    scan_id = harness.store()
    followup = harness.scanner.start(scan_id)
    requests_before = len(double.requests)
    events_before = harness.events(scan_id)

    again = harness.scanner.start(scan_id)

    assert again is None
    assert len(double.requests) == requests_before
    assert harness.events(scan_id) == events_before
    assert harness.scan(scan_id).state == SCANNING
    harness.drive(scan_id, followup)
    assert harness.scan(scan_id).state == REPORT_READY


def test_poll_again_after_report_ready_changes_nothing(harness, double):
    scan_id = harness.store()
    harness.run(scan_id)
    report_before = harness.scan(scan_id).report
    events_before = harness.events(scan_id)
    findings_before = harness.findings(scan_id)
    add_image_calls = len(double.requests_of("add_image"))
    vulnerability_calls = len(double.requests_of("vulnerabilities"))

    assert harness.scanner.poll(scan_id) is None
    assert harness.scanner.start(scan_id) is None

    assert harness.scan(scan_id).report == report_before
    assert harness.events(scan_id) == events_before
    assert harness.findings(scan_id) == findings_before
    assert len(double.requests_of("add_image")) == add_image_calls
    assert len(double.requests_of("vulnerabilities")) == vulnerability_calls


def test_step_for_missing_scan_does_nothing(harness, double):
    assert harness.scanner.start(uuid.uuid4()) is None
    assert harness.scanner.poll(uuid.uuid4()) is None
    assert double.requests == []


# --- permanent failures --------------------------------------------------------------------------


def test_failed_analysis_fails_scan(harness, double):
    digest = random_digest()
    double.fail_analysis(digest)
    scan_id = harness.store(digest=digest)

    harness.run(scan_id)

    scan = harness.scan(scan_id)
    assert scan.state == FAILED
    assert "could not analyse the image" in scan.last_error
    assert "analysis_failed" in scan.last_error
    assert scan.registry_credentials is None
    assert harness.events(scan_id) == [(None, SUBMITTED), (SUBMITTED, SCANNING), (SCANNING, FAILED)]
    assert harness.lease_count() == 0


def test_image_never_found_fails_after_grace(harness, double):
    digest = random_digest()
    double.unknown_image(digest)
    scan_id = harness.store(digest=digest)

    harness.run(scan_id)

    scan = harness.scan(scan_id)
    assert scan.state == FAILED
    assert "not found" in scan.last_error
    assert scan.scanning_started_at is not None
    # The scan failed only once the grace period had passed since the analysis started.
    failed_at = scan.updated_at
    assert failed_at - scan.scanning_started_at >= timedelta(seconds=harness.settings.not_found_grace)


def test_unreachable_registry_fails_scan(harness, double):
    double.unreachable_registry(REGISTRY_HOST)
    scan_id = harness.store()

    harness.run(scan_id)

    scan = harness.scan(scan_id)
    assert scan.state == FAILED
    assert "cannot fetch the manifest" in scan.last_error
    assert "REGISTRY_NOT_ACCESSIBLE" in scan.last_error
    assert harness.events(scan_id) == [(None, SUBMITTED), (SUBMITTED, FAILED)]
    assert harness.lease_count() == 0


def test_rejected_token_fails_scan_without_token(make_harness, double):
    wrong_token = "wrong-sysdig-token-" + uuid.uuid4().hex
    harness = make_harness(SECURE_API_TOKEN=wrong_token)
    scan_id = harness.store()

    harness.run(scan_id)

    scan = harness.scan(scan_id)
    assert scan.state == FAILED
    assert "rejected the API token" in scan.last_error
    assert "SECURE_API_TOKEN" in scan.last_error
    assert wrong_token not in scan.last_error
    assert double.images_added == []


@pytest.mark.parametrize(("state", "step"), [(ScanState.SUBMITTED, "start"), (ScanState.SCANNING, "poll")])
def test_scan_past_deadline_fails(harness, double, state: ScanState, step: str):
    scan_id = harness.store(state=state, deadline_at=datetime.now(UTC) - timedelta(seconds=1))

    assert harness.step(scan_id, step) is None

    scan = harness.scan(scan_id)
    assert scan.state == FAILED
    assert "did not finish within" in scan.last_error
    assert double.requests == []


# --- transient failures --------------------------------------------------------------------------


def test_rate_limited_start_honours_retry_after(harness, double):
    double.inject("add_image", 429, times=1, retry_after=0.5)
    scan_id = harness.store()

    followup = harness.scanner.start(scan_id)

    assert followup is not None
    assert followup.step == "start"
    assert followup.delay >= 0.5
    scan = harness.scan(scan_id)
    assert scan.state == SUBMITTED
    assert scan.attempts == 1
    assert "429" in scan.last_error
    assert SYSDIG_TOKEN not in scan.last_error
    assert ROBOT_SECRET not in scan.last_error

    harness.drive(scan_id, followup)

    assert harness.scan(scan_id).state == REPORT_READY
    assert harness.events(scan_id) == HAPPY_EVENTS


def test_html_answer_is_retried_not_failed(harness, double):
    scan_id = harness.store()
    first = harness.scanner.start(scan_id)
    double.inject("analysis_status", 200, times=1, body="<html><body>Welcome</body></html>", content_type="text/html")
    time.sleep(first.delay)

    followup = harness.scanner.poll(scan_id)

    assert followup is not None
    assert followup.step == "poll"
    scan = harness.scan(scan_id)
    assert scan.state == SCANNING
    assert scan.attempts == 1
    assert "not JSON" in scan.last_error

    harness.drive(scan_id, followup)

    assert harness.scan(scan_id).state == REPORT_READY


def test_bad_gateway_is_retried_not_failed(harness, double):
    scan_id = harness.store()
    first = harness.scanner.start(scan_id)
    # One 502 per attempt the client makes, so the error reaches the step instead of an in-client retry.
    double.inject("analysis_status", 502, times=harness.settings.secure.max_attempts, body="<html>502</html>", content_type="text/html")
    time.sleep(first.delay)

    followup = harness.scanner.poll(scan_id)

    assert followup is not None
    assert followup.step == "poll"
    scan = harness.scan(scan_id)
    assert scan.state == SCANNING
    assert scan.attempts == 1
    assert "HTTP 502" in scan.last_error
    assert "<html>" not in scan.last_error

    harness.drive(scan_id, followup)

    assert harness.scan(scan_id).state == REPORT_READY


def test_unavailable_vulnerability_list_is_retried(harness, double):
    scan_id = harness.store()
    double.inject("vulnerabilities", 503, times=harness.settings.secure.max_attempts)

    harness.run(scan_id)

    assert harness.scan(scan_id).state == REPORT_READY
    assert harness.findings(scan_id) == recorded_findings()


# --- registry credentials ------------------------------------------------------------------------


def test_concurrent_scans_pull_with_own_credentials(make_harness, double):
    harness = make_harness()
    robots = [(f"robot$library+scanner-{index}", f"secret-{index}-{uuid.uuid4().hex[:8]}") for index in range(4)]
    scans_by_digest: dict[str, tuple[uuid.UUID, tuple[str, str]]] = {}
    for robot in robots:
        digest = random_digest()
        scans_by_digest[digest] = (harness.store(digest=digest, authorization=basic_authorization(*robot)), robot)
    pending = iter(scans_by_digest.values())
    pending_lock = threading.Lock()

    def scan_one(barrier: threading.Barrier) -> str:
        with pending_lock:
            scan_id, _ = next(pending)
        barrier.wait(10)
        harness.run(scan_id)
        return harness.scan(scan_id).state

    states = run_concurrently(len(robots), scan_one)

    assert states == [REPORT_READY] * len(robots)
    # The double pulls each image when its analysis ends, with the credentials stored for the host then.
    pulled_with = double.pull_credentials
    for digest, (_, robot) in scans_by_digest.items():
        assert pulled_with[digest] == robot, f"image {digest} was pulled with another scan's credentials"
    assert harness.lease_count() == 0


def test_scan_waits_while_registry_is_leased(harness, double):
    first_id = harness.store()
    second_id = harness.store(authorization=basic_authorization("robot$other", "other-secret"))
    harness.scanner.start(first_id)

    waiting = harness.scanner.start(second_id)

    assert waiting is not None
    assert waiting.step == "start"
    assert harness.scan(second_id).state == SUBMITTED
    assert len(double.requests_of("add_image")) == 1
    assert len(double.registered_credentials[REGISTRY_HOST]) == 1


def test_bearer_authorization_fails_scan(harness, double):
    bearer = "Bearer " + uuid.uuid4().hex
    scan_id = harness.store(authorization=bearer)

    harness.run(scan_id)

    scan = harness.scan(scan_id)
    assert scan.state == FAILED
    assert "Bearer" in scan.last_error
    assert "Basic" in scan.last_error
    assert bearer not in scan.last_error
    assert double.requests == []


def test_public_image_skips_registry_registration(harness, double):
    scan_id = harness.store(authorization="")

    harness.run(scan_id)

    assert harness.scan(scan_id).state == REPORT_READY
    assert double.requests_of("register_registry") == []
    assert double.requests_of("update_registry") == []
    assert harness.lease_count() == 0


# --- secrets -------------------------------------------------------------------------------------


def test_secrets_never_reach_logs_or_rows(make_harness, double, caplog):
    caplog.set_level(logging.DEBUG)
    harness = make_harness()
    wrong_token = "wrong-sysdig-token-" + uuid.uuid4().hex
    rejected = make_harness(SECURE_API_TOKEN=wrong_token)
    bearer = "Bearer bearer-token-" + uuid.uuid4().hex
    authorization = basic_authorization(ROBOT, ROBOT_SECRET)

    double.inject("add_image", 429, times=1, retry_after=0.5)
    double.inject("analysis_status", 200, times=1, body="<html>proxy</html>", content_type="text/html")
    happy = harness.store(authorization=authorization)
    harness.run(happy)
    bearer_scan = harness.store(authorization=bearer)
    harness.run(bearer_scan)
    rejected_scan = rejected.store(authorization=authorization)
    rejected.run(rejected_scan)

    assert [harness.scan(scan_id).state for scan_id in (happy, bearer_scan, rejected_scan)] == [REPORT_READY, FAILED, FAILED]
    secrets = {
        "robot password": ROBOT_SECRET,
        "Basic value": authorization.removeprefix("Basic "),
        "Bearer token": bearer.removeprefix("Bearer "),
        "Sysdig token": SYSDIG_TOKEN,
        "rejected Sysdig token": wrong_token,
    }
    places = {
        "log": caplog.text,
        "last_error and event reasons": "\n".join(harness.all_reasons()),
        "reports": harness.all_reports(),
    }
    for place, text in places.items():
        for name, secret in secrets.items():
            assert secret not in text, f"the {name} appears in the {place}"
