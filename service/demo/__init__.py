"""`harbor-scanner-sysdig demo`: one Harbor-style scan, end to end, on embedded defaults.

It starts an embedded PostgreSQL unless DATABASE_URL is set, and runs the worker in-process
on Dramatiq's stub broker unless RABBITMQ_URL is set. It starts the Sysdig Secure test
double, fed by a recorded real scan, and then calls the API as Harbor does.
"""

from __future__ import annotations

import base64
import os
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
from cryptography.fernet import Fernet

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
REPORT_V1_1 = "application/vnd.security.vulnerability.report; version=1.1"
SEVERITY_ORDER = ("Critical", "High", "Medium", "Low", "Negligible", "Unknown")

# The recorded scan is of alpine:3.7; its digest was replaced by a placeholder when it was
# recorded, so the demo names the image by this digest of its own.
DEMO_DIGEST = "sha256:" + "3d2e482b82608d153a374df3357c0291589a61cc194ec4a9ca2381073a17f58e"
DEMO_ROBOT = "robot$library+scanner-sysdig-demo"


def run_demo() -> int:
    _make_test_double_importable()
    # A queue of its own, so a demo pointed at a shared RabbitMQ never takes real scans' messages.
    demo_queue = os.environ.setdefault("BROKER_QUEUE_NAME", f"harbor-scans-demo-{uuid.uuid4().hex[:8]}")
    from service.cli import upgrade_database
    from service.demo.embedded import embedded_postgres

    log_level = os.environ.get("LOG_LEVEL", "ERROR")
    rabbitmq_url = os.environ.get("RABBITMQ_URL") or None

    with ExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL") or stack.enter_context(_announce_postgres(embedded_postgres()))
        upgrade_database(database_url)
        double = stack.enter_context(_sysdig_double())
        settings = _demo_settings(double, database_url, rabbitmq_url, log_level)

        base_url = stack.enter_context(_services(settings, rabbitmq_url))
        scan_id, report = _scan_like_harbor(base_url)

        _print_report(report)
        _print_transitions(database_url, scan_id)

    if rabbitmq_url and demo_queue.startswith("harbor-scans-demo-"):
        _delete_queues(rabbitmq_url, demo_queue)
    return 0


def _delete_queues(rabbitmq_url: str, queue: str) -> None:
    """Remove the demo's queue and the delay and dead-letter queues Dramatiq made beside it."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
    finally:
        connection.close()


def _make_test_double_importable() -> None:
    if not (REPOSITORY_ROOT / "tests" / "doubles" / "sysdig_secure.py").is_file():
        raise SystemExit("the demo runs from a source checkout: tests/doubles/sysdig_secure.py was not found")
    if str(REPOSITORY_ROOT) not in sys.path:
        sys.path.insert(0, str(REPOSITORY_ROOT))


def _announce_postgres(context):
    print("Starting an embedded PostgreSQL (set DATABASE_URL to use your own) ...", flush=True)
    return context


def _sysdig_double():
    from tests.doubles.sysdig_secure import SysdigSecureDouble

    print("Starting the Sysdig Secure test double, fed by a recorded scan of alpine:3.7 ...", flush=True)
    return SysdigSecureDouble(analysis_seconds=2.0)


def _demo_settings(double, database_url: str, rabbitmq_url: str | None, log_level: str):
    from service.config import Settings

    return Settings.from_env(
        {
            "SECURE_URL": double.url,
            "SECURE_API_TOKEN": double.token,
            "DATABASE_URL": database_url,
            "REGISTRY_CREDENTIALS_KEY": Fernet.generate_key().decode(),
            "REFRESH_AFTER_SECONDS": "1",
            "POLL_INITIAL_DELAY_SECONDS": "0.5",
            "POLL_MAX_DELAY_SECONDS": "1",
            "WORKER_THREADS": "4",
            "LOG_LEVEL": log_level,
            **({"RABBITMQ_URL": rabbitmq_url} if rabbitmq_url else {}),
        }
    )


class _services:
    """The worker (in-process) and the API (on a background thread) for the demo's settings."""

    def __init__(self, settings, rabbitmq_url: str | None) -> None:
        self._settings = settings
        self._rabbitmq_url = rabbitmq_url

    def __enter__(self) -> str:
        import dramatiq
        from sanic import Sanic

        from actors.bootstrap import bootstrap
        from actors.broker import broker_ready
        from service.api.app import create_app
        from service.demo.embedded import BackgroundApi
        from tests.processes import free_port

        broker = bootstrap(self._settings, self._rabbitmq_url)
        from actors.scans import publish_new_scan

        where = "RabbitMQ" if self._rabbitmq_url else "Dramatiq's in-process stub broker"
        print(f"Starting the worker on {where} and the API ...", flush=True)
        self._worker = dramatiq.Worker(broker, worker_threads=self._settings.worker.threads)
        self._worker.start()

        Sanic.test_mode = True  # allows a second app name in one process, e.g. under pytest
        app = create_app(self._settings, publish_new_scan, lambda: broker_ready(self._rabbitmq_url), name="demo")
        port = free_port()
        self._api = BackgroundApi(app, "127.0.0.1", port)
        self._api.start()
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc_info: object) -> None:
        self._api.stop()
        self._worker.stop()


