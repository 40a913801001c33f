"""SecureClient over real HTTP against the loopback Sysdig Secure double."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from service.config import SecureSettings
from service.credentials import RegistryCredentials
from service.errors import ScanFailed, TransientError
from service.sysdig.client import (
    AnalysisStatus,
    ImageNotAnalyzed,
    InvalidSysdigResponse,
    SecureClient,
    SysdigRequestRejected,
    SysdigUnavailable,
)
from tests.doubles.sysdig_secure import DEFAULT_FEEDS_LAST_SYNC, SysdigSecureDouble

# Distinctive values, so that a leak into logs or messages is easy to find.
TOKEN = "sysdig-api-token-5b1e9c77"
PASSWORD = "robot:secret:with:colons"
ROBOT = RegistryCredentials(username="robot$library+scanner", password=PASSWORD)

HOST = "harbor.example.com:8443"
DIGEST = "sha256:" + "ab" * 32
PULL_STRING = f"{HOST}/library/app@{DIGEST}"

RECORDED_SCAN = Path(__file__).parent / "data" / "sysdig" / "inline-scan-v2-output-anchore-shape.json"
VARIANTS = ("results", "anchore")


class RecordingSleep:
    """Stands in for time.sleep: records each requested wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def recorded_vulnerabilities() -> list[dict]:
    return json.loads(RECORDED_SCAN.read_text(encoding="utf-8"))["vulnsReport"]["vulnerabilities"]


def make_client(
    url: str,
    sleep: RecordingSleep,
    *,
    scanning_api: str = "results",
    token: str = TOKEN,
    max_attempts: int = 4,
    max_retry_wait: float = 30.0,
    read_timeout: float = 5.0,
) -> SecureClient:
    settings = SecureSettings(
        url=url,
        api_token=token,
        connect_timeout=2.0,
        read_timeout=read_timeout,
        scanning_api=scanning_api,  # type: ignore[arg-type]
        max_attempts=max_attempts,
        max_retry_wait=max_retry_wait,
    )
    return SecureClient(settings, sleep=sleep)


def wait_until_analysed(client: SecureClient, digest: str, timeout: float = 5.0) -> AnalysisStatus:
    deadline = time.monotonic() + timeout
    status = client.analysis_status(digest)
    while status.state == "pending" and time.monotonic() < deadline:
        time.sleep(0.02)
        status = client.analysis_status(digest)
    return status


@pytest.fixture
def double() -> Iterator[SysdigSecureDouble]:
    with SysdigSecureDouble(analysis_seconds=0.0, token=TOKEN) as running:
        yield running


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def client(double: SysdigSecureDouble, sleeps: RecordingSleep) -> Iterator[SecureClient]:
    with make_client(double.url, sleeps) as secure:
        yield secure


@pytest.fixture(params=VARIANTS)
def variant_client(request: pytest.FixtureRequest, double: SysdigSecureDouble, sleeps: RecordingSleep) -> Iterator[SecureClient]:
    with make_client(double.url, sleeps, scanning_api=request.param) as secure:
        yield secure


# --- happy path -------------------------------------------------------------------------------


def test_scan_flow_returns_recorded_vulnerabilities(variant_client: SecureClient) -> None:
    variant_client.register_registry(HOST, ROBOT, verify_tls=True)
    digest = variant_client.add_image(PULL_STRING)
    status = wait_until_analysed(variant_client, digest)
    vulnerabilities = variant_client.vulnerabilities(digest)

    assert digest == DIGEST
    assert status.state == "analyzed"
    assert vulnerabilities == recorded_vulnerabilities()


def test_analyzed_status_carries_utc_time(variant_client: SecureClient) -> None:
    variant_client.add_image(PULL_STRING)

    status = wait_until_analysed(variant_client, DIGEST)

    assert status.analyzed_at is not None
    assert status.analyzed_at.utcoffset() == timedelta(0)


