"""The Harbor-facing routes, driven in-process against a real PostgreSQL."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from sanic import Sanic

from service.api.app import create_app
from service.api.metadata import LEGACY_SCANNING_BACKEND
from service.demo.embedded import BackgroundApi
from tests.harbor_contract import check_harbor_metadata_rules, validate_response
from tests.processes import free_port

Sanic.test_mode = True

SCAN_REQUEST_TYPE = "application/vnd.scanner.adapter.scan.request+json; version=1.0"
REPORT_V1_1 = "application/vnd.security.vulnerability.report; version=1.1"
REPORT_V1_0 = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
ROBOT = "robot$library+scanner-sysdig-7f3a"
ROBOT_SECRET = "Secret:With:Colons1"
DIGEST = "sha256:" + "ab" * 32


def scan_request(**changes) -> dict:
    """A scan request as Harbor 2.x sends it."""
    authorization = "Basic " + base64.b64encode(f"{ROBOT}:{ROBOT_SECRET}".encode()).decode()
    body = {
        "registry": {"url": "https://harbor.example.com", "authorization": authorization, "insecure": False},
        "artifact": {
            "repository": "library/alpine",
            "tag": "3.20",
            "digest": DIGEST,
            "mime_type": "application/vnd.oci.image.manifest.v1+json",
            "size": 3623807,
            "namespace_id": 1,
        },
        "enabled_capabilities": [
            {"type": "vulnerability", "produces_mime_types": [REPORT_V1_1], "parameters": None}
        ],
    }
    for path, value in changes.items():
        node = body
        keys = path.split("__")
        for key in keys[:-1]:
            node = node[key]
        if value is DELETE:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return body


DELETE = object()


class Reply:
    """The parts of an HTTP response the tests read."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.body = response.content

    @property
    def json(self):
        return json.loads(self.body)


class ServedApp:
    """An API served over loopback HTTP from its own thread and event loop.

    Real HTTP exercises Sanic's request limits, and the separate loop lets the tests use
    blocking SQL without stalling the server's pool.
    """

    def __init__(self, app: Sanic) -> None:
        self.sanic = app
        self._server = BackgroundApi(app, "127.0.0.1", free_port())
        self._server.start()
        self._http = httpx.Client(base_url=self._server.url, timeout=10, follow_redirects=False)

    async def get(self, path: str, **options) -> tuple[None, Reply]:
        return None, Reply(self._http.get(path, **options))

    async def post(self, path: str, **options) -> tuple[None, Reply]:
        return None, Reply(self._http.post(path, **options))

    async def delete(self, path: str, **options) -> tuple[None, Reply]:
        return None, Reply(self._http.delete(path, **options))

    def run(self, coroutine):
        """Run a coroutine on the server's event loop and return its result."""
        return self._server.run(coroutine)

    def stop(self) -> None:
        self._http.close()
        self._server.stop()


class Harness:
    def __init__(self, served: ServedApp, published: list[str], database_url: str) -> None:
        self.served = served
        self.client = served
        self.published = published
        self.database_url = database_url

    async def post_scan(self, body, content_type: str = SCAN_REQUEST_TYPE):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        _, response = await self.client.post(
            "/api/v1/scan",
            content=data,
            headers={"Content-Type": content_type, "Accept": "application/vnd.scanner.adapter.scan.response+json; version=1.0"},
        )
        return response

    async def get_report(self, scan_id: str, accept: str | None = REPORT_V1_1):
        headers = {} if accept is None else {"Accept": accept}
        _, response = await self.client.get(f"/api/v1/scan/{scan_id}/report", headers=headers)
        return response

    def sql(self, query: str, *params):
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture
def make_app(make_settings):
    """Serve apps for one test and stop them, with their pools and tasks, afterwards."""
    served: list[ServedApp] = []

    def build(publish=None, broker_ready=lambda: True, **environ) -> ServedApp:
        app = create_app(
            make_settings(**environ), publish or (lambda _: None), broker_ready, name=f"api-{uuid.uuid4().hex[:8]}"
        )
        served.append(ServedApp(app))
        return served[-1]

    yield build

    for app in served:
        app.stop()


@pytest.fixture
def harness(make_app, clean_database):
    published: list[str] = []
    return Harness(make_app(published.append), published, clean_database)


# --- metadata ---------------------------------------------------------------------------


