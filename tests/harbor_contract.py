"""Validation of responses against Harbor's scanner API v1.2 OpenAPI document."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator

SPEC_PATH = Path(__file__).parent / "data" / "harbor" / "scanner-adapter-openapi-v1.2.yaml"
ERROR_MEDIA_TYPE = "application/vnd.scanner.adapter.error+json; version=1.0"


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


def schema_validator(name: str) -> OAS30Validator:
    """Validator for `#/components/schemas/<name>` with the document's refs resolvable."""
    return OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": spec()["components"]})


def validate_response(route: str, method: str, status: int, content_type: str | None, body: bytes) -> None:
    """Assert that a response matches the operation's declared status, media type and schema.

    Error statuses must carry Harbor's envelope in the error media type, even where the
    document declares no content (its 404).
    """
    responses = spec()["paths"][route][method.lower()]["responses"]
    declared = responses.get(status) or responses.get(str(status))
    assert declared is not None, f"{method} {route} does not declare status {status}"

    if status >= 400:
        assert content_type == ERROR_MEDIA_TYPE, f"error content type is {content_type!r}"
        schema_validator("ErrorResponse").validate(json.loads(body))
        assert isinstance(json.loads(body)["error"]["message"], str)
        return

    content = declared.get("content")
    if content is None:
        return
    assert content_type in content, f"{content_type!r} is not one of {sorted(content)}"
    schema = content[content_type]["schema"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    schema_validator(name).validate(json.loads(body))


def check_harbor_metadata_rules(metadata: dict[str, Any]) -> None:
    """Apply the checks Harbor runs on every metadata response before it accepts a scanner."""
    scanner = metadata["scanner"]
    for key in ("name", "vendor", "version"):
        assert scanner.get(key), f"scanner.{key} is empty"

    capabilities = metadata["capabilities"]
    assert capabilities, "no capabilities"
    report_types = {
        "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0",
        "application/vnd.security.vulnerability.report; version=1.1",
        "application/vnd.security.sbom.report+json; version=1.0",
    }
    for capability in capabilities:
        assert "application/vnd.docker.distribution.manifest.v2+json" in capability["consumes_mime_types"]
        assert report_types & set(capability["produces_mime_types"])