def test_vulnerability_calls_use_variant_paths(double: SysdigSecureDouble, sleeps: RecordingSleep) -> None:
    for variant in VARIANTS:
        with make_client(double.url, sleeps, scanning_api=variant) as secure:
            secure.add_image(PULL_STRING)
            secure.vulnerabilities(DIGEST)

    paths = [request.path for request in double.requests_of("vulnerabilities")]
    queries = [request.query for request in double.requests_of("vulnerabilities")]
    assert paths == [
        f"/api/scanning/v1/images/{DIGEST}/vulnDirect/all",
        f"/api/scanning/v1/anchore/images/{DIGEST}/vuln/all",
    ]
    assert queries[0] == {"includeVulnExceptions": ["false"]}


def test_add_image_sends_pull_string_without_force(client: SecureClient, double: SysdigSecureDouble) -> None:
    client.add_image(PULL_STRING)

    [request] = double.requests_of("add_image")
    assert request.body == {"tag": PULL_STRING}
    assert request.query == {"force": ["false"]}
    assert double.images_added == [PULL_STRING]


def test_requests_carry_token_and_standard_headers(client: SecureClient, double: SysdigSecureDouble) -> None:
    client.add_image(PULL_STRING)

    [request] = double.requests
    assert request.authorized
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("harbor-scanner-sysdig/")


# --- registry credentials ---------------------------------------------------------------------


def test_register_existing_registry_updates_with_put(
    client: SecureClient, double: SysdigSecureDouble, sleeps: RecordingSleep
) -> None:
    replacement = RegistryCredentials(username="robot$library+next", password="next-secret")

    client.register_registry(HOST, ROBOT, verify_tls=True)
    client.register_registry(HOST, replacement, verify_tls=True)

    assert [request.method for request in double.requests] == ["POST", "POST", "PUT"]
    assert double.requests[-1].path == f"/api/scanning/v1/anchore/registries/registry/{quote(HOST, safe='')}"
    assert double.requests[-1].query == {"validate": ["false"]}
    assert double.registered_credentials[HOST][-1].user == "robot$library+next"
    assert sleeps.waits == []  # "already exists" comes with HTTP 500 but is a definite outcome, not an outage


def test_password_with_colons_reaches_sysdig_intact(client: SecureClient, double: SysdigSecureDouble) -> None:
    client.register_registry(HOST, ROBOT, verify_tls=True)

    [record] = double.registered_credentials[HOST]
    assert record.user == "robot$library+scanner"
    assert record.password == PASSWORD


def test_register_sends_docker_v2_and_tls_choice(client: SecureClient, double: SysdigSecureDouble) -> None:
    client.register_registry(HOST, ROBOT, verify_tls=False)

    [request] = double.requests
    assert request.body["registry"] == HOST
    assert request.body["registry_type"] == "docker_v2"
    assert request.body["registry_verify"] is False
    assert request.query == {"validate": ["false"]}


def test_register_without_credentials_sends_nothing(client: SecureClient, double: SysdigSecureDouble) -> None:
    client.register_registry(HOST, None, verify_tls=True)

    assert double.requests == []


def test_register_rejects_registry_with_path(client: SecureClient) -> None:
    with pytest.raises(ScanFailed, match="host"):
        client.register_registry("harbor.example.com/library", ROBOT, verify_tls=True)


def test_failed_update_raises_request_rejected(client: SecureClient, double: SysdigSecureDouble) -> None:
    client.register_registry(HOST, ROBOT, verify_tls=True)
    double.inject("update_registry", status=400, body={"message": "invalid registry_type"})

    with pytest.raises(SysdigRequestRejected, match="invalid registry_type") as raised:
        client.register_registry(HOST, ROBOT, verify_tls=True)

    assert "update_registry" in str(raised.value)


# --- add_image errors -------------------------------------------------------------------------


