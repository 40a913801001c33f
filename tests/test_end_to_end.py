"""End to end: the API and worker as real processes, RabbitMQ, PostgreSQL and the Sysdig double."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pika
import psycopg
import pytest

from service.demo.harbor import HarborClient, HarborScanError
from tests.doubles.sysdig_secure import SysdigSecureDouble, recorded_vulnerabilities
from tests.harbor_contract import validate_response
from tests.processes import free_port, start_api, start_worker

REPORT_V1_1 = "application/vnd.security.vulnerability.report; version=1.1"
SECURE_TOKEN = "e2e-secure-token-5b1c0d8e"
REGISTRY_HOST = "harbor.example.com"


def robot(n: int) -> tuple[str, str]:
    return f"robot$library+scanner-sysdig-{n:04d}", f"Robot:Secret:{uuid.uuid4().hex}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def random_digest() -> str:
    return "sha256:" + uuid.uuid4().hex + uuid.uuid4().hex


def scan_request(digest: str, user: str, password: str) -> dict:
    return {
        "registry": {"url": f"https://{REGISTRY_HOST}", "authorization": basic(user, password), "insecure": False},
        "artifact": {
            "repository": "library/alpine",
            "tag": "3.7",
            "digest": digest,
            "mime_type": "application/vnd.docker.distribution.manifest.v2+json",
        },
        "enabled_capabilities": [{"type": "vulnerability", "produces_mime_types": [REPORT_V1_1], "parameters": None}],
    }


class Stack:
    def __init__(self, double: SysdigSecureDouble, environ: dict[str, str], api, worker, base_url: str) -> None:
        self.double = double
        self.environ = environ
        self.api = api
        self.worker = worker
        self.base_url = base_url
        self.secrets: list[str] = [SECURE_TOKEN]
        self.retired_logs: list[str] = []  # output of processes a test replaced

    def harbor(self) -> HarborClient:
        return HarborClient(self.base_url, first_poll_delay=0.2)

    def sql(self, query: str, *params):
        with psycopg.connect(self.environ["DATABASE_URL"], autocommit=True) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def stack(database_url, rabbitmq_url, credentials_key):
    queue = f"harbor-scans-e2e-{uuid.uuid4().hex[:8]}"
    with SysdigSecureDouble(analysis_seconds=0.4, token=SECURE_TOKEN) as double:
        environ = {
            **os.environ,
            "SECURE_URL": double.url,
            "SECURE_API_TOKEN": SECURE_TOKEN,
            "DATABASE_URL": database_url,
            "RABBITMQ_URL": rabbitmq_url,
            "REGISTRY_CREDENTIALS_KEY": credentials_key,
            "BROKER_QUEUE_NAME": queue,
            "REFRESH_AFTER_SECONDS": "1",
            "POLL_INITIAL_DELAY_SECONDS": "0.2",
            "POLL_MAX_DELAY_SECONDS": "0.5",
            "SWEEP_INTERVAL_SECONDS": "1",
            "STALL_THRESHOLD_SECONDS": "4",
            "WORKER_PROCESSES": "1",
            "WORKER_THREADS": "8",
            "LOG_LEVEL": "DEBUG",
        }
        port = free_port()
        api = start_api(environ, port)
        worker = start_worker(environ)
        stack = Stack(double, environ, api, worker, f"http://127.0.0.1:{port}")
        try:
            yield stack
        finally:
            stack.worker.stop()
            stack.api.stop()
            _delete_queues(rabbitmq_url, queue)


def _delete_queues(rabbitmq_url: str, queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
        channel.queue_delete(name)
    connection.close()


def test_scan_reaches_report_like_harbor(stack):
    user, password = robot(1)
    stack.secrets += [password, basic(user, password).split(" ", 1)[1]]
    digest = random_digest()
    harbor = stack.harbor()

    scan_id, reports = harbor.scan(scan_request(digest, user, password), max_wait=60)

    report = reports[REPORT_V1_1]
    recorded_ids = {item["vuln"] for item in recorded_vulnerabilities()}
    assert {item["id"] for item in report["vulnerabilities"]} == recorded_ids
    assert report["artifact"]["digest"] == digest
    assert report["scanner"]["name"] == "Sysdig Secure"
    assert stack.double.images_added[-1] == f"{REGISTRY_HOST}/library/alpine@{digest}"
    assert [status.status for status in harbor.polls if status.status != 302] == [200]
    assert all(poll.refresh_after == "1" for poll in harbor.polls if poll.status == 302)


def test_report_validates_and_is_served_twice(stack):
    user, password = robot(2)
    stack.secrets += [password]
    scan_id, _ = stack.harbor().scan(scan_request(random_digest(), user, password), max_wait=60)

    first = httpx.get(f"{stack.base_url}/api/v1/scan/{scan_id}/report", headers={"Accept": REPORT_V1_1})
    second = httpx.get(f"{stack.base_url}/api/v1/scan/{scan_id}/report", headers={"Accept": REPORT_V1_1})

    assert first.status_code == 200
    validate_response("/scan/{scan_request_id}/report", "get", 200, first.headers["content-type"], first.content)
    assert first.json() == second.json()


def test_history_is_queryable_in_sql(stack):
    user, password = robot(3)
    stack.secrets += [password]
    scan_id, reports = stack.harbor().scan(scan_request(random_digest(), user, password), max_wait=60)

    events = stack.sql("SELECT from_state, to_state FROM scan_events WHERE scan_id = %s ORDER BY id", uuid.UUID(scan_id))
    findings = stack.sql("SELECT count(*) FROM findings WHERE scan_id = %s", uuid.UUID(scan_id))
    credentials = stack.sql("SELECT registry_credentials FROM scans WHERE id = %s", uuid.UUID(scan_id))

    assert events == [(None, "submitted"), ("submitted", "scanning"), ("scanning", "report_ready")]
    assert findings == [(len(reports[REPORT_V1_1]["vulnerabilities"]),)]
    assert credentials == [(None,)]


def test_failed_analysis_ends_as_500_with_reason(stack):
    user, password = robot(4)
    digest = random_digest()
    stack.double.fail_analysis(digest)

    with pytest.raises(HarborScanError) as failure:
        stack.harbor().scan(scan_request(digest, user, password), max_wait=60)

    assert failure.value.status == 500
    assert "analysis_failed" in failure.value.message


def test_many_parallel_scans_through_one_registry_all_finish(stack):
    robots = {random_digest(): robot(100 + n) for n in range(12)}
    stack.secrets += [password for _, password in robots.values()]

    def run(digest: str) -> dict:
        user, password = robots[digest]
        harbor = stack.harbor()
        try:
            return harbor.scan(scan_request(digest, user, password), max_wait=120)[1][REPORT_V1_1]
        finally:
            harbor.close()

    with ThreadPoolExecutor(max_workers=len(robots)) as pool:
        reports = dict(zip(robots, pool.map(run, robots)))

    assert {digest: report["artifact"]["digest"] for digest, report in reports.items()} == {d: d for d in robots}
    pulled_with = stack.double.pull_credentials
    for digest, credentials in robots.items():
        assert pulled_with[digest] == credentials, f"{digest} was pulled with another scan's robot"


def test_scan_survives_worker_restart(stack):
    user, password = robot(5)
    stack.secrets += [password]
    harbor = stack.harbor()
    stack.worker.kill()
    stack.retired_logs.append(stack.worker.output())
    scan_id = harbor.submit(scan_request(random_digest(), user, password))

    # The message waits in RabbitMQ while no worker runs; a new worker picks it up.
    stack.worker = start_worker(stack.environ)
    report = harbor.wait_for_report(scan_id, REPORT_V1_1, max_wait=60)

    assert report["vulnerabilities"]


def test_report_survives_api_restart(stack):
    user, password = robot(7)
    stack.secrets += [password]
    scan_id, reports = stack.harbor().scan(scan_request(random_digest(), user, password), max_wait=60)
    port = int(stack.base_url.rsplit(":", 1)[1])
    stack.api.stop()
    stack.retired_logs.append(stack.api.output())
    stack.api = start_api(stack.environ, port)
    response = httpx.get(f"{stack.base_url}/api/v1/scan/{scan_id}/report", headers={"Accept": REPORT_V1_1})

    assert response.status_code == 200
    assert response.json() == reports[REPORT_V1_1]


def test_oversized_request_gets_413_envelope(stack):
    response = httpx.post(f"{stack.base_url}/api/v1/scan", content=b'{"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}')

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/vnd.scanner.adapter.error+json; version=1.0"
    assert response.json()["error"]["message"]


def test_metadata_shows_feed_time_from_sysdig(stack):
    deadline = time.monotonic() + 45
    properties = {}
    while time.monotonic() < deadline:
        properties = httpx.get(f"{stack.base_url}/api/v1/metadata").json()["properties"]
        if "harbor.scanner-adapter/vulnerability-database-updated-at" in properties:
            break
        time.sleep(0.5)

    expected = stack.double.feeds_last_sync.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert properties.get("harbor.scanner-adapter/vulnerability-database-updated-at") == expected


def test_logs_contain_no_secrets(stack):
    # Runs last in this module: by now every scan above has logged at DEBUG.
    logs = "".join(stack.retired_logs) + stack.api.output() + stack.worker.output()

    assert "scan_id=" in logs
    for secret in stack.secrets:
        assert secret not in logs


def test_published_message_carries_only_the_scan_id(database_url, rabbitmq_url, credentials_key):
    queue = f"harbor-scans-e2e-{uuid.uuid4().hex[:8]}"
    user, password = robot(6)
    environ = {
        **os.environ,
        "SECURE_URL": "http://127.0.0.1:9",
        "SECURE_API_TOKEN": SECURE_TOKEN,
        "DATABASE_URL": database_url,
        "RABBITMQ_URL": rabbitmq_url,
        "REGISTRY_CREDENTIALS_KEY": credentials_key,
        "BROKER_QUEUE_NAME": queue,
    }
    port = free_port()
    api = start_api(environ, port)
    try:
        scan_id = HarborClient(f"http://127.0.0.1:{port}").submit(scan_request(random_digest(), user, password))
        body = _get_message(rabbitmq_url, queue)
    finally:
        api.stop()
        _delete_queues(rabbitmq_url, queue)

    message = json.loads(body)
    assert message["args"] == [scan_id]
    assert message["kwargs"] == {}
    assert password.encode() not in body
    assert base64.b64encode(f"{user}:{password}".encode()) not in body


def _get_message(rabbitmq_url: str, queue: str, timeout: float = 10) -> bytes:
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, _, body = channel.basic_get(queue, auto_ack=True)
            if body is not None:
                return body
            time.sleep(0.1)
        raise AssertionError(f"no message arrived on {queue}")
    finally:
        connection.close()
