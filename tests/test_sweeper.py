"""The maintenance tasks: re-driving stalled scans, failing overdue ones, refreshing feed times.

Messages go to Dramatiq's in-process StubBroker, so the tests can read exactly what was sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dramatiq
import dramatiq.broker
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select

from actors.broker import setup_broker
from actors.maintenance import refresh_vulnerability_database, sweep
from actors.runtime import Runtime
from service.api.metadata import LEGACY_SCANNING_BACKEND
from service.backend_mode import BackendScanner
from service.credentials import CredentialsCipher
from service.persistence.engine import create_sync_engine, sync_sessions
from service.persistence.models import VulnerabilityDatabase
from service.scan import ScanState
from service.sysdig.client import SecureClient
from tests.doubles.sysdig_secure import DEFAULT_FEEDS_LAST_SYNC, SysdigSecureDouble
from tests.test_state_machine import ROBOT, ROBOT_SECRET, basic_authorization, event_rows, scan_row, store_scan

SYSDIG_TOKEN = "sysdig-api-token-" + uuid.uuid4().hex
STALL_THRESHOLD_SECONDS = 60
LONG_AGO = timedelta(hours=1)


@pytest.fixture
def double() -> Iterator[SysdigSecureDouble]:
    with SysdigSecureDouble(analysis_seconds=0.0, token=SYSDIG_TOKEN) as running:
        yield running


@pytest.fixture
def runtime(make_settings, double) -> Iterator[Runtime]:
    settings = make_settings(
        SECURE_URL=double.url,
        SECURE_API_TOKEN=SYSDIG_TOKEN,
        SECURE_MAX_ATTEMPTS="1",
        STALL_THRESHOLD_SECONDS=str(STALL_THRESHOLD_SECONDS),
    )
    engine = create_sync_engine(settings.database_url)
    sessions = sync_sessions(engine)
    client = SecureClient(settings.secure)
    scanner = BackendScanner(settings, sessions, client, CredentialsCipher(settings.credentials_keys))
    rt = Runtime(settings, engine, sessions, client, scanner)
    yield rt
    rt.close()


@pytest.fixture
def broker(monkeypatch) -> StubBroker:
    """A fresh StubBroker that the scan actors send to for the length of one test.

    Actors bind to Dramatiq's global broker when `actors.scans` is first imported, and without
    a global broker Dramatiq would create a RabbitMQ one, so a stub is installed first.
    """
    if dramatiq.broker.global_broker is None:
        setup_broker(None)
    from actors.scans import poll_scan, start_scan

    stub = StubBroker()
    stub.emit_after("process_boot")
    for actor in (start_scan, poll_scan):
        monkeypatch.setattr(actor, "broker", stub)
        stub.declare_actor(actor)
    return stub


def sent_messages(broker: StubBroker) -> list[dramatiq.Message]:
    """Every message waiting in the broker's queues, delayed ones included."""
    return [
        dramatiq.Message.decode(encoded)
        for queue in broker.queues.values()
        for encoded in list(queue.queue)
    ]


def stored_database_time(rt: Runtime) -> datetime | None:
    with rt.sessions() as session:
        return session.execute(
            select(VulnerabilityDatabase.updated_at).where(VulnerabilityDatabase.backend == LEGACY_SCANNING_BACKEND)
        ).scalar_one_or_none()


def store(rt: Runtime, **fields) -> uuid.UUID:
    return store_scan(rt.sessions, CredentialsCipher(rt.settings.credentials_keys), **fields)


# --- sweep ---------------------------------------------------------------------------------------


def test_sweep_resends_start_of_stalled_submitted_scan(runtime, broker):
    authorization = basic_authorization(ROBOT, ROBOT_SECRET)
    scan_id = store(runtime, authorization=authorization, updated_at=datetime.now(UTC) - LONG_AGO)

    sweep(runtime)

    (message,) = sent_messages(broker)
    assert message.actor_name == "start_scan"
    assert list(message.args) == [str(scan_id)]
    assert message.kwargs == {}
    encoded = message.encode().decode()
    assert ROBOT_SECRET not in encoded
    assert authorization.removeprefix("Basic ") not in encoded


def test_sweep_resends_poll_of_stalled_scanning_scan(runtime, broker):
    scan_id = store(runtime, state=ScanState.SCANNING, updated_at=datetime.now(UTC) - LONG_AGO)

    sweep(runtime)

    (message,) = sent_messages(broker)
    assert message.actor_name == "poll_scan"
    assert list(message.args) == [str(scan_id)]