def test_unreachable_registry_raises_request_rejected(
    client: SecureClient, double: SysdigSecureDouble, sleeps: RecordingSleep
) -> None:
    double.unreachable_registry(HOST)

    with pytest.raises(SysdigRequestRejected) as raised:
        client.add_image(PULL_STRING)

    message = str(raised.value)
    assert "cannot fetch the manifest" in message
    assert "REGISTRY_NOT_ACCESSIBLE" in message
    assert "use internal address" in message
    assert len(double.requests_of("add_image")) == 1
    assert sleeps.waits == []


def test_add_image_without_digest_raises_invalid_response(client: SecureClient, double: SysdigSecureDouble) -> None:
    double.inject("add_image", status=200, body=[{"analysis_status": "not_analyzed"}])

    with pytest.raises(InvalidSysdigResponse, match="imageDigest"):
        client.add_image(PULL_STRING)


# --- retries ----------------------------------------------------------------------------------


def test_client_retries_429_honouring_retry_after(
    client: SecureClient, double: SysdigSecureDouble, sleeps: RecordingSleep
) -> None:
    double.inject("add_image", status=429, times=2, retry_after=7)

    digest = client.add_image(PULL_STRING)

    assert digest == DIGEST
    assert sleeps.waits == [7.0, 7.0]
    assert len(double.requests_of("add_image")) == 3


def test_client_reads_retry_after_http_date(client: SecureClient, double: SysdigSecureDouble, sleeps: RecordingSleep) -> None:
    later = datetime.now(UTC) + timedelta(seconds=20)
    double.inject("feeds", status=503, retry_after=format_datetime(later, usegmt=True))

    client.feeds_updated_at()

    [wait] = sleeps.waits
    assert 0 < wait <= 20


def test_client_retries_5xx_then_succeeds(
    client: SecureClient, double: SysdigSecureDouble, sleeps: RecordingSleep
) -> None:
    client.add_image(PULL_STRING)
    double.inject("vulnerabilities", status=502)
    double.inject("vulnerabilities", status=503)

    vulnerabilities = client.vulnerabilities(DIGEST)

    assert len(vulnerabilities) == len(recorded_vulnerabilities())
    assert len(sleeps.waits) == 2
    assert 0 < sleeps.waits[0] <= 1.0
    assert 0 < sleeps.waits[1] <= 2.0


def test_backoff_stays_within_max_retry_wait(double: SysdigSecureDouble, sleeps: RecordingSleep) -> None:
    double.inject("feeds", status=500, times=5)

    with make_client(double.url, sleeps, max_attempts=6, max_retry_wait=1.5) as secure:
        secure.feeds_updated_at()

    assert len(sleeps.waits) == 5
    assert max(sleeps.waits) <= 1.5


def test_persistent_503_raises_sysdig_unavailable(double: SysdigSecureDouble, sleeps: RecordingSleep) -> None:
    double.inject("analysis_status", status=503, times=None)

    with make_client(double.url, sleeps, max_attempts=3) as secure:
        with pytest.raises(SysdigUnavailable) as raised:
            secure.analysis_status(DIGEST)

    assert isinstance(raised.value, TransientError)
    assert raised.value.retry_after is None
    assert "HTTP 503" in str(raised.value)
    assert len(double.requests_of("analysis_status")) == 3
    assert len(sleeps.waits) == 2


def test_retry_after_above_cap_raises_at_once(double: SysdigSecureDouble, sleeps: RecordingSleep) -> None:
    double.inject("add_image", status=429, retry_after=120)

    with make_client(double.url, sleeps, max_retry_wait=30.0) as secure:
        with pytest.raises(SysdigUnavailable) as raised:
            secure.add_image(PULL_STRING)

    assert raised.value.retry_after == 120
    assert sleeps.waits == []
    assert len(double.requests_of("add_image")) == 1


