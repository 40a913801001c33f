"""Client for the legacy scanning API of Sysdig Secure (`/api/scanning/v1`), used in backend mode.

Every call goes through `SecureClient._send`, the one place where httpx errors become service
errors and where 429, 5xx and connection failures are retried. Any response outside 2xx is an error.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx

import service
from service.config import SecureSettings
from service.credentials import RegistryCredentials
from service.errors import ScanFailed
from service.sysdig.errors import (
    ImageNotAnalyzed,
    InvalidSysdigResponse,
    SysdigRequestRejected,
    SysdigUnavailable,
)

__all__ = [
    "AnalysisStatus",
    "ImageNotAnalyzed",
    "InvalidSysdigResponse",
    "SecureClient",
    "SysdigRequestRejected",
    "SysdigUnavailable",
]

logger = logging.getLogger(__name__)

API_PREFIX = "/api/scanning/v1"

# Messages of the anchore engine behind the legacy API. Each selects a behaviour, so they are
# matched exactly. The engine sends "registry already exists in DB" with HTTP 500.
REGISTRY_EXISTS_MESSAGE = "registry already exists in DB"
IMAGE_NOT_FOUND_MESSAGE = "image not found in DB"
IMAGE_NOT_ANALYZED_PREFIX = "image is not analyzed - analysis_status:"
CANNOT_FETCH_IMAGE_MESSAGE = "cannot fetch image digest/manifest from registry"

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
FIRST_BACKOFF_SECONDS = 1.0

DESCRIPTION_BATCH_SIZE = 100
DESCRIPTION_NAMESPACES = "nvdv2:cves,vulndb:vulnerabilities"

# Analysis states of the anchore engine, as both API variants report them.
_PENDING_STATES = frozenset({"not_analyzed", "analysis_queued", "analyzing"})

_EXCERPT_CHARS = 200
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ERROR_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

# Epoch values above this are milliseconds: as seconds it would be the year 5138.
_EPOCH_MILLISECONDS_THRESHOLD = 1e11


@dataclass(frozen=True)
class AnalysisStatus:
    """State of Sysdig Secure's analysis of one image."""

    state: Literal["not_found", "pending", "failed", "analyzed"]
    detail: str | None = None
    analyzed_at: datetime | None = None