def test_sweep_leaves_progressing_and_finished_scans(runtime, broker):
    store(runtime, state=ScanState.SUBMITTED)
    store(runtime, state=ScanState.SCANNING)
    store(runtime, state=ScanState.REPORT_READY, updated_at=datetime.now(UTC) - LONG_AGO)
    store(runtime, state=ScanState.FAILED, updated_at=datetime.now(UTC) - LONG_AGO)

    touched = sweep(runtime)

    assert touched == 0
    assert sent_messages(broker) == []


def test_sweep_resends_stalled_scan_once(runtime, broker):
    store(runtime, updated_at=datetime.now(UTC) - LONG_AGO)

    sweep(runtime)
    sweep(runtime)

    assert len(sent_messages(broker)) == 1


@pytest.mark.parametrize("state", [ScanState.SUBMITTED, ScanState.SCANNING])
def test_sweep_fails_overdue_scan(runtime, broker, state: ScanState):
    scan_id = store(
        runtime,
        state=state,
        deadline_at=datetime.now(UTC) - timedelta(seconds=1),
        updated_at=datetime.now(UTC) - LONG_AGO,
    )

    sweep(runtime)

    scan = scan_row(runtime.sessions, scan_id)
    assert scan.state == ScanState.FAILED.value
    assert f"did not finish within {int(runtime.settings.scan_deadline)} seconds" in scan.last_error
    assert scan.registry_credentials is None
    assert event_rows(runtime.sessions, scan_id)[-1] == (state.value, ScanState.FAILED.value, scan.last_error)
    assert sent_messages(broker) == []


# --- vulnerability database time -----------------------------------------------------------------


def test_refresh_stores_feed_time(runtime):
    refresh_vulnerability_database(runtime)

    assert stored_database_time(runtime) == DEFAULT_FEEDS_LAST_SYNC


def test_refresh_keeps_time_when_sysdig_unavailable(runtime, double):
    refresh_vulnerability_database(runtime)
    double.feeds_last_sync = DEFAULT_FEEDS_LAST_SYNC + timedelta(days=1)
    double.inject("feeds", 503, times=None)

    refresh_vulnerability_database(runtime)

    assert len(double.requests_of("feeds")) == 2
    assert stored_database_time(runtime) == DEFAULT_FEEDS_LAST_SYNC


def test_refresh_keeps_time_when_feeds_never_synced(runtime, double):
    refresh_vulnerability_database(runtime)
    double.feeds_last_sync = None

    refresh_vulnerability_database(runtime)

    assert stored_database_time(runtime) == DEFAULT_FEEDS_LAST_SYNC


def test_refresh_picks_up_newer_feed_time(runtime, double):
    refresh_vulnerability_database(runtime)
    newer = DEFAULT_FEEDS_LAST_SYNC + timedelta(days=1)
    double.feeds_last_sync = newer

    refresh_vulnerability_database(runtime)

    assert stored_database_time(runtime) == newer


def test_hung_feeds_call_does_not_stop_sweeper(make_settings, double, broker, monkeypatch):
    import time

    import actors.maintenance
    from actors.maintenance import Maintenance

    settings = make_settings(
        SECURE_URL=double.url,
        SECURE_API_TOKEN=SYSDIG_TOKEN,
        SECURE_READ_TIMEOUT="30",
        SWEEP_INTERVAL_SECONDS="0.1",
        STALL_THRESHOLD_SECONDS=str(STALL_THRESHOLD_SECONDS),
    )
    engine = create_sync_engine(settings.database_url)
    sessions = sync_sessions(engine)
    client = SecureClient(settings.secure)
    rt = Runtime(settings, engine, sessions, client, BackendScanner(settings, sessions, client, CredentialsCipher(settings.credentials_keys)))
    monkeypatch.setattr(actors.maintenance, "runtime", lambda: rt)
    double.inject("feeds", status=200, delay=8)  # longer than the wait below
    scan_id = store(rt, authorization="", updated_at=datetime.now(UTC) - LONG_AGO)
    maintenance = Maintenance()

    maintenance.after_worker_boot(broker, None)
    try:
        for _ in range(30):  # up to 3 s
            if sent_messages(broker):
                break
            time.sleep(0.1)
        messages = sent_messages(broker)
    finally:
        maintenance.before_worker_shutdown(broker, None)
        rt.close()

    assert [list(message.args) for message in messages] == [[str(scan_id)]]