def test_last_429_passes_retry_after_to_caller(double: SysdigSecureDouble, sleeps: RecordingSleep) -> None:
    double.inject("feeds", status=429, times=None, retry_after=5)

    with make_client(double.url, sleeps, max_attempts=2) as secure:
        with pytest.raises(SysdigUnavailable) as raised:
            secure.feeds_updated_at()

    assert sleeps.waits == [5.0]
    assert raised.value.retry_after == 5


def test_connection_refused_raises_sysdig_unavailable(sleeps: RecordingSleep) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with make_client(f"http://127.0.0.1:{closed_port}", sleeps, max_attempts=2) as secure:
        with pytest.raises(SysdigUnavailable) as raised:
            secure.feeds_updated_at()

    assert "ConnectError" in str(raised.value)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert len(sleeps.waits) == 1


def test_read_timeout_is_retried(double: SysdigSecureDouble, sleeps: RecordingSleep) -> None:
    double.inject("feeds", status=200, body=[], delay=0.6)

    with make_client(double.url, sleeps, read_timeout=0.2) as secure:
        updated_at = secure.feeds_updated_at()

    assert updated_at == DEFAULT_FEEDS_LAST_SYNC
    assert len(sleeps.waits) == 1


# --- bodies that are not the expected JSON ------------------------------------------------------


def test_html_502_body_stays_out_of_message(double: SysdigSecureDouble, sleeps: RecordingSleep) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
    double.inject("vulnerabilities", status=502, times=None, body=page, content_type="text/html")

    with make_client(double.url, sleeps, max_attempts=2) as secure:
        with pytest.raises(SysdigUnavailable) as raised:
            secure.vulnerabilities(DIGEST)

    assert "HTTP 502" in str(raised.value)
    assert "<html" not in str(raised.value)


def test_html_200_raises_invalid_response(client: SecureClient, double: SysdigSecureDouble) -> None:
    page = "<!DOCTYPE html><html><body>Sign in to continue</body></html>"
    double.inject("vulnerabilities", status=200, body=page, content_type="text/html; charset=utf-8")

    with pytest.raises(InvalidSysdigResponse) as raised:
        client.vulnerabilities(DIGEST)

    assert isinstance(raised.value, TransientError)
    assert "vulnerabilities" in str(raised.value)
    assert "Sign in" not in str(raised.value)


def test_unexpected_json_shape_raises_invalid_response(client: SecureClient, double: SysdigSecureDouble) -> None:
    double.inject("analysis_status", status=200, body={"unexpected": True})

    with pytest.raises(InvalidSysdigResponse, match="results"):
        client.analysis_status(DIGEST)


def test_null_vulns_read_as_no_findings(client: SecureClient, double: SysdigSecureDouble) -> None:
    double.inject("vulnerabilities", status=200, body={"imageDigest": DIGEST, "vtype": "all", "vulns": None})

    assert client.vulnerabilities(DIGEST) == []


def test_plain_text_error_is_shortened(client: SecureClient, double: SysdigSecureDouble) -> None:
    double.inject("add_image", status=400, body="bad request " * 500)

    with pytest.raises(SysdigRequestRejected) as raised:
        client.add_image(PULL_STRING)

    assert "bad request" in str(raised.value)
    assert len(str(raised.value)) < 400


# --- rejections -------------------------------------------------------------------------------


def test_401_message_names_setting_without_token(double: SysdigSecureDouble, sleeps: RecordingSleep) -> None:
    wrong_token = "wrong-token-d41d8cd9"

    with make_client(double.url, sleeps, token=wrong_token) as secure:
        with pytest.raises(SysdigRequestRejected) as raised:
            secure.add_image(PULL_STRING)

    message = str(raised.value)
    assert raised.value.status == 401
    assert isinstance(raised.value, ScanFailed)
    assert "SECURE_API_TOKEN" in message
    assert wrong_token not in message
    assert TOKEN not in message
    assert sleeps.waits == []