@dataclass(frozen=True)
class _Call:
    """One request to Sysdig Secure, named for logs and error messages."""

    name: str
    method: str
    path: str
    params: Mapping[str, str] | None = None
    body: Any = field(default=None, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __str__(self) -> str:
        return f"{self.name} ({self.method} {self.path})"


class SecureClient:
    """Calls of the legacy scanning API of Sysdig Secure, with in-client retries.

    One instance owns one connection pool. Create it once per process and close it at shutdown.
    """

    def __init__(
        self,
        settings: SecureSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=settings.url,
            headers={
                "Authorization": f"Bearer {settings.api_token}",
                "Accept": "application/json",
                "User-Agent": f"harbor-scanner-sysdig/{service.__version__}",
            },
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=settings.connect_timeout,
            ),
            verify=_tls_verification(settings),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SecureClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- calls ----------------------------------------------------------------------------

    def register_registry(
        self, registry: str, credentials: RegistryCredentials | None, *, verify_tls: bool
    ) -> None:
        """Store pull credentials for `registry` (`host[:port]`), replacing any stored before.

        Sysdig Secure keeps one set of credentials per host, so a later call for the same host
        overwrites these. Without credentials the image is public and nothing is sent.
        """
        if credentials is None:
            logger.debug("no credentials for registry %s; Sysdig Secure pulls anonymously", registry)
            return
        _check_registry_host(registry)

        body = {
            "registry": registry,
            "registry_user": credentials.username,
            "registry_pass": credentials.password,
            "registry_type": "docker_v2",
            "registry_verify": verify_tls,
        }
        secrets = (credentials.password,)
        add = _Call("register_registry", "POST", f"{API_PREFIX}/anchore/registries", {"validate": "false"}, body, secrets)
        response = self._send(add)
        if response.is_success:
            logger.info("registered pull credentials for registry %s in Sysdig Secure", registry)
            return
        if self._error_message(response, add) != REGISTRY_EXISTS_MESSAGE:
            raise self._rejected(add, response)

        path = f"{API_PREFIX}/anchore/registries/registry/{quote(registry, safe='')}"
        update = _Call("update_registry", "PUT", path, {"validate": "false"}, body, secrets)
        response = self._send(update)
        if not response.is_success:
            raise self._rejected(update, response)
        logger.info("updated pull credentials for registry %s in Sysdig Secure", registry)

    def add_image(self, pull_string: str) -> str:
        """Queue `pull_string` (`host/repository@sha256:...` or `...:tag`) for analysis.

        Returns the digest Sysdig Secure resolved, which differs from the requested one when a
        tag has moved.
        """
        call = _Call("add_image", "POST", f"{API_PREFIX}/anchore/images", {"force": "false"}, {"tag": pull_string})
        response = self._send(call)
        if not response.is_success:
            if self._error_message(response, call) == CANNOT_FETCH_IMAGE_MESSAGE:
                raise _cannot_fetch_image(pull_string, response)
            raise self._rejected(call, response)

        records = self._json(call, response)
        digest = records[0].get("imageDigest") if _is_list_of_dicts(records) and records else None
        if not isinstance(digest, str) or not digest:
            raise _unexpected_body(call, "a JSON array whose first item has an imageDigest")
        logger.info("queued image %s in Sysdig Secure; it resolved to %s", pull_string, digest)
        return digest

    def analysis_status(self, digest: str) -> AnalysisStatus:
        """Return how far Sysdig Secure's analysis of the image `digest` has got."""
        if self._settings.scanning_api == "anchore":
            return self._image_record_status(digest)
        return self._results_status(digest)

    def vulnerabilities(self, digest: str) -> list[dict[str, Any]]:
        """Fetch the vulnerabilities of an analysed image as Sysdig's own per-vulnerability dicts.

        Raises ImageNotAnalyzed when Sysdig Secure reports the image as missing, still being
        analysed, or failed.
        """
        if self._settings.scanning_api == "anchore":
            call = _Call("vulnerabilities", "GET", f"{API_PREFIX}/anchore/images/{_quote_digest(digest)}/vuln/all")
            key = "vulnerabilities"
        else:
            path = f"{API_PREFIX}/images/{_quote_digest(digest)}/vulnDirect/all"
            call = _Call("vulnerabilities", "GET", path, {"includeVulnExceptions": "false"})
            key = "vulns"

        response = self._send(call)
        self._raise_for_image_state(call, response, digest)
        if not response.is_success:
            raise self._rejected(call, response)

        body = self._json(call, response)
        if not isinstance(body, dict) or key not in body:
            raise _unexpected_body(call, f"a JSON object with a {key!r} array of objects")
        items = body[key]
        if items is None:
            return []  # a Go backend may encode an empty list as null
        if not _is_list_of_dicts(items):
            raise _unexpected_body(call, f"a JSON object with a {key!r} array of objects")
        return items

    def descriptions(self, ids: Sequence[str]) -> dict[str, str]:
        """Fetch the description of each vulnerability id, 100 ids per request.

        A batch that fails is logged and left out, so the result may be partial. Once Sysdig
        Secure is unavailable, the remaining batches are left out too, because each would wait
        through its own retries. Descriptions are optional in Harbor's report, so
        SysdigUnavailable, SysdigRequestRejected and InvalidSysdigResponse are logged here and
        never raised.
        """
        unique_ids = list(dict.fromkeys(id_ for id_ in ids if id_))
        found: dict[str, str] = {}

        for start in range(0, len(unique_ids), DESCRIPTION_BATCH_SIZE):
            batch = unique_ids[start : start + DESCRIPTION_BATCH_SIZE]
            try:
                found.update(self._description_batch(batch))
            except SysdigUnavailable as exc:
                logger.warning(
                    "leaving out the descriptions of the remaining %d vulnerabilities: %s",
                    len(unique_ids) - start, exc,
                )
                break
            except (SysdigRequestRejected, InvalidSysdigResponse) as exc:
                logger.warning(
                    "leaving out the descriptions of %d vulnerabilities (%s to %s): %s",
                    len(batch), batch[0], batch[-1], exc,
                )
        return found

    def feeds_updated_at(self) -> datetime | None:
        """Return the newest `last_sync` over all feed groups, in UTC, or None when none has one."""
        call = _Call("feeds", "GET", f"{API_PREFIX}/system/feeds")
        response = self._send(call)
        if not response.is_success:
            raise self._rejected(call, response)

        feeds = self._json(call, response)
        if not isinstance(feeds, list):
            raise _unexpected_body(call, "a JSON array of feeds")
        sync_times = [
            _parse_iso_time(group.get("last_sync"))
            for feed in feeds
            if isinstance(feed, dict)
            for group in _list_of_dicts(feed.get("groups"))
        ]
        return max((moment for moment in sync_times if moment is not None), default=None)

    # --- status helpers ---------------------------------------------------------------------

    def _image_record_status(self, digest: str) -> AnalysisStatus:
        call = _Call("analysis_status", "GET", f"{API_PREFIX}/anchore/images/{_quote_digest(digest)}")
        response = self._send(call)
        status = self._status_of_404(call, response)
        if status is not None:
            return status
        if not response.is_success:
            raise self._rejected(call, response)

        records = self._json(call, response)
        if not _is_list_of_dicts(records):
            raise _unexpected_body(call, "a JSON array of image records")
        if not records:
            return AnalysisStatus("not_found", IMAGE_NOT_FOUND_MESSAGE)
        record = records[0]
        word = record.get("analysis_status")
        if not isinstance(word, str):
            raise _unexpected_body(call, "an image record with an analysis_status string")
        return _status_of_word(word, _parse_iso_time(record.get("analyzed_at")))

    def _results_status(self, digest: str) -> AnalysisStatus:
        call = _Call("analysis_status", "GET", f"{API_PREFIX}/results", {"filter": digest, "limit": "1"})
        response = self._send(call)
        status = self._status_of_404(call, response)
        if status is not None:
            return status
        if not response.is_success:
            raise self._rejected(call, response)

        body = self._json(call, response)
        if not isinstance(body, dict) or "results" not in body:
            raise _unexpected_body(call, "a JSON object with a 'results' array of objects")
        results = body["results"] or []
        if not _is_list_of_dicts(results):
            raise _unexpected_body(call, "a JSON object with a 'results' array of objects")

        # The filter is free text, so a result of another image can match it. An entry
        # without imageDigest is trusted to be the filtered image.
        matching = [entry for entry in results if entry.get("imageDigest", digest) == digest]
        if not matching:
            return AnalysisStatus("not_found", "no scan result for this digest")
        entry = matching[0]
        word = entry.get("analysisStatus")
        if not isinstance(word, str):
            raise _unexpected_body(call, "a result with an analysisStatus string")
        return _status_of_word(word, _parse_epoch_time(entry.get("analyzedAt")))

    def _status_of_404(self, call: _Call, response: httpx.Response) -> AnalysisStatus | None:
        """Map the 404s that describe an image's state to a status; other responses return None."""
        if response.status_code != 404:
            return None
        message = self._error_message(response, call)
        if message == IMAGE_NOT_FOUND_MESSAGE:
            return AnalysisStatus("not_found", message)
        if message is not None and message.startswith(IMAGE_NOT_ANALYZED_PREFIX):
            word = message.removeprefix(IMAGE_NOT_ANALYZED_PREFIX).strip()
            status = _status_of_word(word, None)
            # "not analyzed" with the state "analyzed" contradicts itself, so it counts as pending.
            return AnalysisStatus("pending", word) if status.state == "analyzed" else status
        return None

    def _raise_for_image_state(self, call: _Call, response: httpx.Response, digest: str) -> None:
        status = self._status_of_404(call, response)
        if status is None:
            return
        explanation = {
            "not_found": "Sysdig Secure does not know the image",
            "pending": f"its analysis has not finished ({status.detail})",
            "failed": f"its analysis failed ({status.detail})",
        }[status.state]
        raise ImageNotAnalyzed(f"no vulnerability list for image {digest}: {explanation}", status)

    def _description_batch(self, batch: Sequence[str]) -> dict[str, str]:
        params = {"id": ",".join(batch), "namespace": DESCRIPTION_NAMESPACES}
        call = _Call("descriptions", "GET", f"{API_PREFIX}/anchore/query/vulnerabilities", params)
        response = self._send(call)
        if not response.is_success:
            raise self._rejected(call, response)

        body = self._json(call, response)
        entries = body.get("vulnerabilities") if isinstance(body, dict) else None
        if not _is_list_of_dicts(entries):
            raise _unexpected_body(call, "a JSON object with a 'vulnerabilities' array of objects")

        # One id can come back once per namespace; the first non-empty description wins.
        requested = set(batch)
        descriptions: dict[str, str] = {}
        for entry in entries:
            id_, text = entry.get("id"), entry.get("description")
            if id_ in requested and id_ not in descriptions and isinstance(text, str):
                cleaned = _clean_text(text)
                if cleaned:
                    descriptions[id_] = cleaned
        return descriptions

    # --- transport ----------------------------------------------------------------------------

    def _send(self, call: _Call) -> httpx.Response:
        """Send `call`, retrying 429, 5xx and transport errors, and return any other response.

        Raises SysdigUnavailable when the attempts run out, or at once when Retry-After is
        longer than `max_retry_wait`, so that the caller reschedules the work instead of
        blocking a worker thread.
        """
        attempts = max(1, self._settings.max_attempts)
        for attempt in range(1, attempts + 1):
            cause: httpx.TransportError | None = None
            try:
                response = self._http.request(call.method, call.path, params=call.params, json=call.body)
            except httpx.TransportError as exc:
                problem, retry_after, cause = _describe_transport_error(exc), None, exc
            except httpx.HTTPError as exc:
                raise InvalidSysdigResponse(
                    f"Sysdig Secure returned a response to {call} that cannot be decoded ({type(exc).__name__})"
                ) from exc
            else:
                if not self._is_retryable(call, response):
                    return response
                problem, retry_after = self._describe_status(response, call), _retry_after_seconds(response)

            wait = self._wait_before_retry(call, attempt, attempts, problem, retry_after, cause)
            self._sleep(wait)

        raise AssertionError("unreachable: the last attempt either returns or raises")

    def _wait_before_retry(
        self,
        call: _Call,
        attempt: int,
        attempts: int,
        problem: str,
        retry_after: float | None,
        cause: Exception | None,
    ) -> float:
        cap = self._settings.max_retry_wait
        if retry_after is not None and retry_after > cap:
            logger.warning(
                "giving up on %s: %s with Retry-After %.0f s, above SECURE_MAX_RETRY_WAIT=%g s",
                call, problem, retry_after, cap,
            )
            raise SysdigUnavailable(
                f"Sysdig Secure is busy: {call} returned {problem} with Retry-After {retry_after:.0f} s",
                retry_after=retry_after,
            ) from cause

        if attempt >= attempts:
            logger.warning("giving up on %s after %d attempts: %s", call, attempts, problem)
            raise SysdigUnavailable(
                f"Sysdig Secure is unavailable: {call} failed {attempts} times, last with {problem}",
                retry_after=retry_after,
            ) from cause

        wait = retry_after if retry_after is not None else _backoff_seconds(attempt, cap)
        logger.info(
            "retrying %s in %.1f s (attempt %d of %d failed: %s)", call, wait, attempt, attempts, problem
        )
        return wait

    def _is_retryable(self, call: _Call, response: httpx.Response) -> bool:
        if response.status_code not in RETRYABLE_STATUSES:
            return False
        # The engine returns some definite outcomes with HTTP 500, and retrying cannot change them.
        message = self._error_message(response, call)
        definite = (REGISTRY_EXISTS_MESSAGE, IMAGE_NOT_FOUND_MESSAGE, CANNOT_FETCH_IMAGE_MESSAGE)
        return message not in definite and not (message or "").startswith(IMAGE_NOT_ANALYZED_PREFIX)

    # --- response reading ---------------------------------------------------------------------

    def _json(self, call: _Call, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            content_type = response.headers.get("Content-Type", "none")
            raise InvalidSysdigResponse(
                f"Sysdig Secure returned HTTP {response.status_code} to {call} with a body that is not "
                f"JSON (Content-Type {_excerpt(content_type, 60)}); a proxy between the adapter and "
                "Sysdig may have answered instead"
            ) from exc

    def _error_message(self, response: httpx.Response, call: _Call) -> str | None:
        """Return the message of a JSON error body, cleaned and shortened, or None."""
        try:
            body = response.json()
        except ValueError:
            return None

        message = None
        if isinstance(body, dict):
            message = body.get("message")
            errors = body.get("errors")
            if not isinstance(message, str) and isinstance(errors, list) and errors and isinstance(errors[0], dict):
                message = errors[0].get("message")
        if not isinstance(message, str):
            return None
        return self._redact(_excerpt(_clean_text(message), _EXCERPT_CHARS), call)

    def _describe_status(self, response: httpx.Response, call: _Call) -> str:
        """Return `HTTP <status>` with the error message or a short plain-text excerpt; never HTML."""
        detail = self._error_message(response, call)
        content_type = response.headers.get("Content-Type", "")
        if detail is None and content_type.startswith("text/plain"):
            text = " ".join(_clean_text(response.text).split())
            detail = self._redact(_excerpt(text, _EXCERPT_CHARS), call) or None
        return f"HTTP {response.status_code}: {detail}" if detail else f"HTTP {response.status_code}"

    def _redact(self, text: str, call: _Call) -> str:
        for secret in (self._settings.api_token, *call.secrets):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text

    def _rejected(self, call: _Call, response: httpx.Response) -> SysdigRequestRejected:
        status = response.status_code
        described = self._describe_status(response, call)
        if status == 401:
            message = f"Sysdig Secure rejected the API token (HTTP 401) on {call}; check SECURE_API_TOKEN"
        elif status == 403:
            message = (
                f"Sysdig Secure denied {call} ({described}); the user or team of SECURE_API_TOKEN "
                "needs permission for image scanning"
            )
        elif status in (404, 410):
            message = (
                f"Sysdig Secure returned {described} for {call}; check SECURE_URL, and whether this "
                "tenant still serves the legacy scanning API (SECURE_SCANNING_API selects its variant)"
            )
        elif 300 <= status < 400:
            message = f"Sysdig Secure redirected {call} ({described}); SECURE_URL must be the API base URL"
        else:
            message = f"Sysdig Secure rejected {call} with {described}"
        return SysdigRequestRejected(message, status=status)


# --- module helpers ---------------------------------------------------------------------------


def _tls_verification(settings: SecureSettings) -> ssl.SSLContext | bool:
    if settings.ca_bundle:
        return ssl.create_default_context(cafile=settings.ca_bundle)
    return settings.verify_ssl


def _check_registry_host(registry: str) -> None:
    if not registry or "/" in registry or "://" in registry:
        raise ScanFailed(
            f"registry {registry!r} is not a host[:port]; Sysdig Secure stores credentials per host, "
            "so pass the registry URL without scheme or path"
        )


def _quote_digest(digest: str) -> str:
    # The raw "sha256:<hex>" goes into the path; quoting only guards against stray "/" or "?".
    return quote(digest, safe=":")


def _cannot_fetch_image(pull_string: str, response: httpx.Response) -> SysdigRequestRejected:
    codes = _anchore_error_codes(response)
    reason = f" ({', '.join(codes)})" if codes else ""
    return SysdigRequestRejected(
        f"Sysdig Secure cannot fetch the manifest of {pull_string}{reason}: the registry is not "
        "reachable from Sysdig Secure, or it rejected the registered credentials. Register the "
        "scanner in Harbor without 'use internal address' so that Sysdig pulls from Harbor's "
        "external URL",
        status=response.status_code,
    )


def _anchore_error_codes(response: httpx.Response) -> list[str]:
    """Return the engine's error codes such as REGISTRY_PERMISSION_DENIED, which carry no secrets."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return []
    codes = detail.get("error_codes") if isinstance(detail, dict) else None
    if not isinstance(codes, list):
        return []
    return [code for code in codes if isinstance(code, str) and _ERROR_CODE.match(code)]


def _unexpected_body(call: _Call, expected: str) -> InvalidSysdigResponse:
    return InvalidSysdigResponse(f"Sysdig Secure returned an unexpected body for {call}: expected {expected}")


def _status_of_word(word: str, analyzed_at: datetime | None) -> AnalysisStatus:
    if word == "analyzed":
        return AnalysisStatus("analyzed", word, analyzed_at)
    if word == "analysis_failed":
        return AnalysisStatus("failed", word)
    detail = _excerpt(_clean_text(word), 60)
    if word not in _PENDING_STATES:
        # NOTE: an unknown state counts as pending, so the scan's deadline ends it rather than a guess.
        logger.info("Sysdig Secure reported the unknown analysis state %r; treating it as pending", detail)
    return AnalysisStatus("pending", detail)


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """Read Retry-After as seconds, from delta-seconds or an HTTP date; None when absent or invalid."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _backoff_seconds(attempt: int, cap: float) -> float:
    # Exponential from FIRST_BACKOFF_SECONDS, with jitter so that workers do not retry in step.
    ceiling = min(cap, FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def _describe_transport_error(exc: httpx.TransportError) -> str:
    text = _excerpt(" ".join(str(exc).split()), _EXCERPT_CHARS)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _parse_iso_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the engine writes UTC, sometimes without an offset
    return moment.astimezone(UTC)


def _parse_epoch_time(value: object) -> datetime | None:
    """Read `analyzedAt` of the results variant, an integer epoch time.

    NOTE: whether the API sends seconds or milliseconds is unconfirmed; both are accepted.
    """
    if isinstance(value, str):
        return _parse_iso_time(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    seconds = value / 1000 if value > _EPOCH_MILLISECONDS_THRESHOLD else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _clean_text(text: str) -> str:
    # PostgreSQL text cannot hold NUL, and other control characters garble logs and reports.
    return _CONTROL_CHARACTERS.sub("", text).strip()


def _excerpt(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_list_of_dicts(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _list_of_dicts(value: object) -> Iterable[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
