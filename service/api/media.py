"""Media types of the Harbor scanner API and the report type negotiation."""

from __future__ import annotations

import math

DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST_V1 = "application/vnd.oci.image.manifest.v1+json"
SCANNABLE_MANIFEST_TYPES = (OCI_MANIFEST_V1, DOCKER_MANIFEST_V2)

METADATA = "application/vnd.scanner.adapter.metadata+json; version=1.0"
SCAN_RESPONSE = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
ERROR = "application/vnd.scanner.adapter.error+json; version=1.0"

VULNERABILITY_REPORT_V1_1 = "application/vnd.security.vulnerability.report; version=1.1"
# Served when asked for, never advertised: Harbor fetches every advertised type, and its UI
# of some versions showed the 1.0 report (without CVSS) when both were advertised.
VULNERABILITY_REPORT_V1_0 = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
SBOM_REPORT = "application/vnd.security.sbom.report+json; version=1.0"

SERVED_REPORT_TYPES = (VULNERABILITY_REPORT_V1_1, VULNERABILITY_REPORT_V1_0)


def normalise(media_type: str) -> str:
    """Lower-case a media type and remove blanks around `;` and `=`, for comparison only."""
    parts = [part.strip() for part in media_type.split(";")]
    main, parameters = parts[0].lower(), []
    for parameter in parts[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            continue
        parameters.append(f"{name.strip().lower()}={value.strip().strip(chr(34))}")
    return ";".join([main, *parameters])


_SERVED = {normalise(media_type): media_type for media_type in SERVED_REPORT_TYPES}


def choose_report_type(accept: str | None) -> str | None:
    """Pick the report media type for an `Accept` header value.

    A missing or empty header, or one allowing anything, gets the 1.1 report. Among served
    types the highest `q` wins, then the earliest listed; `q=0` excludes a type. Returns
    None when none of the listed types is served.
    """
    if accept is None or not accept.strip():
        return VULNERABILITY_REPORT_V1_1

    candidates: list[tuple[float, int, str]] = []
    for position, media_range in enumerate(accept.split(",")):
        normalised = normalise(media_range)
        quality = _quality(media_range)
        if quality <= 0:
            continue
        if normalised in ("*/*", "application/*"):
            candidates.append((quality, position, VULNERABILITY_REPORT_V1_1))
        elif normalised in _SERVED:
            candidates.append((quality, position, _SERVED[normalised]))

    if not candidates:
        return None
    return max(candidates, key=lambda candidate: (candidate[0], -candidate[1]))[2]


def _quality(media_range: str) -> float:
    for parameter in media_range.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value.strip())
            except ValueError:
                return 0.0  # an unreadable weight makes the range unusable
            return min(max(weight, 0.0), 1.0) if math.isfinite(weight) else 0.0
    return 1.0
