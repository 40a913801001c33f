"""Guarded transitions, registry leases and stalled-scan claims on a real PostgreSQL.

The helpers at the top (`store_scan`, `basic_authorization`, `event_rows`, `scan_row`,
`run_concurrently`) are shared with the backend-mode and sweeper tests.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from service.credentials import CredentialsCipher
from service.errors import TransitionConflict
from service.persistence import scans
from service.persistence.engine import create_sync_engine, sync_sessions
from service.persistence.models import Finding, RegistryLease, Scan, ScanEvent
from service.scan import TRANSITIONS, ScanState

REGISTRY_URL = "https://harbor.example.com"
REGISTRY_HOST = "harbor.example.com"
REPOSITORY = "library/alpine"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ROBOT = "robot$library+scanner-sysdig"
ROBOT_SECRET = "Robot:Secret:5f1c"
# A terminal report_ready row must carry a report (a CHECK constraint enforces it).
EMPTY_REPORT = {"vulnerabilities": []}

RACERS = 8
THREAD_TIMEOUT_SECONDS = 30

ALLOWED = [(source, target) for source, targets in TRANSITIONS.items() for target in sorted(targets)]
DISALLOWED = [(source, target) for source in ScanState for target in ScanState if target not in TRANSITIONS[source]]


# --- shared helpers ----------------------------------------------------------------------------


def basic_authorization(username: str, password: str) -> str:
    """Harbor's `registry.authorization` value for a robot account."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def random_digest() -> str:
    return "sha256:" + uuid.uuid4().hex * 2


def store_scan(
    sessions: sessionmaker[Session],
    cipher: CredentialsCipher,
    *,
    state: ScanState = ScanState.SUBMITTED,
    authorization: str | None = None,
    digest: str | None = None,
    registry_url: str = REGISTRY_URL,
    deadline_at: datetime | None = None,
    updated_at: datetime | None = None,
) -> uuid.UUID:
    """Insert a scan row and its first event the way the API stores a scan request.

    `authorization` defaults to the robot's Basic value; pass "" for a public image.
    """
    if authorization is None:
        authorization = basic_authorization(ROBOT, ROBOT_SECRET)
    scan = Scan(
        id=uuid.uuid4(),
        mode="backend",
        state=state.value,
        registry_url=registry_url,
        repository=REPOSITORY,
        digest=digest or random_digest(),
        tag="3.20",
        manifest_media_type=OCI_MANIFEST,
        registry_credentials=cipher.encrypt(authorization) if authorization else None,
        deadline_at=deadline_at or datetime.now(UTC) + timedelta(minutes=30),
        report=EMPTY_REPORT if state is ScanState.REPORT_READY else None,
    )
    if updated_at is not None:
        scan.updated_at = updated_at

    with sessions.begin() as session:
        session.add(scan)
        session.flush()
        session.add(ScanEvent(scan_id=scan.id, from_state=None, to_state=state.value))
    return scan.id


def scan_row(sessions: sessionmaker[Session], scan_id: uuid.UUID) -> Scan:
    with sessions() as session:
        scan = scans.get_scan(session, scan_id)
    assert scan is not None, f"scan {scan_id} is missing from the database"
    return scan


def event_rows(sessions: sessionmaker[Session], scan_id: uuid.UUID) -> list[tuple[str | None, str, str | None]]:
    """(from_state, to_state, reason) of every event of a scan, oldest first."""
    with sessions() as session:
        rows = session.execute(
            select(ScanEvent.from_state, ScanEvent.to_state, ScanEvent.reason)
            .where(ScanEvent.scan_id == scan_id)
            .order_by(ScanEvent.id)
        )
        return [tuple(row) for row in rows]