async def test_metadata_passes_schema_and_harbor_rules(harness):
    _, response = await harness.client.get(
        "/api/v1/metadata", headers={"Accept": "application/vnd.scanner.adapter.metadata+json; version=1.0"}
    )

    assert response.status == 200
    validate_response("/metadata", "get", 200, response.headers["content-type"], response.body)
    check_harbor_metadata_rules(response.json)


async def test_metadata_advertises_only_the_1_1_report(harness):
    _, response = await harness.client.get("/api/v1/metadata")

    (capability,) = response.json["capabilities"]
    assert capability["produces_mime_types"] == [REPORT_V1_1]
    assert set(capability["consumes_mime_types"]) == {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    }


async def test_metadata_omits_unknown_database_time(harness):
    _, response = await harness.client.get("/api/v1/metadata")

    properties = response.json["properties"]
    assert properties["harbor.scanner-adapter/scanner-type"] == "os-package-vulnerability"
    assert "harbor.scanner-adapter/vulnerability-database-updated-at" not in properties


async def test_metadata_shows_stored_database_time(harness):
    harness.sql(
        "INSERT INTO vulnerability_database (backend, updated_at) VALUES (%s, %s)",
        LEGACY_SCANNING_BACKEND,
        datetime(2026, 11, 30, 8, 15, 0, tzinfo=UTC),
    )
    ctx = harness.served.sanic.ctx
    harness.served.run(ctx.metadata.refresh(ctx.sessions))

    _, response = await harness.client.get("/api/v1/metadata")

    assert response.json["properties"]["harbor.scanner-adapter/vulnerability-database-updated-at"] == "2026-11-30T08:15:00Z"


async def test_metadata_keeps_answering_when_database_is_gone(harness):
    harness.sql(
        "INSERT INTO vulnerability_database (backend, updated_at) VALUES (%s, %s)",
        LEGACY_SCANNING_BACKEND,
        datetime(2026, 11, 30, 8, 15, 0, tzinfo=UTC),
    )
    ctx = harness.served.sanic.ctx
    harness.served.run(ctx.metadata.refresh(ctx.sessions))
    ctx.sessions.configure(bind=_unreachable_engine())

    harness.served.run(ctx.metadata.refresh(ctx.sessions))
    _, response = await harness.client.get("/api/v1/metadata")

    assert response.status == 200
    assert "harbor.scanner-adapter/vulnerability-database-updated-at" in response.json["properties"]


def _unreachable_engine():
    from sqlalchemy.ext.asyncio import create_async_engine

    return create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none", connect_args={"timeout": 1})


# --- POST /scan -------------------------------------------------------------------------


async def test_scan_request_is_stored_and_published(harness):
    response = await harness.post_scan(scan_request())

    assert response.status == 202
    validate_response("/scan", "post", 202, response.headers["content-type"], response.body)
    scan_id = response.json["id"]
    assert harness.published == [scan_id]
    rows = harness.sql("SELECT state, repository, digest, tag, mode FROM scans WHERE id = %s", uuid.UUID(scan_id))
    assert rows == [("submitted", "library/alpine", DIGEST, "3.20", "backend")]
    events = harness.sql("SELECT from_state, to_state FROM scan_events WHERE scan_id = %s", uuid.UUID(scan_id))
    assert events == [(None, "submitted")]


async def test_scan_request_credentials_are_encrypted_at_rest(harness):
    response = await harness.post_scan(scan_request())

    (stored,) = harness.sql("SELECT registry_credentials FROM scans WHERE id = %s", uuid.UUID(response.json["id"]))[0]
    assert stored is not None
    assert ROBOT.encode() not in bytes(stored)
    assert ROBOT_SECRET.encode() not in bytes(stored)
    assert base64.b64encode(f"{ROBOT}:{ROBOT_SECRET}".encode()) not in bytes(stored)
    decrypted = harness.served.sanic.ctx.cipher.decrypt(bytes(stored))
    assert decrypted == scan_request()["registry"]["authorization"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/vnd.scanner.adapter.scan.request+json; version=1.1",
        "application/json",
        "text/plain",
    ],
)
async def test_scan_request_accepts_any_content_type(harness, content_type):
    response = await harness.post_scan(scan_request(), content_type=content_type)

    assert response.status == 202


async def test_scan_request_without_enabled_capabilities(harness):
    response = await harness.post_scan(scan_request(enabled_capabilities=DELETE))

    assert response.status == 202