def test_403_raises_request_rejected(client: SecureClient, double: SysdigSecureDouble) -> None:
    double.inject("feeds", status=403, body={"message": "Forbidden"})

    with pytest.raises(SysdigRequestRejected, match="permission") as raised:
        client.feeds_updated_at()

    assert raised.value.status == 403


def test_unexpected_404_points_at_legacy_api(client: SecureClient, double: SysdigSecureDouble) -> None:
    double.inject("analysis_status", status=404, body={"message": "Not Found"})

    with pytest.raises(SysdigRequestRejected, match="legacy scanning API"):
        client.analysis_status(DIGEST)


def test_errors_array_message_is_reported(client: SecureClient, double: SysdigSecureDouble) -> None:
    double.inject("add_image", status=400, body={"errors": [{"message": "invalid tag format", "reason": "bad"}]})

    with pytest.raises(SysdigRequestRejected, match="invalid tag format"):
        client.add_image(PULL_STRING)


# --- analysis status mapping ------------------------------------------------------------------


def test_status_of_unknown_digest_is_not_found(variant_client: SecureClient) -> None:
    status = variant_client.analysis_status(DIGEST)

    assert status.state == "not_found"


def test_status_during_analysis_is_pending(variant_client: SecureClient, double: SysdigSecureDouble) -> None:
    double.analysis_seconds = 60
    variant_client.add_image(PULL_STRING)

    status = variant_client.analysis_status(DIGEST)

    assert status.state == "pending"
    assert status.detail == "not_analyzed"


def test_status_of_failed_analysis_is_failed(variant_client: SecureClient, double: SysdigSecureDouble) -> None:
    double.fail_analysis(DIGEST)
    variant_client.add_image(PULL_STRING)

    status = variant_client.analysis_status(DIGEST)

    assert status.state == "failed"
    assert status.detail == "analysis_failed"


def test_status_of_image_sysdig_lost_is_not_found(variant_client: SecureClient, double: SysdigSecureDouble) -> None:
    double.unknown_image(DIGEST)
    variant_client.add_image(PULL_STRING)

    status = variant_client.analysis_status(DIGEST)

    assert status.state == "not_found"


@pytest.mark.parametrize(
    ("message", "state"),
    [
        ("image not found in DB", "not_found"),
        ("image is not analyzed - analysis_status: analysis_queued", "pending"),
        ("image is not analyzed - analysis_status: analyzing", "pending"),
        ("image is not analyzed - analysis_status: analysis_failed", "failed"),
    ],
)
def test_status_404_messages_map_to_states(
    double: SysdigSecureDouble, sleeps: RecordingSleep, message: str, state: str
) -> None:
    double.inject("analysis_status", status=404, body={"message": message, "httpcode": 404})

    with make_client(double.url, sleeps, scanning_api="anchore") as secure:
        status = secure.analysis_status(DIGEST)

    assert status.state == state


def test_results_time_in_milliseconds_is_read(client: SecureClient, double: SysdigSecureDouble) -> None:
    entry = {"analysisStatus": "analyzed", "analyzedAt": 1714979289000, "createdAt": 1714979200000, "imageDigest": DIGEST}
    double.inject("analysis_status", status=200, body={"results": [entry]})

    status = client.analysis_status(DIGEST)

    assert status.analyzed_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_results_entry_of_other_digest_is_not_found(client: SecureClient, double: SysdigSecureDouble) -> None:
    entry = {"analysisStatus": "analyzed", "analyzedAt": 1714979289, "imageDigest": "sha256:" + "cd" * 32}
    double.inject("analysis_status", status=200, body={"results": [entry]})

    status = client.analysis_status(DIGEST)

    assert status.state == "not_found"


def test_vulnerabilities_during_analysis_raise_not_analyzed(
    variant_client: SecureClient, double: SysdigSecureDouble
) -> None:
    double.analysis_seconds = 60
    variant_client.add_image(PULL_STRING)

    with pytest.raises(ImageNotAnalyzed) as raised:
        variant_client.vulnerabilities(DIGEST)

    assert raised.value.status.state == "pending"


