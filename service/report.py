"""Translate Sysdig legacy-API vulnerabilities into Harbor's vulnerability report.

The input items carry the legacy per-vulnerability keys (`vuln`, `severity`, `package_name`,
`package_version`, `fix`, `url`, `nvd_data[]`, `vendor_data[]`). The output is the JSON-ready
`HarborVulnerabilityReport` of the 1.1 media type, and `report_for_media_type` derives the 1.0 form.

Harbor keeps the first `description`, `links` and `vendor_attributes` it receives for a
vulnerability record and never updates them. So every field here is taken from the source or
left out. Nothing is synthesised, and an unknown score is left out rather than written as 0.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

REPORT_MEDIA_TYPE_V1_1 = "application/vnd.security.vulnerability.report; version=1.1"
REPORT_MEDIA_TYPE_V1_0 = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"

# Harbor's Severity enum in ascending rank, so the index is the rank.
SEVERITIES = ("Unknown", "Negligible", "Low", "Medium", "High", "Critical")

_SEVERITY_BY_KEY = {severity.casefold(): severity for severity in SEVERITIES}
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}

# Item fields that the 1.1 schema added, which a 1.0 report must not carry.
_V1_1_ONLY_ITEM_FIELDS = ("preferred_cvss", "cwe_ids", "vendor_attributes")

# Bounds the memory spent on remembering which unknown severities were already logged.
_MAX_WARNED_SEVERITIES = 256
_warned_severities: set[str] = set()

# Every C0 control character except tab, line feed and carriage return.
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CVE_ID = re.compile(r"CVE-\d{4}-\d+")
_NVD_DETAIL_URL = "https://nvd.nist.gov/vuln/detail/{}"

# Keys under which a CVSS object may carry its vector. The recorded legacy output has none of them.
_VECTOR_KEYS = ("vector_string", "vectorString", "vector")
_NVD_SOURCE = "nvd"


# --- severity -------------------------------------------------------------------------------


def normalise_severity(value: object) -> str:
    """Map a vendor severity to Harbor's exact enum, case-insensitively.

    Unrecognised strings, None and non-strings become "Unknown". Each distinct value is logged
    once, and only the first 256 distinct values are, so a large report cannot flood the log.
    """
    if isinstance(value, str):
        known = _SEVERITY_BY_KEY.get(value.strip().casefold())
        if known is not None:
            return known

    _warn_unknown_severity(value)
    return "Unknown"


def _warn_unknown_severity(value: object) -> None:
    value_text = repr(value)[:80]
    if value_text in _warned_severities or len(_warned_severities) >= _MAX_WARNED_SEVERITIES:
        return

    _warned_severities.add(value_text)
    logger.warning(
        "Invalid severity %s (expected one of %s), reported as Unknown. "
        "Later findings with this value are not logged.",
        value_text,
        ", ".join(SEVERITIES),
    )


def _higher_severity(first: str, second: str) -> str:
    return first if _RANK[first] >= _RANK[second] else second


# --- text and links -------------------------------------------------------------------------


def _clean_text(value: str) -> str:
    """Return `value` as valid UTF-8 text without C0 control characters (NUL included).

    PostgreSQL rejects NUL in text columns, and lone surrogates cannot be encoded as UTF-8.
    """
    valid = value.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL_CHARACTERS.sub("", valid)


def _text_or_none(value: object) -> str | None:
    """Return a cleaned, stripped, non-empty string, or None for anything else."""
    if not isinstance(value, str):
        return None

    cleaned = _clean_text(value).strip()
    return cleaned or None


def _version_text(value: object) -> str:
    """Return the installed version as text. A number is converted, and any other type becomes ""."""
    if isinstance(value, str):
        return _clean_text(value).strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _fix_version(value: object) -> str | None:
    """Return the vulnerability's own fix version, or None when the source states there is none.

    Only strings count, because a number such as 1.10 would lose digits on the way here.
    """
    text = _text_or_none(value)
    if text is None or text.casefold() == "none":
        return None
    return text


def _description(descriptions: Mapping[str, Any], vulnerability_id: str) -> str | None:
    value = descriptions.get(vulnerability_id)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return _text_or_none(value)


def _is_public_link(url: str) -> bool:
    """Tell whether `url` is an http(s) page that Harbor can store and show.

    Harbor joins links with `|`, so a link containing one would split in two. Sysdig UI pages
    (its own host, or a `#/` single-page-app route) belong to one scan result, and Harbor
    would show them for every later image with the same vulnerability.
    """
    if "|" in url or "#/" in url:
        return False
    if any(not "\x21" <= character <= "\x7e" for character in url):
        return False

    parts = urlsplit(url)
    host = (parts.hostname or "").casefold()
    if parts.scheme.casefold() not in ("http", "https") or not host:
        return False
    return host != "sysdig.com" and not host.endswith(".sysdig.com")


def _links(vulnerability: Mapping[str, Any], vulnerability_id: str) -> list[str]:
    links = []

    url = vulnerability.get("url")
    if isinstance(url, str) and _is_public_link(url.strip()):
        links.append(url.strip())

    if _CVE_ID.fullmatch(vulnerability_id):
        links.append(_NVD_DETAIL_URL.format(vulnerability_id))

    return list(dict.fromkeys(links))


# --- CVSS -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Score:
    """One CVSS version's base score and vector, either of which may be unknown."""

    value: float | None = None
    vector: str | None = None

    def rank(self) -> tuple[bool, float, bool]:
        # A known score beats none, a higher score beats a lower one, then a known vector wins.
        return (self.value is not None, self.value or 0.0, self.vector is not None)

    def is_known(self) -> bool:
        return self.value is not None or self.vector is not None