async def test_scan_request_with_empty_authorization(harness):
    response = await harness.post_scan(scan_request(registry__authorization=""))

    assert response.status == 202
    (stored,) = harness.sql("SELECT registry_credentials FROM scans")[0]
    assert stored is None


async def test_scan_request_ignores_unknown_fields(harness):
    response = await harness.post_scan(scan_request(future_field={"x": 1}, artifact__labels=["a"]))

    assert response.status == 202


BAD_REQUESTS = [
    # (name, body, status, message fragment)
    ("malformed json", b'{"registry": ', 400, "not valid JSON"),
    ("not utf-8", b"\xff\xfe{}", 400, "not valid JSON"),
    ("empty body", b"", 400, "not valid JSON"),
    ("json array", b"[]", 400, "JSON object"),
    ("json string", b'"scan"', 400, "JSON object"),
    ("deep nesting", b"[" * 100_000, 400, "nested"),
    ("huge integer", b'{"artifact": {"size": ' + b"9" * 5000 + b"}}", 400, "cannot be parsed"),
    ("missing registry", scan_request(registry=DELETE), 422, "registry is missing"),
    ("registry not object", scan_request(registry="https://x"), 422, "registry must be an object"),
    ("missing registry url", scan_request(registry__url=DELETE), 422, "registry.url is missing"),
    ("registry url number", scan_request(registry__url=5), 422, "registry.url must be a string"),
    ("registry url no scheme", scan_request(registry__url="harbor.example.com"), 422, "registry.url"),
    ("registry url ftp", scan_request(registry__url="ftp://harbor.example.com"), 422, "registry.url"),
    ("registry url userinfo", scan_request(registry__url="https://u:p@harbor.example.com"), 422, "user info"),
    ("registry url bad port", scan_request(registry__url="https://harbor.example.com:99999"), 422, "port"),
    ("registry url nul", scan_request(registry__url="https://harbor\u0000.example.com"), 422, "control characters"),
    ("registry url broken ipv6", scan_request(registry__url="https://[::1"), 422, "not a valid URL"),
    ("registry url too long", scan_request(registry__url="https://harbor.example.com/" + "a" * 3000), 422, "at most"),
    ("registry url non-ascii", scan_request(registry__url="https://h\u00e4rbor.example.com"), 422, "punycode"),
    ("registry url empty query", scan_request(registry__url="https://harbor.example.com?"), 422, "query"),
    ("registry url empty fragment", scan_request(registry__url="https://harbor.example.com#"), 422, "fragment"),
    ("registry url empty port", scan_request(registry__url="https://harbor.example.com:"), 422, "port"),
    ("registry url blank", scan_request(registry__url="https://harbor .example.com"), 422, "blanks"),
    ("authorization bearer", scan_request(registry__authorization="Bearer eyJhbGciOi"), 422, "Basic robot credentials"),
    ("authorization number", scan_request(registry__authorization=7), 422, "registry.authorization must be a string"),
    ("authorization scheme", scan_request(registry__authorization="Digest abc"), 422, "registry.authorization"),
    ("authorization bad base64", scan_request(registry__authorization="Basic !!!"), 422, "registry.authorization"),
    ("authorization no colon", scan_request(registry__authorization="Basic " + base64.b64encode(b"robot").decode()), 422, "user:password"),
    ("missing artifact", scan_request(artifact=DELETE), 422, "artifact is missing"),
    ("artifact list", scan_request(artifact=[]), 422, "artifact must be an object"),
    ("missing repository", scan_request(artifact__repository=DELETE), 422, "artifact.repository is missing"),
    ("repository upper case", scan_request(artifact__repository="Library/Alpine"), 422, "artifact.repository"),
    ("repository traversal", scan_request(artifact__repository="../etc"), 422, "artifact.repository"),
    ("missing digest", scan_request(artifact__digest=DELETE), 422, "artifact.digest is missing"),
    ("digest short", scan_request(artifact__digest="sha256:abc"), 422, "artifact.digest"),
    ("digest upper hex", scan_request(artifact__digest="sha256:" + "AB" * 32), 422, "artifact.digest"),
    ("digest md5", scan_request(artifact__digest="md5:" + "a" * 32), 422, "artifact.digest"),
    ("digest number", scan_request(artifact__digest=12), 422, "artifact.digest must be a string"),
    ("tag with slash", scan_request(artifact__tag="a/b"), 422, "artifact.tag"),
    ("tag non-ascii", scan_request(artifact__tag="\u00fcn\u00efc\u00f8de"), 422, "artifact.tag"),
    ("repository with nul", scan_request(artifact__repository="library/alpine\u0000"), 422, "control characters"),
    ("tag boolean", scan_request(artifact__tag=True), 422, "artifact.tag must be a string"),
    ("missing mime type", scan_request(artifact__mime_type=DELETE), 422, "artifact.mime_type is missing"),
    ("image index", scan_request(artifact__mime_type="application/vnd.oci.image.index.v1+json"), 501, "not scanned"),
    ("manifest list", scan_request(artifact__mime_type="application/vnd.docker.distribution.manifest.list.v2+json"), 501, "not scanned"),
    ("helm chart", scan_request(artifact__mime_type="application/vnd.cncf.helm.config.v1+json"), 501, "not scanned"),
    ("sbom capability", scan_request(enabled_capabilities=[{"type": "sbom", "parameters": {"sbom_media_types": ["application/spdx+json"]}}]), 501, "sbom"),
    ("raw report only", scan_request(enabled_capabilities=[{"type": "vulnerability", "produces_mime_types": ["application/vnd.scanner.adapter.vuln.report.raw"]}]), 501, "produces"),
    ("capabilities object", scan_request(enabled_capabilities={"type": "vulnerability"}), 422, "enabled_capabilities must be an array"),
    ("capability string", scan_request(enabled_capabilities=["vulnerability"]), 422, "enabled_capabilities[0]"),
]


