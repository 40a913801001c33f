"""The Sysdig Secure test double itself: wire behaviour, recordings and command line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.doubles.sysdig_secure import SysdigSecureDouble

TOKEN = "double-test-token"
API = "/api/scanning/v1"
HOST = "harbor.example.com"
DIGEST = "sha256:" + "12" * 32
RECORDED_SCAN = Path(__file__).parent / "data" / "sysdig" / "inline-scan-v2-output-anchore-shape.json"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def double() -> Iterator[SysdigSecureDouble]:
    with SysdigSecureDouble(analysis_seconds=0.0, token=TOKEN) as running:
        yield running


@pytest.fixture
def http(double: SysdigSecureDouble) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=double.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def register(http: httpx.Client, user: str, password: str) -> httpx.Response:
    body = {"registry": HOST, "registry_user": user, "registry_pass": password, "registry_type": "docker_v2"}
    response = http.post(f"{API}/anchore/registries", params={"validate": "false"}, json=body)
    if response.status_code == 500:
        response = http.put(f"{API}/anchore/registries/registry/{HOST}", params={"validate": "false"}, json=body)
    return response


def test_double_rejects_wrong_token(double: SysdigSecureDouble) -> None:
    response = httpx.get(f"{double.url}{API}/system/feeds", headers={"Authorization": "Bearer wrong"})

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_double_serves_recorded_vulnerabilities(http: httpx.Client) -> None:
    http.post(f"{API}/anchore/images", json={"tag": f"{HOST}/library/app@{DIGEST}"})

    response = http.get(f"{API}/anchore/images/{DIGEST}/vuln/all")

    recorded = json.loads(RECORDED_SCAN.read_text(encoding="utf-8"))["vulnsReport"]["vulnerabilities"]
    assert response.status_code == 200
    assert response.json()["vulnerabilities"] == recorded


def test_double_reports_not_analyzed_with_engine_message(double: SysdigSecureDouble, http: httpx.Client) -> None:
    double.analysis_seconds = 60
    http.post(f"{API}/anchore/images", json={"tag": f"{HOST}/library/app@{DIGEST}"})

    response = http.get(f"{API}/images/{DIGEST}/vulnDirect/all")

    assert response.status_code == 404
    assert response.json()["message"] == "image is not analyzed - analysis_status: not_analyzed"


def test_double_answers_existing_registry_with_500(http: httpx.Client) -> None:
    body = {"registry": HOST, "registry_user": "u", "registry_pass": "p", "registry_type": "docker_v2"}
    http.post(f"{API}/anchore/registries", json=body)

    response = http.post(f"{API}/anchore/registries", json=body)

    assert response.status_code == 500
    assert response.json()["message"] == "registry already exists in DB"


def test_double_pull_credentials_show_overwrite_during_analysis(double: SysdigSecureDouble, http: httpx.Client) -> None:
    double.analysis_seconds = 0.5
    register(http, "robot$first", "first-secret")
    http.post(f"{API}/anchore/images", json={"tag": f"{HOST}/library/app@{DIGEST}"})
    register(http, "robot$second", "second-secret")

    assert DIGEST not in double.pull_credentials
    time.sleep(0.6)
    assert double.pull_credentials[DIGEST] == ("robot$second", "second-secret")


def test_double_pull_credentials_ignore_later_registrations(double: SysdigSecureDouble, http: httpx.Client) -> None:
    register(http, "robot$first", "first-secret")
    http.post(f"{API}/anchore/images", json={"tag": f"{HOST}/library/app@{DIGEST}"})
    register(http, "robot$second", "second-secret")

    assert double.pull_credentials[DIGEST] == ("robot$first", "first-secret")


def test_double_keeps_passwords_out_of_request_log(double: SysdigSecureDouble, http: httpx.Client) -> None:
    register(http, "robot$first", "first-secret")

    [request] = double.requests
    assert request.body["registry_pass"] == "<redacted>"
    assert "Authorization" not in request.headers


def test_double_resolves_tag_to_stable_digest(double: SysdigSecureDouble, http: httpx.Client) -> None:
    first = http.post(f"{API}/anchore/images", json={"tag": f"{HOST}/library/app:1.0"}).json()[0]
    second = http.post(f"{API}/anchore/images", json={"tag": f"{HOST}/library/app:1.0"}).json()[0]

    assert first["imageDigest"].startswith("sha256:")
    assert first["imageDigest"] == second["imageDigest"]
    assert first["image_detail"][0]["tag"] == "1.0"


def test_double_injection_runs_out_after_times(double: SysdigSecureDouble, http: httpx.Client) -> None:
    double.inject("feeds", status=503, times=2, retry_after=3)

    statuses = [http.get(f"{API}/system/feeds").status_code for _ in range(3)]

    assert statuses == [503, 503, 200]


def test_double_inject_rejects_unknown_call(double: SysdigSecureDouble) -> None:
    with pytest.raises(ValueError, match="unknown call"):
        double.inject("add_images")


def test_double_runs_from_command_line() -> None:
    command = [sys.executable, "-m", "tests.doubles.sysdig_secure", "--port", "0", "--token", TOKEN]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        response = httpx.get(f"{url}{API}/system/feeds", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        process.send_signal(signal.SIGTERM)
        return_code = process.wait(timeout=10)

    assert url.startswith("http://127.0.0.1:")
    assert response.status_code == 200
    assert return_code == 0