@dataclass(slots=True)
class _Cvss:
    """The v3 and v2 scores that one source gives for one finding."""

    v3: _Score = field(default_factory=_Score)
    v2: _Score = field(default_factory=_Score)

    def merge(self, other: _Cvss) -> None:
        # Keep each version's score and vector together so a vector never labels another score.
        if other.v3.rank() > self.v3.rank():
            self.v3 = other.v3
        if other.v2.rank() > self.v2.rank():
            self.v2 = other.v2

    def is_known(self) -> bool:
        return self.v3.is_known() or self.v2.is_known()


def _base_score(value: object) -> float | None:
    """Return a CVSS base score, accepting only JSON numbers in (0, 10].

    Strings, booleans and 0 are rejected, because Harbor shows 0 as a real score and the legacy
    API does not document how it encodes a missing score.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 < value <= 10:
        return None
    return float(value)


def _score_of(cvss: object) -> _Score:
    if not isinstance(cvss, Mapping):
        return _Score()

    vectors = (_text_or_none(cvss.get(key)) for key in _VECTOR_KEYS)
    vector = next((vector for vector in vectors if vector is not None), None)
    return _Score(value=_base_score(cvss.get("base_score")), vector=vector)


def _cvss_of_entry(entry: Mapping[str, Any]) -> _Cvss:
    return _Cvss(v3=_score_of(entry.get("cvss_v3")), v2=_score_of(entry.get("cvss_v2")))


def _entries(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [entry for entry in value if isinstance(entry, Mapping)]


def _cvss_by_source(vulnerability: Mapping[str, Any]) -> dict[str, _Cvss]:
    """Collect CVSS per source: `nvd` from `nvd_data`, vendor entries under their own name.

    Several entries of one source are merged by keeping the highest score per CVSS version.
    A vendor entry without a `source` or `id` string has no name to file it under, so it is
    skipped.
    """
    sources: dict[str, _Cvss] = {}

    for entry in _entries(vulnerability.get("nvd_data")):
        sources.setdefault(_NVD_SOURCE, _Cvss()).merge(_cvss_of_entry(entry))

    for entry in _entries(vulnerability.get("vendor_data")):
        source = _text_or_none(entry.get("source")) or _text_or_none(entry.get("id"))
        if source is not None:
            sources.setdefault(source, _Cvss()).merge(_cvss_of_entry(entry))

    return {source: cvss for source, cvss in sources.items() if cvss.is_known()}


def _preferred(sources: Mapping[str, _Cvss], version: str) -> _Score:
    """Pick one source's score for `version`: NVD first, then vendors in input order.

    A source with a score wins over one with only a vector.
    """
    ordered = sorted(sources.items(), key=lambda item: item[0] != _NVD_SOURCE)
    scores = [getattr(cvss, version) for _, cvss in ordered]

    with_value = [score for score in scores if score.value is not None]
    if with_value:
        return with_value[0]
    with_vector = [score for score in scores if score.vector is not None]
    return with_vector[0] if with_vector else _Score()


def _preferred_cvss(sources: Mapping[str, _Cvss]) -> dict[str, Any]:
    v3 = _preferred(sources, "v3")
    v2 = _preferred(sources, "v2")
    candidates = {
        "score_v3": v3.value,
        "score_v2": v2.value,
        "vector_v3": v3.vector,
        "vector_v2": v2.vector,
    }
    return {key: value for key, value in candidates.items() if value is not None}


def _vendor_attributes(sources: Mapping[str, _Cvss]) -> dict[str, Any]:
    by_source = {}
    for source, cvss in sources.items():
        candidates = {
            "V3Score": cvss.v3.value,
            "V3Vector": cvss.v3.vector,
            "V2Score": cvss.v2.value,
            "V2Vector": cvss.v2.vector,
        }
        by_source[source] = {key: value for key, value in candidates.items() if value is not None}

    return {"CVSS": by_source} if by_source else {}


# --- findings -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Finding:
    """One (id, package, version) triple with everything merged from its duplicates."""

    id: str
    package: str
    version: str
    severity: str
    fix_version: str | None
    links: list[str]
    cvss: dict[str, _Cvss]

    def key(self) -> tuple[str, str, str]:
        return (self.id, self.package, self.version)

    def merge(self, other: _Finding) -> None:
        self.severity = _higher_severity(self.severity, other.severity)
        self.fix_version = self.fix_version or other.fix_version
        self.links = list(dict.fromkeys(self.links + other.links))

        for source, cvss in other.cvss.items():
            self.cvss.setdefault(source, _Cvss()).merge(cvss)


def _package_and_version(vulnerability: Mapping[str, Any]) -> tuple[str, str] | None:
    """Return (package, version), or None when the item names no package.

    Without `package_name`, the combined `package` (`<name>-<version>`) is used: the
    `-<package_version>` suffix is cut off when it matches, and otherwise `package` is kept
    whole, because package names contain `-` too and a guessed split would misname them.
    """
    version = _version_text(vulnerability.get("package_version"))

    name = _text_or_none(vulnerability.get("package_name"))
    if name is not None:
        return name, version

    combined = _text_or_none(vulnerability.get("package"))
    if combined is None:
        return None
    if version and combined.endswith(f"-{version}") and len(combined) > len(version) + 1:
        return combined[: -len(version) - 1], version
    return combined, version


def _finding_of(vulnerability: Mapping[str, Any]) -> _Finding | None:
    vulnerability_id = _text_or_none(vulnerability.get("vuln"))
    package_and_version = _package_and_version(vulnerability)
    if vulnerability_id is None or package_and_version is None:
        return None

    package, version = package_and_version
    return _Finding(
        id=vulnerability_id,
        package=package,
        version=version,
        severity=normalise_severity(vulnerability.get("severity")),
        fix_version=_fix_version(vulnerability.get("fix")),
        links=_links(vulnerability, vulnerability_id),
        cvss=_cvss_by_source(vulnerability),
    )


def _merged_findings(vulnerabilities: Iterable[Mapping[str, Any]]) -> list[_Finding]:
    """Translate and de-duplicate by (id, package, version) in one pass, as Harbor keys them."""
    merged: dict[tuple[str, str, str], _Finding] = {}
    skipped = 0

    for vulnerability in vulnerabilities:
        finding = _finding_of(vulnerability) if isinstance(vulnerability, Mapping) else None
        if finding is None:
            skipped += 1
            continue

        existing = merged.get(finding.key())
        if existing is None:
            merged[finding.key()] = finding
        else:
            existing.merge(finding)

    if skipped:
        logger.warning(
            "Skipped %d vulnerabilities without a string `vuln` id or package name, "
            "because Harbor keys findings by (id, package, version).",
            skipped,
        )
    return list(merged.values())


def _sort_key(finding: _Finding) -> tuple[int, str, str, str]:
    return (-_RANK[finding.severity], finding.id, finding.package, finding.version)


def _item(finding: _Finding, descriptions: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": finding.id,
        "package": finding.package,
        "version": finding.version,
    }
    if finding.fix_version is not None:
        item["fix_version"] = finding.fix_version
    item["severity"] = finding.severity

    description = _description(descriptions, finding.id)
    if description is not None:
        item["description"] = description
    item["links"] = finding.links

    preferred_cvss = _preferred_cvss(finding.cvss)
    if preferred_cvss:
        item["preferred_cvss"] = preferred_cvss
    vendor_attributes = _vendor_attributes(finding.cvss)
    if vendor_attributes:
        item["vendor_attributes"] = vendor_attributes

    return item


# --- report ---------------------------------------------------------------------------------


def _rfc3339_utc(moment: datetime) -> str:
    """Format `moment` as RFC 3339 UTC in whole seconds, because Harbor compares it as a string."""
    if not isinstance(moment, datetime):
        raise ValueError(f"invalid generated_at of type {type(moment).__name__}: pass an aware datetime")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"generated_at {moment.isoformat()} has no time zone: pass an aware datetime, "
            "for example datetime.now(timezone.utc)"
        )
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_report(
    vulnerabilities: Iterable[Mapping[str, Any]],
    descriptions: Mapping[str, str],
    *,
    artifact: Mapping[str, Any],
    scanner: Mapping[str, str],
    generated_at: datetime,
) -> dict[str, Any]:
    """Build the JSON-ready Harbor 1.1 vulnerability report from legacy Sysdig items.

    `descriptions` maps vulnerability ids to their text. Items without a string id or package
    name are skipped with one warning. Raises ValueError when `generated_at` is naive.
    """
    timestamp = _rfc3339_utc(generated_at)

    findings = sorted(_merged_findings(vulnerabilities), key=_sort_key)
    items = [_item(finding, descriptions or {}) for finding in findings]

    report: dict[str, Any] = {
        "generated_at": timestamp,
        "artifact": dict(artifact),
        "scanner": dict(scanner),
    }
    # A clean image gets no overall severity, because Unknown would read as an unrated finding.
    if findings:
        report["severity"] = findings[0].severity
    report["vulnerabilities"] = items
    return report


def _score_from_report(item: Mapping[str, Any], preferred_key: str, nvd_key: str) -> Any:
    """Read a score or vector the way Harbor does: `preferred_cvss` first, then NVD's entry."""
    preferred = item.get("preferred_cvss")
    if isinstance(preferred, Mapping) and preferred.get(preferred_key) is not None:
        return preferred[preferred_key]

    vendor_attributes = item.get("vendor_attributes")
    cvss = vendor_attributes.get("CVSS") if isinstance(vendor_attributes, Mapping) else None
    nvd = cvss.get(_NVD_SOURCE) if isinstance(cvss, Mapping) else None
    return nvd.get(nvd_key) if isinstance(nvd, Mapping) else None