def run_concurrently(count: int, work: Callable[[threading.Barrier], Any]) -> list[Any]:
    """Run `work` on `count` threads that share a barrier; return each result or exception."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            results[index] = work(barrier)
        except Exception as exc:  # collected so the test can assert on it
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,), name=f"racer-{index}") for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a racing thread did not finish"
    return results


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def sessions(clean_database: str) -> Iterator[sessionmaker[Session]]:
    # Enough connections for every racing thread to hold its own at the same time.
    engine = create_sync_engine(clean_database, pool_size=RACERS + 2)
    try:
        yield sync_sessions(engine)
    finally:
        engine.dispose()


@pytest.fixture
def cipher(credentials_key: str) -> CredentialsCipher:
    return CredentialsCipher((credentials_key,))


def _transition_values(target: ScanState) -> dict[str, Any]:
    return {"report": EMPTY_REPORT} if target is ScanState.REPORT_READY else {}


def _lease_holder(sessions: sessionmaker[Session], host: str) -> uuid.UUID | None:
    with sessions() as session:
        return session.execute(
            select(RegistryLease.scan_id).where(RegistryLease.registry_host == host)
        ).scalar_one_or_none()


def _lease_expiry(sessions: sessionmaker[Session], host: str) -> datetime:
    with sessions() as session:
        return session.execute(
            select(RegistryLease.expires_at).where(RegistryLease.registry_host == host)
        ).scalar_one()


def _claim(sessions: sessionmaker[Session], scan_id: uuid.UUID, ttl_seconds: float = 60) -> bool:
    with sessions.begin() as session:
        return scans.claim_registry_lease(session, REGISTRY_HOST, scan_id, timedelta(seconds=ttl_seconds))


# --- transitions -------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "target"), ALLOWED, ids=lambda state: str(state))
def test_allowed_transition_writes_one_event(sessions, cipher, source: ScanState, target: ScanState):
    scan_id = store_scan(sessions, cipher, state=source)
    reason = f"moved from {source} to {target} by the test"

    with sessions.begin() as session:
        scans.transition(session, scan_id, source, target, reason=reason, **_transition_values(target))

    assert scan_row(sessions, scan_id).state == target.value
    transitions = [event for event in event_rows(sessions, scan_id) if event[0] is not None]
    assert transitions == [(source.value, target.value, reason)]


@pytest.mark.parametrize(("source", "target"), DISALLOWED, ids=lambda state: str(state))
def test_disallowed_transition_raises_before_database(sessions, cipher, source: ScanState, target: ScanState):
    scan_id = store_scan(sessions, cipher, state=source)

    with sessions() as session:
        with pytest.raises(ValueError, match=f"{source} -> {target}"):
            scans.transition(session, scan_id, source, target, reason="not allowed")
        # A session begins its transaction on the first statement, so none means no SQL ran.
        assert not session.in_transaction()

    assert scan_row(sessions, scan_id).state == source.value
    assert event_rows(sessions, scan_id) == [(None, source.value, None)]


def test_transition_from_wrong_state_conflicts(sessions, cipher):
    scan_id = store_scan(sessions, cipher, state=ScanState.SUBMITTED)

    with sessions() as session:
        with pytest.raises(TransitionConflict) as raised:
            scans.transition(
                session, scan_id, ScanState.SCANNING, ScanState.REPORT_READY, reason="too early", report=EMPTY_REPORT
            )
        session.commit()  # commits anything the failed call wrote, so a stray event would show below

    assert raised.value.scan_id == scan_id
    assert str(scan_id) in str(raised.value)
    assert scan_row(sessions, scan_id).state == ScanState.SUBMITTED.value
    assert event_rows(sessions, scan_id) == [(None, ScanState.SUBMITTED.value, None)]


def test_transition_of_missing_scan_conflicts(sessions):
    missing = uuid.uuid4()

    with sessions() as session:
        with pytest.raises(TransitionConflict) as raised:
            scans.transition(session, missing, ScanState.SUBMITTED, ScanState.SCANNING)

    assert str(missing) in str(raised.value)


def test_racing_workers_make_one_transition(sessions, cipher):
    for _ in range(4):
        scan_id = store_scan(sessions, cipher)

        def move(barrier: threading.Barrier) -> str:
            with sessions.begin() as session:
                session.connection()  # connect before the barrier, so the UPDATEs start together
                barrier.wait(THREAD_TIMEOUT_SECONDS)
                scans.transition(session, scan_id, ScanState.SUBMITTED, ScanState.SCANNING, reason="raced")
            return "moved"

        results = run_concurrently(RACERS, move)

        assert results.count("moved") == 1, results
        conflicts = [result for result in results if isinstance(result, TransitionConflict)]
        assert len(conflicts) == RACERS - 1, results
        transitions = [event for event in event_rows(sessions, scan_id) if event[0] is not None]
        assert transitions == [(ScanState.SUBMITTED.value, ScanState.SCANNING.value, "raced")]


@pytest.mark.parametrize("source", [ScanState.SUBMITTED, ScanState.SCANNING])
def test_failing_erases_credentials_and_sets_last_error(sessions, cipher, source: ScanState):
    scan_id = store_scan(sessions, cipher, state=source)
    assert scan_row(sessions, scan_id).registry_credentials is not None

    with sessions.begin() as session:
        scans.transition(session, scan_id, source, ScanState.FAILED, reason="registry rejected the pull")

    scan = scan_row(sessions, scan_id)
    assert scan.registry_credentials is None
    assert scan.last_error == "registry rejected the pull"


def test_report_ready_erases_credentials(sessions, cipher):
    scan_id = store_scan(sessions, cipher, state=ScanState.SCANNING)

    with sessions.begin() as session:
        scans.transition(session, scan_id, ScanState.SCANNING, ScanState.REPORT_READY, report=EMPTY_REPORT)

    scan = scan_row(sessions, scan_id)
    assert scan.registry_credentials is None
    assert scan.last_error is None


def test_insert_findings_twice_adds_nothing(sessions, cipher):
    scan_id = store_scan(sessions, cipher, state=ScanState.SCANNING)
    findings = [
        {"vulnerability_id": "CVE-2019-14697", "package": "musl", "version": "1.1.18-r3", "severity": "High"},
        {"vulnerability_id": "CVE-2019-14697", "package": "musl-utils", "version": "1.1.18-r3", "severity": "High"},
        {"vulnerability_id": "CVE-2011-3374", "package": "apt", "version": "1.8.2", "severity": "Negligible"},
    ]

    def stored() -> list[tuple[str, str, str]]:
        with sessions() as session:
            rows = session.execute(
                select(Finding.vulnerability_id, Finding.package, Finding.version)
                .where(Finding.scan_id == scan_id)
                .order_by(Finding.id)
            )
            return [tuple(row) for row in rows]

    with sessions.begin() as session:
        first_added = scans.insert_findings(session, scan_id, findings)
    first = stored()
    with sessions.begin() as session:
        second_added = scans.insert_findings(session, scan_id, findings)

    assert first_added == len(findings)
    assert len(first) == len(findings)
    assert second_added == 0
    assert stored() == first


# --- registry leases ---------------------------------------------------------------------------


def test_lease_on_free_host_is_granted(sessions):
    holder = uuid.uuid4()

    assert _claim(sessions, holder) is True
    assert _lease_holder(sessions, REGISTRY_HOST) == holder


def test_lease_held_by_other_scan_is_rejected(sessions):
    holder, other = uuid.uuid4(), uuid.uuid4()
    _claim(sessions, holder)

    assert _claim(sessions, other) is False
    assert _lease_holder(sessions, REGISTRY_HOST) == holder


def test_expired_lease_is_taken_over(sessions):
    holder, other = uuid.uuid4(), uuid.uuid4()
    _claim(sessions, holder)
    with sessions.begin() as session:
        session.execute(text("UPDATE registry_leases SET expires_at = now() - interval '1 second'"))

    assert _claim(sessions, other) is True
    assert _lease_holder(sessions, REGISTRY_HOST) == other


def test_lease_claimed_again_by_holder_is_renewed(sessions):
    holder = uuid.uuid4()
    _claim(sessions, holder, ttl_seconds=60)
    first_expiry = _lease_expiry(sessions, REGISTRY_HOST)

    assert _claim(sessions, holder, ttl_seconds=600) is True
    assert _lease_expiry(sessions, REGISTRY_HOST) > first_expiry


def test_released_lease_frees_host(sessions):
    holder, other = uuid.uuid4(), uuid.uuid4()
    _claim(sessions, holder)

    with sessions.begin() as session:
        scans.release_registry_lease(session, REGISTRY_HOST, holder)

    assert _lease_holder(sessions, REGISTRY_HOST) is None
    assert _claim(sessions, other) is True


def test_release_by_other_scan_keeps_lease(sessions):
    holder, other = uuid.uuid4(), uuid.uuid4()
    _claim(sessions, holder)

    with sessions.begin() as session:
        scans.release_registry_lease(session, REGISTRY_HOST, other)

    assert _lease_holder(sessions, REGISTRY_HOST) == holder


def test_concurrent_lease_claims_have_one_winner(sessions):
    for _ in range(3):
        with sessions.begin() as session:
            session.execute(text("DELETE FROM registry_leases"))
        claimants = [uuid.uuid4() for _ in range(RACERS)]
        next_claimant = iter(claimants)
        claimant_lock = threading.Lock()

        def claim(barrier: threading.Barrier) -> tuple[uuid.UUID, bool]:
            with claimant_lock:
                scan_id = next(next_claimant)
            with sessions.begin() as session:
                session.connection()
                barrier.wait(THREAD_TIMEOUT_SECONDS)
                return scan_id, scans.claim_registry_lease(session, REGISTRY_HOST, scan_id, timedelta(seconds=60))

        results = run_concurrently(RACERS, claim)

        errors = [result for result in results if isinstance(result, Exception)]
        assert errors == []
        winners = [scan_id for scan_id, granted in results if granted]
        assert len(winners) == 1, results
        assert _lease_holder(sessions, REGISTRY_HOST) == winners[0]


# --- stalled scans -----------------------------------------------------------------------------


def test_stalled_scan_claims_never_overlap(sessions, cipher):
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    stalled = {
        store_scan(sessions, cipher, state=state, updated_at=an_hour_ago)
        for state in [ScanState.SUBMITTED, ScanState.SCANNING] * 6
    }

    def sweep(barrier: threading.Barrier) -> list[uuid.UUID]:
        with sessions.begin() as session:
            session.connection()
            barrier.wait(THREAD_TIMEOUT_SECONDS)
            return [scan_id for scan_id, _ in scans.claim_stalled_scans(session, timedelta(minutes=5), limit=3)]

    handed_out: Counter[uuid.UUID] = Counter()
    for _ in range(len(stalled)):  # each round claims at least one scan while any is left, so this is enough
        results = run_concurrently(RACERS, sweep)
        errors = [result for result in results if isinstance(result, Exception)]
        assert errors == []
        claimed = [scan_id for result in results for scan_id in result]
        if not claimed:
            break
        handed_out.update(claimed)

    assert set(handed_out) == stalled
    assert [scan_id for scan_id, times in handed_out.items() if times > 1] == []


def test_stalled_scan_claim_skips_recent_and_terminal(sessions, cipher):
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    stalled_submitted = store_scan(sessions, cipher, state=ScanState.SUBMITTED, updated_at=an_hour_ago)
    stalled_scanning = store_scan(sessions, cipher, state=ScanState.SCANNING, updated_at=an_hour_ago)
    store_scan(sessions, cipher, state=ScanState.SUBMITTED)
    store_scan(sessions, cipher, state=ScanState.SCANNING)
    store_scan(sessions, cipher, state=ScanState.REPORT_READY, updated_at=an_hour_ago)
    store_scan(sessions, cipher, state=ScanState.FAILED, updated_at=an_hour_ago)

    with sessions.begin() as session:
        claimed = scans.claim_stalled_scans(session, timedelta(minutes=5))

    assert sorted(claimed) == sorted(
        [(stalled_submitted, ScanState.SUBMITTED.value), (stalled_scanning, ScanState.SCANNING.value)]
    )


def test_claimed_stalled_scan_is_not_claimed_again(sessions, cipher):
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    store_scan(sessions, cipher, state=ScanState.SUBMITTED, updated_at=an_hour_ago)

    with sessions.begin() as session:
        first = scans.claim_stalled_scans(session, timedelta(minutes=5))
    with sessions.begin() as session:
        second = scans.claim_stalled_scans(session, timedelta(minutes=5))

    assert len(first) == 1
    assert second == []