def test_vulnerabilities_of_unknown_image_raise_not_analyzed(variant_client: SecureClient) -> None:
    with pytest.raises(ImageNotAnalyzed) as raised:
        variant_client.vulnerabilities(DIGEST)

    assert raised.value.status.state == "not_found"


def test_vulnerabilities_of_failed_analysis_raise_not_analyzed(
    variant_client: SecureClient, double: SysdigSecureDouble
) -> None:
    double.fail_analysis(DIGEST)
    variant_client.add_image(PULL_STRING)

    with pytest.raises(ImageNotAnalyzed) as raised:
        variant_client.vulnerabilities(DIGEST)

    assert raised.value.status.state == "failed"


# --- vulnerability lists ----------------------------------------------------------------------


def test_thousands_of_findings_are_returned(variant_client: SecureClient, double: SysdigSecureDouble) -> None:
    template = recorded_vulnerabilities()[0]
    many = [{**template, "vuln": f"CVE-2024-{number:05d}"} for number in range(5000)]
    double.set_vulnerabilities(DIGEST, many)
    variant_client.add_image(PULL_STRING)

    vulnerabilities = variant_client.vulnerabilities(DIGEST)

    assert len(vulnerabilities) == 5000
    assert vulnerabilities[-1]["vuln"] == "CVE-2024-04999"


def test_image_without_findings_returns_empty_list(variant_client: SecureClient, double: SysdigSecureDouble) -> None:
    double.set_vulnerabilities(DIGEST, [])
    variant_client.add_image(PULL_STRING)

    assert variant_client.vulnerabilities(DIGEST) == []


# --- descriptions -----------------------------------------------------------------------------


def test_descriptions_are_fetched_in_batches_of_100(client: SecureClient, double: SysdigSecureDouble) -> None:
    ids = [f"CVE-2024-{number:05d}" for number in range(250)]
    double.set_descriptions({id_: f"description of {id_}" for id_ in ids})

    descriptions = client.descriptions(ids)

    batches = [request.query["id"][0].split(",") for request in double.requests_of("descriptions")]
    assert [len(batch) for batch in batches] == [100, 100, 50]
    assert double.requests_of("descriptions")[0].query["namespace"] == ["nvdv2:cves,vulndb:vulnerabilities"]
    assert len(descriptions) == 250
    assert descriptions["CVE-2024-00249"] == "description of CVE-2024-00249"


def test_failing_description_batch_is_skipped(
    client: SecureClient, double: SysdigSecureDouble, caplog: pytest.LogCaptureFixture
) -> None:
    ids = [f"CVE-2024-{number:05d}" for number in range(250)]
    double.set_descriptions({id_: f"description of {id_}" for id_ in ids})
    double.inject("descriptions", status=400, body={"message": "query too long"})

    with caplog.at_level(logging.WARNING, logger="service.sysdig.client"):
        descriptions = client.descriptions(ids)

    assert "CVE-2024-00000" not in descriptions
    assert len(descriptions) == 150
    assert "leaving out the descriptions of 100 vulnerabilities" in caplog.text


def test_unavailable_descriptions_return_empty(double: SysdigSecureDouble, sleeps: RecordingSleep) -> None:
    double.inject("descriptions", status=503, times=None)

    with make_client(double.url, sleeps, max_attempts=2) as secure:
        descriptions = secure.descriptions(["CVE-2019-14697"])

    assert descriptions == {}


def test_unavailable_sysdig_ends_description_batches(double: SysdigSecureDouble, sleeps: RecordingSleep) -> None:
    ids = [f"CVE-2024-{number:05d}" for number in range(250)]
    double.inject("descriptions", status=503, times=None)

    with make_client(double.url, sleeps, max_attempts=2) as secure:
        descriptions = secure.descriptions(ids)

    assert descriptions == {}
    assert len(double.requests_of("descriptions")) == 2


