"""Parsing and validation of Harbor's ScanRequest body."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from service.api import media
from service.credentials import check_authorization
from service.errors import ClientError

# Docker distribution reference grammar for repository paths.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_MAX_REPOSITORY_LENGTH = 255
_MAX_URL_LENGTH = 2048


@dataclass(frozen=True)
class ScanRequest:
    """The parts of a scan request that the adapter keeps."""

    registry_url: str
    authorization: str = field(repr=False)
    repository: str
    digest: str
    tag: str | None
    manifest_media_type: str

    @property
    def registry_host(self) -> str:
        """`host[:port]` of the registry, the form Sysdig and image references use."""
        return urlsplit(self.registry_url).netloc


def parse_scan_request(body: bytes) -> ScanRequest:
    """Parse a POST /scan body, raising ClientError with Harbor's status on bad input.

    400: the body is not a JSON object. 422: a field is missing or invalid (the message
    names it). 501: the request is for something this scanner does not produce.
    """
    document = _load_json_object(body)

    registry = _object(document, "registry")
    artifact = _object(document, "artifact")

    request = ScanRequest(
        registry_url=_registry_url(registry),
        authorization=_authorization(registry),
        repository=_repository(artifact),
        digest=_digest(artifact),
        tag=_tag(artifact),
        manifest_media_type=_manifest_media_type(artifact),
    )
    _check_capabilities(document.get("enabled_capabilities"))
    return request


def _load_json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClientError(400, f"request body is not valid JSON: {exc}") from None
    except ValueError:  # an integer longer than Python's 4300-digit limit
        raise ClientError(400, "request body cannot be parsed: it contains a number with too many digits") from None
    except RecursionError:
        raise ClientError(400, "request body is nested too deeply to be a scan request") from None
    if not isinstance(document, dict):
        raise ClientError(400, f"request body must be a JSON object, got {_json_type(document)}")
    return document


def _object(parent: dict[str, Any], name: str) -> dict[str, Any]:
    value = parent.get(name)
    if value is None:
        raise ClientError(422, f"{name} is missing")
    if not isinstance(value, dict):
        raise ClientError(422, f"{name} must be an object, got {_json_type(value)}")
    return value


def _string(parent: dict[str, Any], path: str, required: bool = True) -> str | None:
    name = path.rsplit(".", 1)[-1]
    value = parent.get(name)
    if value is None:
        if required:
            raise ClientError(422, f"{path} is missing")
        return None
    if not isinstance(value, str):
        raise ClientError(422, f"{path} must be a string, got {_json_type(value)}")
    if any(ord(character) < 0x20 or character == "\x7f" for character in value):
        raise ClientError(422, f"{path} must not contain control characters such as NUL")
    return value


def _registry_url(registry: dict[str, Any]) -> str:
    url = _string(registry, "registry.url") or ""
    if len(url) > _MAX_URL_LENGTH or not url.isascii():
        raise ClientError(
            422, f"registry.url must be ASCII and at most {_MAX_URL_LENGTH} characters (use the punycode form of the host)"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ClientError(422, f"registry.url {url[:200]!r} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ClientError(422, f"registry.url {url[:200]!r} must be an http:// or https:// URL with a host")
    if "@" in parts.netloc or "?" in url or "#" in url or any(character.isspace() for character in url):
        raise ClientError(422, "registry.url must not contain user info, a query, a fragment or blanks")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port == -1 or parts.netloc.endswith(":"):
        raise ClientError(422, f"registry.url {url[:200]!r} has an invalid port")

    # One spelling per registry: Sysdig keys credentials, and the adapter its leases, by host.
    netloc = parts.hostname if port is None else f"{parts.hostname}:{port}"
    if ":" in parts.hostname:
        netloc = f"[{parts.hostname}]" if port is None else f"[{parts.hostname}]:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path}".rstrip("/")


def _authorization(registry: dict[str, Any]) -> str:
    authorization = _string(registry, "registry.authorization", required=False) or ""
    try:
        check_authorization(authorization)
    except ValueError as exc:
        # The value is a credential: name the field, never echo it.
        raise ClientError(422, f"registry.authorization {exc}") from None
    if authorization[:7].lower() == "bearer ":
        raise ClientError(
            422,
            "registry.authorization is a Bearer token, but Sysdig Secure pulls with a user name and "
            "password; send Harbor's default Basic robot credentials",
        )
    return authorization


def _repository(artifact: dict[str, Any]) -> str:
    repository = _string(artifact, "artifact.repository") or ""
    if len(repository) > _MAX_REPOSITORY_LENGTH or not _REPOSITORY.fullmatch(repository):
        raise ClientError(
            422,
            f"artifact.repository {repository[:300]!r} is not a valid repository name "
            "(lower-case path components such as 'library/alpine')",
        )
    return repository


def _digest(artifact: dict[str, Any]) -> str:
    digest = _string(artifact, "artifact.digest") or ""
    if not _DIGEST.fullmatch(digest):
        raise ClientError(422, f"artifact.digest {digest[:100]!r} must look like sha256:<64 lower-case hex digits>")
    return digest


def _tag(artifact: dict[str, Any]) -> str | None:
    tag = _string(artifact, "artifact.tag", required=False)
    if tag and not _TAG.fullmatch(tag):
        raise ClientError(422, f"artifact.tag {tag[:200]!r} is not a valid tag")
    return tag or None


def _manifest_media_type(artifact: dict[str, Any]) -> str:
    mime_type = _string(artifact, "artifact.mime_type") or ""
    if mime_type not in media.SCANNABLE_MANIFEST_TYPES:
        raise ClientError(
            501,
            f"artifact.mime_type {mime_type[:200]!r} is not scanned by this adapter; it scans "
            f"{' and '.join(media.SCANNABLE_MANIFEST_TYPES)} (Harbor sends each image of an index separately)",
        )
    return mime_type


def _check_capabilities(enabled: Any) -> None:
    """Reject requests whose enabled capabilities include nothing this scanner produces."""
    if enabled is None:
        return  # Harbor before 2.11 sends no list, meaning every capability
    if not isinstance(enabled, list):
        raise ClientError(422, f"enabled_capabilities must be an array, got {_json_type(enabled)}")

    for index, capability in enumerate(enabled):
        if not isinstance(capability, dict):
            raise ClientError(422, f"enabled_capabilities[{index}] must be an object, got {_json_type(capability)}")
        kind = capability.get("type", "vulnerability")
        if kind != "vulnerability":
            raise ClientError(501, f"enabled_capabilities[{index}].type {str(kind)[:50]!r} is not supported; this scanner produces vulnerability reports only")
        produces = capability.get("produces_mime_types")
        if produces is None:
            continue
        if not isinstance(produces, list) or not all(isinstance(item, str) for item in produces):
            raise ClientError(422, f"enabled_capabilities[{index}].produces_mime_types must be an array of strings")
        if produces and not any(media.choose_report_type(item) for item in produces):
            raise ClientError(
                501,
                f"enabled_capabilities[{index}].produces_mime_types asks for {produces[:3]!r}; "
                f"this scanner produces {media.VULNERABILITY_REPORT_V1_1!r}",
            )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