@pytest.mark.parametrize("name,body,status,fragment", BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
async def test_bad_scan_request_is_rejected_and_not_stored(harness, name, body, status, fragment):
    response = await harness.post_scan(body)

    assert response.status == status
    validate_response("/scan", "post", status, response.headers["content-type"], response.body)
    assert fragment in response.json["error"]["message"]
    assert harness.sql("SELECT count(*) FROM scans") == [(0,)]
    assert harness.published == []


async def test_rejection_never_echoes_credentials(harness):
    secret = base64.b64encode(b"robot-without-colon-but-secret").decode()
    response = await harness.post_scan(scan_request(registry__authorization=f"Basic {secret}"))

    assert response.status == 422
    assert secret not in response.body.decode()


async def test_publish_failure_still_accepts_the_scan(make_app, clean_database):
    def broken_publish(scan_id: str) -> None:
        raise ConnectionError("broker is down")

    harness = Harness(make_app(broken_publish), [], clean_database)

    response = await harness.post_scan(scan_request())

    assert response.status == 202
    assert harness.sql("SELECT state FROM scans") == [("submitted",)]


# --- GET /scan/{id}/report --------------------------------------------------------------


def _force_state(harness: Harness, scan_id: str, state: str, **columns) -> None:
    assignments = ", ".join([f"{name} = %s" for name in columns] + ["state = %s"])
    harness.sql(f"UPDATE scans SET {assignments} WHERE id = %s", *columns.values(), state, uuid.UUID(scan_id))


async def test_report_while_submitted_is_302_with_refresh_after(harness):
    scan_id = (await harness.post_scan(scan_request())).json["id"]

    response = await harness.get_report(scan_id)

    assert response.status == 302
    assert response.headers["Refresh-After"] == "5"
    validate_response("/scan/{scan_request_id}/report", "get", 302, None, response.body)


@pytest.mark.parametrize("configured,sent", [("1", "1"), ("127", "127"), ("600", "127"), ("0", "1"), ("-4", "1")])
async def test_refresh_after_stays_within_harbor_range(make_app, clean_database, configured, sent):
    harness = Harness(make_app(REFRESH_AFTER_SECONDS=configured), [], clean_database)
    scan_id = (await harness.post_scan(scan_request())).json["id"]

    response = await harness.get_report(scan_id)

    assert response.headers["Refresh-After"] == sent


async def test_report_while_scanning_is_302(harness):
    scan_id = (await harness.post_scan(scan_request())).json["id"]
    _force_state(harness, scan_id, "scanning")

    response = await harness.get_report(scan_id)

    assert response.status == 302


REPORT = {
    "generated_at": "2026-12-01T10:00:00Z",
    "artifact": {"repository": "library/alpine", "digest": DIGEST, "tag": "3.20", "mime_type": "application/vnd.oci.image.manifest.v1+json"},
    "scanner": {"name": "Sysdig Secure", "vendor": "Sysdig", "version": "0.1.0"},
    "severity": "High",
    "vulnerabilities": [
        {
            "id": "CVE-2019-14697",
            "package": "musl",
            "version": "1.1.18-r3",
            "fix_version": "1.1.18-r4",
            "severity": "High",
            "links": ["https://nvd.nist.gov/vuln/detail/CVE-2019-14697"],
            "preferred_cvss": {"score_v3": 9.8, "score_v2": 7.5},
            "vendor_attributes": {"CVSS": {"nvd": {"V3Score": 9.8, "V2Score": 7.5}}},
        }
    ],
}


async def _ready_scan(harness: Harness) -> str:
    scan_id = (await harness.post_scan(scan_request())).json["id"]
    _force_state(harness, scan_id, "report_ready", report=json.dumps(REPORT))
    return scan_id


@pytest.mark.parametrize("accept", [REPORT_V1_1, None, "*/*", "application/vnd.security.vulnerability.report;version=1.1"])
async def test_report_ready_serves_1_1_report(harness, accept):
    scan_id = await _ready_scan(harness)

    response = await harness.get_report(scan_id, accept=accept)

    assert response.status == 200
    assert response.headers["content-type"] == REPORT_V1_1
    validate_response("/scan/{scan_request_id}/report", "get", 200, response.headers["content-type"], response.body)
    assert response.json == REPORT


async def test_report_served_again_on_second_get(harness):
    scan_id = await _ready_scan(harness)

    first = await harness.get_report(scan_id)
    second = await harness.get_report(scan_id)

    assert first.status == second.status == 200
    assert first.json == second.json


async def test_report_1_0_omits_1_1_fields(harness):
    scan_id = await _ready_scan(harness)

    response = await harness.get_report(scan_id, accept=REPORT_V1_0)

    assert response.status == 200
    assert response.headers["content-type"] == REPORT_V1_0
    validate_response("/scan/{scan_request_id}/report", "get", 200, response.headers["content-type"], response.body)
    assert "preferred_cvss" not in response.json["vulnerabilities"][0]


@pytest.mark.parametrize(
    "accept",
    ["application/vnd.scanner.adapter.vuln.report.raw", "application/vnd.security.sbom.report+json; version=1.0", "text/html"],
)
async def test_report_type_not_produced_is_501(harness, accept):
    scan_id = await _ready_scan(harness)

    response = await harness.get_report(scan_id, accept=accept)

    assert response.status == 501
    validate_response("/scan/{scan_request_id}/report", "get", 501, response.headers["content-type"], response.body)


async def test_failed_scan_is_500_with_reason(harness):
    scan_id = (await harness.post_scan(scan_request())).json["id"]
    _force_state(harness, scan_id, "failed", last_error="Sysdig Secure could not analyse the image (analysis_failed)")

    response = await harness.get_report(scan_id)

    assert response.status == 500
    validate_response("/scan/{scan_request_id}/report", "get", 500, response.headers["content-type"], response.body)
    assert "analysis_failed" in response.json["error"]["message"]


async def test_overdue_scan_is_500_before_the_sweeper_runs(harness):
    scan_id = (await harness.post_scan(scan_request())).json["id"]
    _force_state(harness, scan_id, "scanning", deadline_at=datetime.now(UTC) - timedelta(seconds=1))

    response = await harness.get_report(scan_id)

    assert response.status == 500
    assert "did not finish" in response.json["error"]["message"]


@pytest.mark.parametrize(
    "scan_id",
    [str(uuid.uuid4()), "not-a-uuid", "1234", "%00", "a" * 300, uuid.uuid4().hex, f"urn:uuid:{uuid.uuid4()}"],
)
async def test_unknown_or_malformed_scan_id_is_404(harness, scan_id):
    response = await harness.get_report(scan_id)

    assert response.status == 404
    validate_response("/scan/{scan_request_id}/report", "get", 404, response.headers["content-type"], response.body)


async def test_unknown_route_gets_envelope(harness):
    _, response = await harness.client.get("/api/v1/nothing")

    assert response.status == 404
    assert response.headers["content-type"] == "application/vnd.scanner.adapter.error+json; version=1.0"
    assert response.json["error"]["message"]


async def test_wrong_method_gets_envelope(harness):
    _, response = await harness.client.delete("/api/v1/scan")

    assert response.status == 405
    assert response.json["error"]["message"]


# --- probes and authentication ----------------------------------------------------------


async def test_ready_probe_reports_database_and_broker(harness):
    _, response = await harness.client.get("/probe/ready")

    assert response.status == 200
    assert response.json["checks"] == {"database": True, "broker": True}


async def test_ready_probe_fails_without_broker(make_app):
    app = make_app(broker_ready=lambda: False)

    _, response = await app.get("/probe/ready")

    assert response.status == 503
    assert response.json["checks"]["broker"] is False


async def test_api_key_is_required_when_configured(make_app):
    app = make_app(SCANNER_API_KEYS="k1-secret,k2-secret")

    _, anonymous = await app.get("/api/v1/metadata")
    _, wrong = await app.get("/api/v1/metadata", headers={"X-ScannerAdapter-API-Key": "nope"})
    _, by_header = await app.get("/api/v1/metadata", headers={"X-ScannerAdapter-API-Key": "k2-secret"})
    _, by_bearer = await app.get("/api/v1/metadata", headers={"Authorization": "Bearer k1-secret"})
    _, probe = await app.get("/probe/healthy")

    assert anonymous.status == 401
    assert anonymous.json["error"]["message"]
    assert wrong.status == 401
    assert by_header.status == 200
    assert by_bearer.status == 200
    assert probe.status == 200


async def test_report_id_in_other_forms_is_404(harness):
    scan_id = await _ready_scan(harness)

    for form in (scan_id.replace("-", ""), f"urn:uuid:{scan_id}", "{" + scan_id + "}"):
        response = await harness.get_report(form)
        assert response.status == 404, form

    assert (await harness.get_report(scan_id.upper())).status == 200


@pytest.mark.parametrize(
    "accept,expected",
    [
        (f"{REPORT_V1_0};q=0.1, {REPORT_V1_1};q=0.9", REPORT_V1_1),
        (f"{REPORT_V1_1}, {REPORT_V1_0}", REPORT_V1_1),
        (f"{REPORT_V1_0}, {REPORT_V1_1}", REPORT_V1_0),
        (f"text/html, {REPORT_V1_0};q=0.5", REPORT_V1_0),
        ("*/*;q=0.2", REPORT_V1_1),
    ],
)
async def test_report_type_negotiation(harness, accept, expected):
    scan_id = await _ready_scan(harness)

    response = await harness.get_report(scan_id, accept=accept)

    assert response.status == 200
    assert response.headers["content-type"] == expected


@pytest.mark.parametrize("accept", [f"{REPORT_V1_1}; q=0", "*/*;q=0", f"{REPORT_V1_1};q=abc"])
async def test_report_type_excluded_by_q_is_501(harness, accept):
    scan_id = await _ready_scan(harness)

    response = await harness.get_report(scan_id, accept=accept)

    assert response.status == 501


async def test_slow_broker_does_not_delay_the_202(make_app, clean_database):
    release = threading.Event()
    finished = threading.Event()

    def stuck_publish(scan_id: str) -> None:
        release.wait(30)
        finished.set()

    harness = Harness(make_app(stuck_publish), [], clean_database)
    try:
        response = await harness.post_scan(scan_request())
        publish_finished_first = finished.is_set()
    finally:
        release.set()

    assert response.status == 202
    assert publish_finished_first is False
    assert harness.sql("SELECT state FROM scans") == [("submitted",)]


async def test_unreachable_database_gets_clear_500(make_app):
    served = make_app(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none")
    harness = Harness(served, [], "")

    post = await harness.post_scan(scan_request())
    report = await harness.get_report(str(uuid.uuid4()))
    _, metadata = await served.get("/api/v1/metadata")

    assert post.status == 500
    assert "cannot reach its database" in post.json["error"]["message"]
    assert report.status == 500
    assert metadata.status == 200


@pytest.mark.parametrize(
    "sent,stored",
    [
        ("HTTPS://Harbor.Example.COM/", "https://harbor.example.com"),
        ("https://harbor.example.com:8443/", "https://harbor.example.com:8443"),
        ("http://core:8080", "http://core:8080"),
        ("https://[::1]:5000", "https://[::1]:5000"),
    ],
)
async def test_registry_url_is_stored_in_one_spelling(harness, sent, stored):
    response = await harness.post_scan(scan_request(registry__url=sent))

    assert response.status == 202
    assert harness.sql("SELECT registry_url FROM scans") == [(stored,)]