def test_descriptions_drop_nul_and_keep_unicode(client: SecureClient) -> None:
    descriptions = client.descriptions(["CVE-2019-14697", "CVE-2019-14698", "CVE-2011-3374"])

    assert "\x00" not in descriptions["CVE-2011-3374"]
    assert descriptions["CVE-2011-3374"] == "Test-double description of CVE-2011-3374: apt key checks."
    assert "musl’s “i386”" in descriptions["CVE-2019-14698"]


def test_descriptions_ask_once_per_id(client: SecureClient, double: SysdigSecureDouble) -> None:
    client.descriptions(["CVE-2019-14697", "CVE-2019-14697", ""])

    [request] = double.requests_of("descriptions")
    assert request.query["id"] == ["CVE-2019-14697"]


def test_descriptions_of_no_ids_send_nothing(client: SecureClient, double: SysdigSecureDouble) -> None:
    assert client.descriptions([]) == {}
    assert double.requests == []


# --- feeds ------------------------------------------------------------------------------------


def test_feeds_time_is_newest_last_sync(client: SecureClient) -> None:
    updated_at = client.feeds_updated_at()

    assert updated_at == DEFAULT_FEEDS_LAST_SYNC
    assert updated_at is not None and updated_at.utcoffset() == timedelta(0)


def test_feeds_time_follows_configured_sync(client: SecureClient, double: SysdigSecureDouble) -> None:
    double.feeds_last_sync = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

    assert client.feeds_updated_at() == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_feeds_without_sync_times_return_none(client: SecureClient, double: SysdigSecureDouble) -> None:
    double.feeds_last_sync = None

    assert client.feeds_updated_at() is None


def test_feeds_410_raises_request_rejected(client: SecureClient, double: SysdigSecureDouble) -> None:
    double.inject("feeds", status=410, body={"message": "Gone"})

    with pytest.raises(SysdigRequestRejected) as raised:
        client.feeds_updated_at()

    assert raised.value.status == 410


# --- logging ----------------------------------------------------------------------------------


def test_token_and_password_never_logged(
    double: SysdigSecureDouble, sleeps: RecordingSleep, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    double.inject("add_image", status=429, retry_after=1)
    double.inject("vulnerabilities", status=502, times=None, body="<html>Bad Gateway</html>", content_type="text/html")
    double.inject("descriptions", status=400, body={"message": "bad id"})

    with make_client(double.url, sleeps, max_attempts=2) as secure:
        secure.register_registry(HOST, ROBOT, verify_tls=True)
        secure.register_registry(HOST, ROBOT, verify_tls=True)
        secure.add_image(PULL_STRING)
        with pytest.raises(SysdigUnavailable):
            secure.vulnerabilities(DIGEST)
        secure.descriptions(["CVE-2019-14697"])
    with make_client(double.url, sleeps, token="another-token-9f86d08") as rejected:
        with pytest.raises(SysdigRequestRejected):
            rejected.feeds_updated_at()

    assert caplog.records
    assert TOKEN not in caplog.text
    assert "another-token-9f86d08" not in caplog.text
    assert PASSWORD not in caplog.text


def test_retries_log_info_and_give_up_logs_warning(
    double: SysdigSecureDouble, sleeps: RecordingSleep, caplog: pytest.LogCaptureFixture
) -> None:
    double.inject("feeds", status=503, times=None)

    with caplog.at_level(logging.INFO, logger="service.sysdig.client"):
        with make_client(double.url, sleeps, max_attempts=2) as secure:
            with pytest.raises(SysdigUnavailable):
                secure.feeds_updated_at()

    levels = {record.levelno for record in caplog.records if record.name == "service.sysdig.client"}
    assert "retrying feeds" in caplog.text
    assert "giving up on feeds" in caplog.text
    assert levels == {logging.INFO, logging.WARNING}