def _scan_like_harbor(base_url: str) -> tuple[str, dict[str, Any]]:
    from service.demo.harbor import HarborClient

    harbor = HarborClient(base_url, first_poll_delay=1.0)
    metadata = harbor.metadata()
    scanner = metadata["scanner"]
    print(f"\nHarbor: GET /api/v1/metadata -> {scanner['name']} / {scanner['vendor']} / {scanner['version']}")
    for capability in metadata["capabilities"]:
        print(f"  produces {', '.join(capability['produces_mime_types'])}")
    for key, value in metadata["properties"].items():
        print(f"  {key} = {value}")

    password = uuid.uuid4().hex
    scan_request = {
        "registry": {
            "url": "https://harbor.example.com",
            "authorization": "Basic " + base64.b64encode(f"{DEMO_ROBOT}:{password}".encode()).decode(),
        },
        "artifact": {
            "repository": "library/alpine",
            "tag": "3.7",
            "digest": DEMO_DIGEST,
            "mime_type": "application/vnd.docker.distribution.manifest.v2+json",
        },
        "enabled_capabilities": [{"type": "vulnerability", "produces_mime_types": [REPORT_V1_1], "parameters": None}],
    }
    scan_id = harbor.submit(scan_request)
    print(f"Harbor: POST /api/v1/scan -> 202, scan id {scan_id}")

    report = harbor.wait_for_report(scan_id, REPORT_V1_1, max_wait=120)
    polls = ", ".join(f"{poll.status}" + (f" (Refresh-After: {poll.refresh_after})" if poll.refresh_after else "") for poll in harbor.polls)
    print(f"Harbor: GET /api/v1/scan/{scan_id}/report -> {polls}")
    harbor.close()
    return scan_id, report


def _print_report(report: dict[str, Any]) -> None:
    items = report["vulnerabilities"]
    counts = {severity: 0 for severity in SEVERITY_ORDER}
    for item in items:
        counts[item["severity"]] += 1

    print(f"\nReport for {report['artifact']['repository']}@{report['artifact']['digest'][:19]}... generated at {report['generated_at']}")
    print(f"Overall severity: {report.get('severity', 'None')}   " + "  ".join(f"{s}: {n}" for s, n in counts.items()))
    rows = [
        (
            item["id"],
            item["package"],
            item["version"],
            item.get("fix_version", "-"),
            item["severity"],
            _score(item.get("preferred_cvss", {}).get("score_v3")),
        )
        for item in items[:10]
    ]
    _print_table(("VULNERABILITY", "PACKAGE", "VERSION", "FIXED IN", "SEVERITY", "CVSS v3"), rows)


def _print_transitions(database_url: str, scan_id: str) -> None:
    query = (
        "SELECT created_at, coalesce(from_state, '-'), to_state, coalesce(reason, '') "
        "FROM scan_events WHERE scan_id = %s ORDER BY id"
    )
    with psycopg.connect(_libpq_url(database_url)) as connection:
        events = connection.execute(query, (uuid.UUID(scan_id),)).fetchall()
    print(f"\nTransitions of scan {scan_id}, read back with SQL:\n  {query}")
    _print_table(
        ("AT (UTC)", "FROM", "TO", "REASON"),
        [(at.strftime("%H:%M:%S.%f")[:-3], source, target, reason) for at, source, target, reason in events],
    )


def _libpq_url(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))