def findings_of(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten a report's items into rows for the findings table."""
    rows = []
    for item in report.get("vulnerabilities") or []:
        rows.append(
            {
                "vulnerability_id": item["id"],
                "package": item["package"],
                "version": item["version"],
                "fix_version": item.get("fix_version") or None,
                "severity": item["severity"],
                "cvss_v3_score": _score_from_report(item, "score_v3", "V3Score"),
                "cvss_v3_vector": _score_from_report(item, "vector_v3", "V3Vector"),
                "cvss_v2_score": _score_from_report(item, "score_v2", "V2Score"),
                "cvss_v2_vector": _score_from_report(item, "vector_v2", "V2Vector"),
            }
        )
    return rows


def report_for_media_type(report: Mapping[str, Any], media_type: str) -> dict[str, Any]:
    """Return the report in `media_type`: the 1.1 report as is, or 1.0 without 1.1-only fields.

    Raises ValueError for any other media type. The strings are compared exactly, as Harbor does.
    """
    if media_type == REPORT_MEDIA_TYPE_V1_1:
        return dict(report)

    if media_type == REPORT_MEDIA_TYPE_V1_0:
        items = [
            {key: value for key, value in item.items() if key not in _V1_1_ONLY_ITEM_FIELDS}
            for item in report.get("vulnerabilities") or []
        ]
        return {**report, "vulnerabilities": items}

    raise ValueError(
        f"unsupported report media type {media_type!r}: "
        f"use {REPORT_MEDIA_TYPE_V1_1!r} or {REPORT_MEDIA_TYPE_V1_0!r}"
    )
