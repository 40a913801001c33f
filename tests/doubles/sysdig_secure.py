"""Test double of Sysdig Secure's legacy scanning API (`/api/scanning/v1`) on 127.0.0.1.

It is not Sysdig Secure. It serves the paths, status codes, JSON shapes and error messages the
legacy API is known to use, keeps its state in memory, and records what clients sent. The
vulnerability lists are real: they come from a recorded legacy inline-scan output in
tests/data/sysdig/. Feed times and vulnerability descriptions are made up by the double.

Run it alone with `python -m tests.doubles.sysdig_secure --port 8900`.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import re
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger(__name__)

RECORDED_SCAN_PATH = Path(__file__).resolve().parents[1] / "data" / "sysdig" / "inline-scan-v2-output-anchore-shape.json"
DEFAULT_TOKEN = "test-double-token"
DEFAULT_FEEDS_LAST_SYNC = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)

REGISTRY_EXISTS_MESSAGE = "registry already exists in DB"
IMAGE_NOT_FOUND_MESSAGE = "image not found in DB"
IMAGE_NOT_ANALYZED_MESSAGE = "image is not analyzed - analysis_status: {state}"
CANNOT_FETCH_IMAGE_MESSAGE = "cannot fetch image digest/manifest from registry"

# Made-up descriptions for the recorded vulnerability ids. One contains non-ASCII text and one a
# NUL byte, so that clients' text cleaning has something to do. CVE-2011-3374 also gets an empty
# vulndb entry first, as the API can return one entry per namespace.
DOUBLE_DESCRIPTIONS: tuple[tuple[str, str, str], ...] = (
    ("CVE-2019-14697", "nvdv2:cves", "Test-double description of CVE-2019-14697: a stack imbalance in musl x87 code."),
    ("CVE-2019-14698", "nvdv2:cves", "Test-double description of CVE-2019-14698 – musl’s “i386” x87 code, naïvely."),
    ("CVE-2011-3374", "vulndb:vulnerabilities", ""),
    ("CVE-2011-3374", "nvdv2:cves", "Test-double description of CVE-2011-3374:\x00 apt key checks."),
)

CALLS = frozenset(
    {
        "register_registry",
        "update_registry",
        "add_image",
        "analysis_status",
        "vulnerabilities",
        "descriptions",
        "feeds",
    }
)

_API = "/api/scanning/v1"
_DIGEST = r"(?P<digest>[^/]+)"
# (method, raw path pattern, call name). Paths are matched before percent-decoding.
_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(rf"^{_API}/anchore/registries$"), "register_registry"),
    ("PUT", re.compile(rf"^{_API}/anchore/registries/registry/(?P<host>[^/]+)$"), "update_registry"),
    ("POST", re.compile(rf"^{_API}/anchore/images$"), "add_image"),
    ("GET", re.compile(rf"^{_API}/anchore/images/{_DIGEST}$"), "analysis_status"),
    ("GET", re.compile(rf"^{_API}/results$"), "analysis_status"),
    ("GET", re.compile(rf"^{_API}/anchore/images/{_DIGEST}/vuln/all$"), "vulnerabilities"),
    ("GET", re.compile(rf"^{_API}/images/{_DIGEST}/vulnDirect/all$"), "vulnerabilities"),
    ("GET", re.compile(rf"^{_API}/anchore/query/vulnerabilities$"), "descriptions"),
    ("GET", re.compile(rf"^{_API}/system/feeds$"), "feeds"),
)


@cache
def _recorded_scan_text() -> str:
    return RECORDED_SCAN_PATH.read_text(encoding="utf-8")


def recorded_vulnerabilities() -> list[dict[str, Any]]:
    """Return a fresh copy of the recorded scan's `vulnsReport.vulnerabilities`."""
    return json.loads(_recorded_scan_text())["vulnsReport"]["vulnerabilities"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the double received; `body` has any registry password replaced."""

    method: str
    path: str
    query: dict[str, list[str]]
    call: str
    headers: dict[str, str]
    body: Any
    authorized: bool


@dataclass(frozen=True)
class CredentialsRecord:
    """Registry credentials as stored by one register or update call; `at` is time.monotonic()."""

    user: str
    password: str = field(repr=False)
    at: float


@dataclass
class _Injection:
    status: int
    remaining: int | None
    retry_after: str | None
    body: bytes
    content_type: str
    delay: float


@dataclass
class _Image:
    digest: str
    pull_string: str
    host: str
    repository: str
    tag: str | None
    added_at: float
    created_at: datetime
    analysis_seconds: float

    @property
    def analysis_ends_at(self) -> float:
        return self.added_at + self.analysis_seconds


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class SysdigSecureDouble:
    """In-memory stand-in for Sysdig Secure's legacy scanning API, served over loopback HTTP.

    Use it as a context manager: `with SysdigSecureDouble(analysis_seconds=0.5) as double:`,
    then point a client at `double.url` with `double.token`. Every method is thread-safe.
    """

    def __init__(
        self,
        *,
        analysis_seconds: float = 0.5,
        token: str = DEFAULT_TOKEN,
        port: int = 0,
        feeds_last_sync: datetime | None = DEFAULT_FEEDS_LAST_SYNC,
    ) -> None:
        self.token = token
        self.analysis_seconds = analysis_seconds
        self.feeds_last_sync = feeds_last_sync
        self._port = port
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

        self._registries: dict[str, dict[str, Any]] = {}
        self._credentials_history: dict[str, list[CredentialsRecord]] = {}
        self._images: dict[str, _Image] = {}
        self._images_added: list[str] = []
        self._requests: list[RecordedRequest] = []
        self._vulnerabilities: dict[str, list[dict[str, Any]]] = {}
        self._default_vulnerabilities = recorded_vulnerabilities()
        self._descriptions = list(DOUBLE_DESCRIPTIONS)
        self._failed: set[str] = set()
        self._unknown: set[str] = set()
        self._unreachable: set[str] = set()
        self._injections: dict[str, deque[_Injection]] = {}

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> SysdigSecureDouble:
        handler = type("BoundSysdigSecureHandler", (_Handler,), {"double": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="sysdig-secure-double", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> SysdigSecureDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Sysdig Secure double is not running; call start() or use it in a with block")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- scenario set-up ------------------------------------------------------------------------

    def set_vulnerabilities(self, digest: str, vulnerabilities: Sequence[Mapping[str, Any]]) -> None:
        """Serve `vulnerabilities` for `digest` instead of the recorded list."""
        with self._lock:
            self._vulnerabilities[digest] = [dict(item) for item in vulnerabilities]

    def set_descriptions(self, descriptions: Mapping[str, str], namespace: str = "nvdv2:cves") -> None:
        """Add descriptions served by the descriptions query, after the built-in ones."""
        with self._lock:
            self._descriptions.extend((id_, namespace, text) for id_, text in descriptions.items())

    def fail_analysis(self, digest: str) -> None:
        """End the analysis of `digest` in `analysis_failed` instead of `analyzed`."""
        with self._lock:
            self._failed.add(digest)

    def unknown_image(self, digest: str) -> None:
        """Accept `digest` in add_image, then return not found for every lookup of it."""
        with self._lock:
            self._unknown.add(digest)

    def unreachable_registry(self, host: str) -> None:
        """Reject add_image for images on `host` with the engine's cannot-fetch error."""
        with self._lock:
            self._unreachable.add(host)

    def inject(
        self,
        call: str,
        status: int = 429,
        times: int | None = 1,
        *,
        retry_after: float | str | None = None,
        body: str | bytes | Mapping[str, Any] | Sequence[Any] | None = None,
        content_type: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Reply to the next `times` requests of `call` with `status` (every one when `times` is None).

        `body` defaults to `{"message": <reason phrase>}`. A str or bytes body is sent as
        text/plain unless `content_type` is given. `delay` postpones the reply by that many
        seconds, which lets a client's read timeout fire. Injections for one call are
        used in the order they were added.
        """
        if call not in CALLS:
            raise ValueError(f"unknown call {call!r}; use one of {', '.join(sorted(CALLS))}")
        if times is not None and times < 1:
            raise ValueError(f"times={times} must be at least 1, or None for every request")

        encoded, default_type = _encode_body(status, body)
        injection = _Injection(
            status=status,
            remaining=times,
            retry_after=None if retry_after is None else _format_retry_after(retry_after),
            body=encoded,
            content_type=content_type or default_type,
            delay=delay,
        )
        with self._lock:
            self._injections.setdefault(call, deque()).append(injection)

    def clear_injections(self) -> None:
        with self._lock:
            self._injections.clear()

    # --- observations -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_of(self, call: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.call == call]

    @property
    def images_added(self) -> list[str]:
        """Pull strings of every add_image call that succeeded, in order."""
        with self._lock:
            return list(self._images_added)

    @property
    def registered_credentials(self) -> dict[str, list[CredentialsRecord]]:
        """Every set of credentials stored per registry host, oldest first."""
        with self._lock:
            return {host: list(history) for host, history in self._credentials_history.items()}

    @property
    def pull_credentials(self) -> dict[str, tuple[str, str] | None]:
        """The (user, password) stored for each image's host when its analysis ended.

        The double's simulated pull happens at the end of the analysis, so credentials
        overwritten by another scan during the analysis show up here. Images still being
        analysed are absent; None means no credentials were stored for the host at that time.
        """
        now = time.monotonic()
        with self._lock:
            return {
                digest: self._credentials_at(image.host, image.analysis_ends_at)
                for digest, image in self._images.items()
                if image.analysis_ends_at <= now and digest not in self._unknown
            }

    def _credentials_at(self, host: str, moment: float) -> tuple[str, str] | None:
        effective = [record for record in self._credentials_history.get(host, []) if record.at <= moment]
        if not effective:
            return None
        return effective[-1].user, effective[-1].password

    # --- request handling (called by the HTTP handler threads) -------------------------------

    def handle(self, method: str, raw_target: str, headers: Mapping[str, str], raw_body: bytes) -> _Reply:
        split = urlsplit(raw_target)
        query = parse_qs(split.query, keep_blank_values=True)
        call, arguments = _route(method, split.path)
        body = _parse_json(raw_body)
        authorized = headers.get("Authorization") == f"Bearer {self.token}"

        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=method,
                    path=split.path,
                    query=query,
                    call=call or "unknown",
                    headers={name: value for name, value in headers.items() if name.lower() != "authorization"},
                    body=_without_password(body),
                    authorized=authorized,
                )
            )

        if not authorized:
            return _json_reply(401, {"message": "Unauthorized"})
        if call is None:
            return _json_reply(404, {"message": "Not Found"})
        injected = self._take_injection(call)
        if injected is not None:
            return injected

        handler = getattr(self, f"_serve_{call}")
        with self._lock:
            return handler(split.path, arguments, query, body)

    def _take_injection(self, call: str) -> _Reply | None:
        with self._lock:
            queue = self._injections.get(call)
            if not queue:
                return None
            injection = queue[0]
            if injection.remaining is not None:
                injection.remaining -= 1
                if injection.remaining == 0:
                    queue.popleft()
        headers = {"Retry-After": injection.retry_after} if injection.retry_after is not None else {}
        return _Reply(injection.status, injection.body, injection.content_type, headers, injection.delay)

    def _serve_register_registry(self, path: str, arguments: dict[str, str], query: Any, body: Any) -> _Reply:
        if not isinstance(body, dict) or "registry" not in body:
            return _anchore_error(500, "body does not contain registry key")
        host = str(body["registry"])
        if host in self._registries:
            return _anchore_error(500, REGISTRY_EXISTS_MESSAGE)
        return self._store_registry(host, body)

    def _serve_update_registry(self, path: str, arguments: dict[str, str], query: Any, body: Any) -> _Reply:
        host = arguments["host"]
        if not isinstance(body, dict):
            return _anchore_error(400, "request body is not a JSON object")
        if host not in self._registries:
            # NOTE: the engine's exact message for this case is not known; the double makes one up.
            return _anchore_error(404, "registry not found in DB")
        return self._store_registry(host, body)

    def _store_registry(self, host: str, body: dict[str, Any]) -> _Reply:
        now = _iso(datetime.now(UTC))
        record = {
            "registry": host,
            "registry_name": host,
            "registry_type": body.get("registry_type", "docker_v2"),
            "registry_user": body.get("registry_user"),
            "registry_verify": body.get("registry_verify", True),
            "created_at": self._registries.get(host, {}).get("created_at", now),
            "last_updated": now,
            "userId": "test-double",
        }
        self._registries[host] = record
        history = self._credentials_history.setdefault(host, [])
        history.append(CredentialsRecord(str(body.get("registry_user")), str(body.get("registry_pass")), time.monotonic()))
        return _json_reply(200, [record])

    def _serve_add_image(self, path: str, arguments: dict[str, str], query: Any, body: Any) -> _Reply:
        pull_string = body.get("tag") if isinstance(body, dict) else None
        if not isinstance(pull_string, str) or "/" not in pull_string:
            return _anchore_error(400, "cannot handle image input string")

        host, _, reference = pull_string.partition("/")
        if host in self._unreachable:
            return _anchore_error(
                400,
                CANNOT_FETCH_IMAGE_MESSAGE,
                {"error_codes": ["REGISTRY_NOT_ACCESSIBLE"], "raw_exception_message": f"test double: {host} is unreachable"},
            )

        repository, digest, tag = _parse_reference(pull_string, reference)
        image = self._images.get(digest)
        if image is None:
            image = _Image(
                digest, pull_string, host, repository, tag, time.monotonic(), datetime.now(UTC), self.analysis_seconds
            )
            self._images[digest] = image
        self._images_added.append(pull_string)
        return _json_reply(200, [self._image_record(image)])

    def _serve_analysis_status(self, path: str, arguments: dict[str, str], query: Any, body: Any) -> _Reply:
        if "digest" not in arguments:
            return self._serve_results(query)
        image = self._known_image(arguments["digest"])
        if image is None:
            return _anchore_error(404, IMAGE_NOT_FOUND_MESSAGE)
        return _json_reply(200, [self._image_record(image)])

    def _serve_results(self, query: Mapping[str, list[str]]) -> _Reply:
        text = query.get("filter", [""])[0]
        limit = int(query.get("limit", ["100"])[0] or 100)
        matching = [
            image
            for image in self._images.values()
            if image.digest not in self._unknown and text and (text in image.digest or text in image.pull_string)
        ]
        return _json_reply(200, {"results": [self._result_entry(image) for image in matching[:limit]]})

    def _serve_vulnerabilities(self, path: str, arguments: dict[str, str], query: Any, body: Any) -> _Reply:
        image = self._known_image(arguments["digest"])
        if image is None:
            return _anchore_error(404, IMAGE_NOT_FOUND_MESSAGE)
        state = self._state(image)
        if state != "analyzed":
            return _anchore_error(404, IMAGE_NOT_ANALYZED_MESSAGE.format(state=state))

        items = self._vulnerabilities.get(image.digest, self._default_vulnerabilities)
        if path.endswith("/vulnDirect/all"):
            return _json_reply(200, {"imageDigest": image.digest, "vtype": "all", "vulns": items})
        return _json_reply(200, {"imageDigest": image.digest, "vulnerability_type": "all", "vulnerabilities": items})

    def _serve_descriptions(self, path: str, arguments: dict[str, str], query: Any, body: Any) -> _Reply:
        ids = {id_ for value in query.get("id", []) for id_ in value.split(",") if id_}
        entries = [
            {"id": id_, "namespace": namespace, "description": text}
            for id_, namespace, text in self._descriptions
            if id_ in ids
        ]
        return _json_reply(200, {"vulnerabilities": entries})

    def _serve_feeds(self, path: str, arguments: dict[str, str], query: Any, body: Any) -> _Reply:
        """Return two feeds whose newest group sync is `feeds_last_sync`.

        The double makes these times up because no recorded feeds response exists. The formats vary
        (with and without fraction, `Z` and `+00:00`) and one group has never synced.
        """
        newest = self.feeds_last_sync
        if newest is None:
            group_times: list[str | None] = [None, None, None]
        else:
            group_times = [
                (newest - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                newest.strftime("%Y-%m-%dT%H:%M:%SZ"),
                (newest - timedelta(hours=1, microseconds=-123456)).isoformat(),
            ]
        created = "2020-01-01T00:00:00Z"
        feeds = [
            {
                "name": "vulnerabilities",
                "created_at": created,
                "updated_at": group_times[1],
                "last_full_sync": group_times[0],
                "groups": [
                    {"name": "alpine:3.7", "record_count": 1431, "created_at": created, "last_sync": group_times[0]},
                    {"name": "debian:10", "record_count": 3114, "created_at": created, "last_sync": group_times[1]},
                ],
            },
            {
                "name": "nvdv2",
                "created_at": created,
                "updated_at": group_times[2],
                "last_full_sync": group_times[2],
                "groups": [
                    {"name": "nvdv2:cves", "record_count": 250123, "created_at": created, "last_sync": group_times[2]},
                    {"name": "nvdv2:never-synced", "record_count": 0, "created_at": created, "last_sync": None},
                ],
            },
        ]
        return _json_reply(200, feeds)

    # --- image state ------------------------------------------------------------------------------

    def _known_image(self, digest: str) -> _Image | None:
        if digest in self._unknown:
            return None
        return self._images.get(digest)

    def _state(self, image: _Image) -> str:
        elapsed = time.monotonic() - image.added_at
        if elapsed >= image.analysis_seconds:
            return "analysis_failed" if image.digest in self._failed else "analyzed"
        return "not_analyzed" if elapsed < image.analysis_seconds / 2 else "analyzing"

    def _analyzed_at(self, image: _Image) -> datetime | None:
        if self._state(image) != "analyzed":
            return None
        return image.created_at + timedelta(seconds=image.analysis_seconds)

    def _image_record(self, image: _Image) -> dict[str, Any]:
        analyzed_at = self._analyzed_at(image)
        created = _iso(image.created_at)
        return {
            "imageDigest": image.digest,
            "parentDigest": image.digest,
            "analysis_status": self._state(image),
            "image_status": "active",
            "analyzed_at": _iso(analyzed_at) if analyzed_at else None,
            "created_at": created,
            "last_updated": created,
            "userId": "test-double",
            "image_detail": [
                {
                    "registry": image.host,
                    "repo": image.repository,
                    "tag": image.tag,
                    "digest": image.digest,
                    "fulltag": f"{image.host}/{image.repository}:{image.tag}" if image.tag else None,
                    "fulldigest": f"{image.host}/{image.repository}@{image.digest}",
                    "created_at": created,
                }
            ],
        }

    def _result_entry(self, image: _Image) -> dict[str, Any]:
        analyzed_at = self._analyzed_at(image)
        return {
            "analysisStatus": self._state(image),
            "analyzedAt": int(analyzed_at.timestamp()) if analyzed_at else None,
            "createdAt": int(image.created_at.timestamp()),
            "imageDigest": image.digest,
            "imageId": hashlib.sha256(image.digest.encode()).hexdigest(),
            "fullTag": f"{image.host}/{image.repository}:{image.tag or 'latest'}",
        }


class _Handler(BaseHTTPRequestHandler):
    """Thin HTTP layer: reads the request, passes it to the bound double, writes the reply."""

    double: SysdigSecureDouble
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without this, Nagle's algorithm and
        # delayed ACKs add about 40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        headers = {name: value for name, value in self.headers.items()}

        reply = self.double.handle(self.command, self.path, headers, raw_body)
        if reply.delay:
            time.sleep(reply.delay)

        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            # A client that timed out has closed the connection; the reply has no reader.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it so
        logger.debug("sysdig double: " + format, *args)


# --- helpers ---------------------------------------------------------------------------------------


def _route(method: str, raw_path: str) -> tuple[str | None, dict[str, str]]:
    for route_method, pattern, call in _ROUTES:
        match = pattern.match(raw_path)
        if match and route_method == method:
            return call, {name: unquote(value) for name, value in match.groupdict().items()}
    return None, {}


def _parse_reference(pull_string: str, reference: str) -> tuple[str, str, str | None]:
    """Split `repository@digest` or `repository:tag`; a tag resolves to a digest made from its name."""
    if "@" in reference:
        repository, _, digest = reference.partition("@")
        return repository, digest, None
    repository, colon, tag = reference.rpartition(":")
    if not colon:
        repository, tag = reference, "latest"
    return repository, "sha256:" + hashlib.sha256(pull_string.encode()).hexdigest(), tag


def _parse_json(raw_body: bytes) -> Any:
    if not raw_body:
        return None
    try:
        return json.loads(raw_body)
    except ValueError:
        return None


def _without_password(body: Any) -> Any:
    if isinstance(body, dict) and "registry_pass" in body:
        body = copy.copy(body)
        body["registry_pass"] = "<redacted>"
    return body


def _json_reply(status: int, payload: Any) -> _Reply:
    return _Reply(status, json.dumps(payload).encode("utf-8"))


def _anchore_error(status: int, message: str, detail: Mapping[str, Any] | None = None) -> _Reply:
    return _json_reply(status, {"message": message, "httpcode": status, "detail": dict(detail or {})})


def _encode_body(status: int, body: str | bytes | Mapping[str, Any] | Sequence[Any] | None) -> tuple[bytes, str]:
    if body is None:
        return json.dumps({"message": HTTPStatus(status).phrase}).encode(), "application/json"
    if isinstance(body, bytes):
        return body, "text/plain; charset=utf-8"
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=utf-8"
    return json.dumps(body).encode("utf-8"), "application/json"


def _format_retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value  # an HTTP date, or a deliberately malformed value
    if float(value).is_integer():
        return str(int(value))
    return str(value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- command line ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.doubles.sysdig_secure",
        description="Serve a test double of Sysdig Secure's legacy scanning API on 127.0.0.1 until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: 0, any free port)")
    parser.add_argument(
        "--analysis-seconds", type=float, default=5.0, help="seconds from add_image until an image is analysed (default: 5)"
    )
    parser.add_argument("--token", default=DEFAULT_TOKEN, help=f"API token clients must send (default: {DEFAULT_TOKEN})")
    args = parser.parse_args(argv)

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with SysdigSecureDouble(analysis_seconds=args.analysis_seconds, token=args.token, port=args.port) as double:
        print(double.url, flush=True)
        try:
            _wait(stopping)
        except KeyboardInterrupt:
            pass
    return 0


def _wait(stopping: threading.Event) -> None:
    # Short waits keep the main thread responsive to Ctrl-C on every platform.
    while not stopping.wait(0.2):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
