"""Tests of the translation from Sysdig legacy vulnerabilities to Harbor's report."""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from service.report import (
    REPORT_MEDIA_TYPE_V1_0,
    REPORT_MEDIA_TYPE_V1_1,
    SEVERITIES,
    build_report,
    findings_of,
    normalise_severity,
    report_for_media_type,
)

DATA = Path(__file__).parent / "data"
RECORDED = json.loads((DATA / "sysdig" / "inline-scan-v2-output-anchore-shape.json").read_text())
RECORDED_VULNERABILITIES = RECORDED["vulnsReport"]["vulnerabilities"]
SPEC = yaml.safe_load((DATA / "harbor" / "scanner-adapter-openapi-v1.2.yaml").read_text())

ARTIFACT = {
    "repository": "library/alpine",
    "digest": "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
    "tag": "3.7",
    "mime_type": "application/vnd.docker.distribution.manifest.v2+json",
}
SCANNER = {"name": "Sysdig Secure", "vendor": "Sysdig", "version": "0.1.0"}
GENERATED_AT = datetime(2026, 1, 31, 10, 0, 0, tzinfo=timezone.utc)
MISSING = object()  # marks a key that legacy_item() must leave out

FINDING_KEYS = {
    "vulnerability_id",
    "package",
    "version",
    "fix_version",
    "severity",
    "cvss_v3_score",
    "cvss_v3_vector",
    "cvss_v2_score",
    "cvss_v2_vector",
}
V3_VECTOR = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V2_VECTOR = "AV:N/AC:L/Au:N/C:P/I:P/A:P"
NVD_LINK = "https://nvd.nist.gov/vuln/detail/CVE-2024-0001"
MITRE_LINK = "https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-2024-0001"
ALPINE_LINK = "https://security.alpinelinux.org/vuln/CVE-2024-0001"
GHSA_LINK = "https://github.com/advisories/GHSA-9wx4-h78v-vm56"


def legacy_item(**overrides: Any) -> dict[str, Any]:
    """Return a legacy vulnerability with the keys the legacy API sends, changed by `overrides`."""
    item: dict[str, Any] = {
        "feed": "vulnerabilities",
        "feed_group": "alpine:3.7",
        "fix": None,
        "nvd_data": [],
        "package": "openssl-3.0.1",
        "package_cpe": "None",
        "package_name": "openssl",
        "package_path": "pkgdb",
        "package_type": "APKG",
        "package_version": "3.0.1",
        "severity": "High",
        "url": None,
        "vendor_data": [],
        "vuln": "CVE-2024-0001",
    }
    for key, value in overrides.items():
        if value is MISSING:
            item.pop(key, None)
        else:
            item[key] = value
    return item


def build(items: list[Any], descriptions: dict[str, Any] | None = None) -> dict[str, Any]:
    return build_report(
        items, descriptions or {}, artifact=ARTIFACT, scanner=SCANNER, generated_at=GENERATED_AT
    )


def only_item(items: list[Any], descriptions: dict[str, Any] | None = None) -> dict[str, Any]:
    report = build(items, descriptions)
    assert len(report["vulnerabilities"]) == 1
    return report["vulnerabilities"][0]


def item_for(report: dict[str, Any], vulnerability_id: str, package: str, version: str) -> dict[str, Any]:
    matches = [
        item
        for item in report["vulnerabilities"]
        if (item["id"], item["package"], item["version"]) == (vulnerability_id, package, version)
    ]
    assert len(matches) == 1, f"expected one item for {vulnerability_id} {package} {version}"
    return matches[0]


def nvd_entry(v3: Any = MISSING, v2: Any = MISSING, **cvss_v3_extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": "CVE-2024-0001"}
    if v3 is not MISSING:
        entry["cvss_v3"] = {
            "base_score": v3,
            "exploitability_score": 3.9,
            "impact_score": 5.9,
            **cvss_v3_extra,
        }
    if v2 is not MISSING:
        entry["cvss_v2"] = {"base_score": v2, "exploitability_score": 10, "impact_score": 6.4}
    return entry


# --- schema ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_validator() -> OAS30Validator:
    schema = {"$ref": "#/components/schemas/HarborVulnerabilityReport", "components": SPEC["components"]}
    return OAS30Validator(schema, format_checker=oas30_format_checker)


def rich_report() -> dict[str, Any]:
    """Return a report that uses every optional item field the builder can emit."""
    vendor = {"source": "vulndb", "cvss_v3": {"base_score": 8.1, "vector_string": V3_VECTOR}}
    nvd = {
        "cvss_v3": {"base_score": 9.8, "vector_string": V3_VECTOR},
        "cvss_v2": {"base_score": 7.5, "vector": V2_VECTOR},
    }
    items = [
        legacy_item(fix="3.0.2", url=ALPINE_LINK, nvd_data=[nvd], vendor_data=[vendor]),
        legacy_item(vuln="GHSA-abcd-1234-efgh", severity="low"),
    ]
    return build(items, {"CVE-2024-0001": "Überlauf\x00 in 日本"})


REPORTS_TO_VALIDATE = {
    "recorded": lambda: build(RECORDED_VULNERABILITIES),
    "rich": rich_report,
    "clean": lambda: build([]),
    "all_unknown": lambda: build([legacy_item(severity="Important")]),
    "recorded_v1_0": lambda: report_for_media_type(build(RECORDED_VULNERABILITIES), REPORT_MEDIA_TYPE_V1_0),
    "rich_v1_0": lambda: report_for_media_type(rich_report(), REPORT_MEDIA_TYPE_V1_0),
}


@pytest.mark.parametrize("name", sorted(REPORTS_TO_VALIDATE))
def test_report_matches_openapi_schema(report_validator: OAS30Validator, name: str) -> None:
    errors = [error.message for error in report_validator.iter_errors(REPORTS_TO_VALIDATE[name]())]
    assert errors == []


@pytest.mark.parametrize("name", sorted(REPORTS_TO_VALIDATE))
def test_report_items_use_only_schema_fields(name: str) -> None:
    item_fields = set(SPEC["components"]["schemas"]["VulnerabilityItem"]["properties"])
    cvss_fields = set(SPEC["components"]["schemas"]["CVSSDetails"]["properties"])

    for item in REPORTS_TO_VALIDATE[name]()["vulnerabilities"]:
        assert set(item) <= item_fields
        assert set(item.get("preferred_cvss", {})) <= cvss_fields


@pytest.mark.parametrize(
    "change",
    [
        {"severity": "high"},
        {"generated_at": "31 January 2026"},
        {"vulnerabilities": [{"id": "CVE-2024-0001", "preferred_cvss": {"score_v3": "7.5"}}]},
    ],
    ids=["lower_case_severity", "non_rfc3339_time", "string_score"],
)
def test_schema_rejects_invalid_report(report_validator: OAS30Validator, change: dict[str, Any]) -> None:
    report = {**build([]), **change}
    assert not report_validator.is_valid(report)


# --- recorded data --------------------------------------------------------------------------


def test_recorded_musl_item_fields() -> None:
    # Values read by hand from the recorded CVE-2019-14697 entry for musl 1.1.18-r3.
    item = item_for(build(RECORDED_VULNERABILITIES), "CVE-2019-14697", "musl", "1.1.18-r3")

    assert item == {
        "id": "CVE-2019-14697",
        "package": "musl",
        "version": "1.1.18-r3",
        "fix_version": "1.1.18-r4",
        "severity": "High",
        "links": [
            "https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-2019-14697",
            "https://nvd.nist.gov/vuln/detail/CVE-2019-14697",
        ],
        "preferred_cvss": {"score_v3": 9.8, "score_v2": 7.5},
        "vendor_attributes": {"CVSS": {"nvd": {"V3Score": 9.8, "V2Score": 7.5}}},
    }


def test_recorded_apt_item_has_no_fix_or_cvss() -> None:
    # The recorded apt entry has "fix": null and "nvd_data": [].
    item = item_for(build(RECORDED_VULNERABILITIES), "CVE-2011-3374", "apt", "1.0")

    assert item == {
        "id": "CVE-2011-3374",
        "package": "apt",
        "version": "1.0",
        "severity": "Negligible",
        "links": [
            "https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-2011-3374",
            "https://nvd.nist.gov/vuln/detail/CVE-2011-3374",
        ],
    }


def test_recorded_report_order() -> None:
    report = build(RECORDED_VULNERABILITIES)

    assert report["severity"] == "High"
    assert [(item["severity"], item["id"], item["package"]) for item in report["vulnerabilities"]] == [
        ("High", "CVE-2019-14697", "musl"),
        ("High", "CVE-2019-14697", "musl-utils"),
        ("Medium", "CVE-2019-14698", "musl-utils"),
        ("Negligible", "CVE-2011-3374", "apt"),
    ]


def test_recorded_report_keeps_distinct_triples() -> None:
    triples = {(raw["vuln"], raw["package_name"], raw["package_version"]) for raw in RECORDED_VULNERABILITIES}
    report = build(RECORDED_VULNERABILITIES)

    assert len(report["vulnerabilities"]) == len(triples)


@pytest.mark.parametrize(
    "raw",
    RECORDED_VULNERABILITIES,
    ids=[f"{raw['vuln']}-{raw['package_name']}" for raw in RECORDED_VULNERABILITIES],
)
def test_recorded_item_follows_its_source(raw: dict[str, Any]) -> None:
    item = item_for(build(RECORDED_VULNERABILITIES), raw["vuln"], raw["package_name"], raw["package_version"])
    nvd = raw["nvd_data"][0] if raw["nvd_data"] else {}

    assert item["severity"] == raw["severity"]
    assert item.get("fix_version") == raw["fix"]
    assert item.get("preferred_cvss", {}).get("score_v3") == nvd.get("cvss_v3", {}).get("base_score")
    assert item.get("preferred_cvss", {}).get("score_v2") == nvd.get("cvss_v2", {}).get("base_score")
    assert raw["url"] in item["links"]


def test_recorded_report_has_no_descriptions() -> None:
    report = build(RECORDED_VULNERABILITIES)

    assert all("description" not in item for item in report["vulnerabilities"])


# --- severity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Critical", "Critical"),
        ("High", "High"),
        ("HIGH", "High"),
        ("high", "High"),
        (" High ", "High"),
        ("medium", "Medium"),
        ("LOW", "Low"),
        ("negligible", "Negligible"),
        ("unknown", "Unknown"),
        ("Important", "Unknown"),
        ("", "Unknown"),
        (None, "Unknown"),
        (5, "Unknown"),
        (True, "Unknown"),
        (["High"], "Unknown"),
    ],
)
def test_normalise_severity(value: object, expected: str) -> None:
    assert normalise_severity(value) == expected


def test_unknown_severity_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    value = f"Important-{uuid.uuid4()}"

    with caplog.at_level(logging.WARNING, logger="service.report"):
        normalise_severity(value)
        normalise_severity(value)

    assert len([record for record in caplog.records if value in record.getMessage()]) == 1


def test_known_severity_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="service.report"):
        normalise_severity("HIGH")

    assert caplog.records == []


@pytest.mark.parametrize("value", ["HIGH", "medium", "Important", "", None, 5])
def test_item_severity_is_exact_enum(value: object) -> None:
    item = only_item([legacy_item(severity=value)])

    assert item["severity"] in SEVERITIES


# --- fix version ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fix", "expected"),
    [
        ("1.1.18-r4", "1.1.18-r4"),
        (" 3.0.2 ", "3.0.2"),
        (None, MISSING),
        ("", MISSING),
        ("   ", MISSING),
        ("None", MISSING),
        ("none", MISSING),
        ("NONE", MISSING),
        (MISSING, MISSING),
        (1.1, MISSING),
    ],
    ids=["version", "padded", "null", "empty", "blank", "None", "none", "NONE", "absent", "number"],
)
def test_fix_version_from_vulnerability_fix(fix: Any, expected: Any) -> None:
    item = only_item([legacy_item(fix=fix)])

    assert item.get("fix_version", MISSING) == expected


def test_fix_version_ignores_package_level_fields() -> None:
    item = only_item([legacy_item(fix=None, suggestedFix="3.0.9", package_fix="3.0.9")])

    assert "fix_version" not in item


# --- CVSS -----------------------------------------------------------------------------------

# Rows of (nvd_data, expected preferred_cvss, expected vendor_attributes). MISSING marks a key left out.
CVSS_CASES = {
    "nvd_data_absent": (MISSING, MISSING, MISSING),
    "nvd_data_empty": ([], MISSING, MISSING),
    "nvd_data_string": ("CVE-2024-0001", MISSING, MISSING),
    "nvd_data_dict": (nvd_entry(v3=9.8), MISSING, MISSING),
    "nvd_data_null": (None, MISSING, MISSING),
    "entries_not_dicts": ([None, "x", 3, ["cvss_v3"]], MISSING, MISSING),
    "cvss_null": ([{"id": "CVE-2024-0001", "cvss_v3": None, "cvss_v2": None}], MISSING, MISSING),
    "cvss_not_dict": ([{"cvss_v3": "9.8", "cvss_v2": [7.5]}], MISSING, MISSING),
    "score_zero": ([nvd_entry(v3=0, v2=0.0)], MISSING, MISSING),
    "score_negative": ([nvd_entry(v3=-1, v2=-1.0)], MISSING, MISSING),
    "score_string": ([nvd_entry(v3="7.5", v2="5.0")], MISSING, MISSING),
    "score_bool": ([nvd_entry(v3=True, v2=True)], MISSING, MISSING),
    "score_above_ten": ([nvd_entry(v3=10.5)], MISSING, MISSING),
    "score_nan": ([nvd_entry(v3=float("nan"))], MISSING, MISSING),
    "score_null": ([nvd_entry(v3=None, v2=None)], MISSING, MISSING),
    "score_ten": ([nvd_entry(v3=10)], {"score_v3": 10.0}, {"CVSS": {"nvd": {"V3Score": 10.0}}}),
    "v3_only": ([nvd_entry(v3=7.5)], {"score_v3": 7.5}, {"CVSS": {"nvd": {"V3Score": 7.5}}}),
    "v2_only": ([nvd_entry(v2=5.0)], {"score_v2": 5.0}, {"CVSS": {"nvd": {"V2Score": 5.0}}}),
    "both": (
        [nvd_entry(v3=9.8, v2=7.5)],
        {"score_v3": 9.8, "score_v2": 7.5},
        {"CVSS": {"nvd": {"V3Score": 9.8, "V2Score": 7.5}}},
    ),
    "vector_string": (
        [nvd_entry(v3=9.8, vector_string=V3_VECTOR)],
        {"score_v3": 9.8, "vector_v3": V3_VECTOR},
        {"CVSS": {"nvd": {"V3Score": 9.8, "V3Vector": V3_VECTOR}}},
    ),
    "vector_key": (
        [{"cvss_v2": {"base_score": 7.5, "vector": V2_VECTOR}}],
        {"score_v2": 7.5, "vector_v2": V2_VECTOR},
        {"CVSS": {"nvd": {"V2Score": 7.5, "V2Vector": V2_VECTOR}}},
    ),
    "vector_without_score": (
        [nvd_entry(v3=0, vector_string=V3_VECTOR)],
        {"vector_v3": V3_VECTOR},
        {"CVSS": {"nvd": {"V3Vector": V3_VECTOR}}},
    ),
    "highest_entry_wins": (
        [nvd_entry(v3=5.3, vector_string="CVSS:3.1/low"), nvd_entry(v3=8.8, vector_string="CVSS:3.1/high")],
        {"score_v3": 8.8, "vector_v3": "CVSS:3.1/high"},
        {"CVSS": {"nvd": {"V3Score": 8.8, "V3Vector": "CVSS:3.1/high"}}},
    ),
}


@pytest.mark.parametrize("case", sorted(CVSS_CASES))
def test_preferred_cvss_from_nvd_data(case: str) -> None:
    nvd_data, expected, _ = CVSS_CASES[case]
    item = only_item([legacy_item(nvd_data=nvd_data)])

    assert item.get("preferred_cvss", MISSING) == expected


@pytest.mark.parametrize("case", sorted(CVSS_CASES))
def test_vendor_attributes_from_nvd_data(case: str) -> None:
    nvd_data, _, expected = CVSS_CASES[case]
    item = only_item([legacy_item(nvd_data=nvd_data)])

    assert item.get("vendor_attributes", MISSING) == expected


def test_vendor_score_under_its_source() -> None:
    vendor = {"source": "vulndb", "cvss_v3": {"base_score": 8.1, "vector_string": V3_VECTOR}}
    item = only_item([legacy_item(vendor_data=[vendor])])

    assert item["vendor_attributes"] == {"CVSS": {"vulndb": {"V3Score": 8.1, "V3Vector": V3_VECTOR}}}


def test_vendor_score_when_nvd_missing() -> None:
    vendor = {"id": "vulndb", "cvss_v3": {"base_score": 8.1}}
    item = only_item([legacy_item(vendor_data=[vendor])])

    assert item["preferred_cvss"] == {"score_v3": 8.1}


def test_nvd_score_preferred_over_vendor_score() -> None:
    vendor = {"source": "vulndb", "cvss_v3": {"base_score": 8.1}}
    item = only_item([legacy_item(nvd_data=[nvd_entry(v3=9.8)], vendor_data=[vendor])])

    assert item["preferred_cvss"] == {"score_v3": 9.8}


def test_vendor_data_without_name_skipped() -> None:
    vendor = {"cvss_v3": {"base_score": 8.1}}
    item = only_item([legacy_item(vendor_data=[vendor])])

    assert "vendor_attributes" not in item


@pytest.mark.parametrize("vendor_data", [None, "vulndb", {"source": "vulndb"}, [None, 7]])
def test_malformed_vendor_data_ignored(vendor_data: Any) -> None:
    item = only_item([legacy_item(vendor_data=vendor_data)])

    assert "vendor_attributes" not in item


def test_scores_are_positive_floats() -> None:
    report = build(RECORDED_VULNERABILITIES + [legacy_item(nvd_data=[nvd_entry(v3=0, v2=None)])])

    scores = [
        item["preferred_cvss"][key]
        for item in report["vulnerabilities"]
        for key in ("score_v3", "score_v2")
        if key in item.get("preferred_cvss", {})
    ]

    assert scores
    assert all(type(score) is float for score in scores)
    assert all(score > 0 for score in scores)


# --- links ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("vulnerability_id", "url", "expected"),
    [
        ("CVE-2024-0001", MITRE_LINK, [MITRE_LINK, NVD_LINK]),
        ("CVE-2024-0001", None, [NVD_LINK]),
        ("CVE-2024-0001", MISSING, [NVD_LINK]),
        ("CVE-2024-0001", 42, [NVD_LINK]),
        ("CVE-2024-0001", NVD_LINK, [NVD_LINK]),
        ("CVE-2024-0001", "https://a.example/x|https://b.example/y", [NVD_LINK]),
        ("CVE-2024-0001", "https://a.example/some page", [NVD_LINK]),
        ("CVE-2024-0001", "ftp://a.example/CVE-2024-0001", [NVD_LINK]),
        ("CVE-2024-0001", "not a url", [NVD_LINK]),
        ("CVE-2024-0001", "https://secure.sysdig.com/#/scanning/scan-results/abc/vulns", [NVD_LINK]),
        ("CVE-2024-0001", "https://eu1.app.sysdig.com/secure/#/vulnerabilities/results/2a7f", [NVD_LINK]),
        ("CVE-2024-0001", "https://sysdig.example.corp/secure/#/vulnerabilities/results/2a7f", [NVD_LINK]),
        ("GHSA-9wx4-h78v-vm56", GHSA_LINK, [GHSA_LINK]),
        ("GHSA-9wx4-h78v-vm56", None, []),
        ("CVE-2024-0001-extra", None, []),
    ],
    ids=[
        "url_and_nvd",
        "url_null",
        "url_absent",
        "url_number",
        "url_is_nvd",
        "url_with_pipe",
        "url_with_space",
        "url_not_http",
        "url_not_url",
        "sysdig_saas_ui",
        "sysdig_regional_ui",
        "sysdig_onprem_ui",
        "non_cve_with_url",
        "non_cve_without_url",
        "malformed_cve_id",
    ],
)
def test_links_are_public_pages_only(vulnerability_id: str, url: Any, expected: list[str]) -> None:
    item = only_item([legacy_item(vuln=vulnerability_id, url=url)])

    assert item["links"] == expected


def test_links_never_contain_pipe() -> None:
    items = RECORDED_VULNERABILITIES + [
        legacy_item(vuln=f"CVE-2024-{n:04d}", url=url)
        for n, url in enumerate(["https://a.example/|", "https://a.example/%7C", "http://b.example/x|y"])
    ]

    links = [link for item in build(items)["vulnerabilities"] for link in item["links"]]

    assert links
    assert all("|" not in link for link in links)


def test_links_are_http_urls() -> None:
    links = [link for item in rich_report()["vulnerabilities"] for link in item["links"]]

    assert all(urlsplit(link).scheme in ("http", "https") and urlsplit(link).netloc for link in links)


# --- descriptions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Überlauf\x00 in 日本", "Überlauf in 日本"),
        ("heap overflow in parser", "heap overflow in parser"),
        ("tab\tline\nreturn\r\x01\x07\x1bend", "tab\tline\nreturn\rend"),
        ("  padded  ", "padded"),
        ("lone \ud800 surrogate", "lone ? surrogate"),
        ("caf\xc3\xa9".encode("latin-1"), "café"),
        ("", MISSING),
        ("\x00\x00", MISSING),
        (None, MISSING),
        (17, MISSING),
        (MISSING, MISSING),
    ],
    ids=[
        "nul_and_non_ascii",
        "plain",
        "control_characters",
        "padded",
        "lone_surrogate",
        "utf8_bytes",
        "empty",
        "only_nul",
        "null",
        "number",
        "absent",
    ],
)
def test_description_is_clean_utf8(description: Any, expected: Any) -> None:
    descriptions = {} if description is MISSING else {"CVE-2024-0001": description}
    item = only_item([legacy_item()], descriptions)

    assert item.get("description", MISSING) == expected


def test_description_encodes_as_utf8() -> None:
    item = only_item([legacy_item()], {"CVE-2024-0001": "bad \udcff byte\x00"})

    assert item["description"].encode("utf-8")


def test_description_matched_by_id() -> None:
    item = only_item([legacy_item()], {"CVE-1999-0001": "another vulnerability"})

    assert "description" not in item


# --- keys, duplicates and skipping ----------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, ("openssl", "3.0.1")),
        (
            {"package_name": MISSING, "package": "musl-utils-1.1.18-r3", "package_version": "1.1.18-r3"},
            ("musl-utils", "1.1.18-r3"),
        ),
        ({"package_name": MISSING, "package": "libfoo", "package_version": MISSING}, ("libfoo", "")),
        ({"package_name": MISSING, "package": "foo-bar", "package_version": "2"}, ("foo-bar", "2")),
        ({"package_name": 7, "package": "zlib-1.2", "package_version": "1.2"}, ("zlib", "1.2")),
        ({"package_version": 1.5}, ("openssl", "1.5")),
        ({"package_version": None}, ("openssl", "")),
        ({"package_name": " openssl\x00 "}, ("openssl", "3.0.1")),
    ],
    ids=[
        "package_name",
        "combined_package_split",
        "combined_package_without_version",
        "combined_package_not_matching_version",
        "package_name_not_string",
        "numeric_version",
        "null_version",
        "control_characters",
    ],
)
def test_item_package_and_version(overrides: dict[str, Any], expected: tuple[str, str]) -> None:
    item = only_item([legacy_item(**overrides)])

    assert (item["package"], item["version"]) == expected


@pytest.mark.parametrize(
    "bad",
    [
        legacy_item(vuln=5),
        legacy_item(vuln=None),
        legacy_item(vuln=""),
        legacy_item(vuln=MISSING),
        legacy_item(package_name=MISSING, package=MISSING),
        legacy_item(package_name=None, package=3),
        "CVE-2024-0001",
        None,
    ],
    ids=[
        "id_number",
        "id_null",
        "id_empty",
        "id_absent",
        "no_package",
        "package_number",
        "string_item",
        "null_item",
    ],
)
def test_unkeyable_item_skipped_with_warning(bad: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="service.report"):
        report = build([bad, legacy_item(vuln="CVE-2024-9999")])

    assert [item["id"] for item in report["vulnerabilities"]] == ["CVE-2024-9999"]
    assert any("Skipped 1 vulnerabilities" in record.getMessage() for record in caplog.records)


def test_duplicates_keep_highest_severity() -> None:
    items = [legacy_item(severity="Low"), legacy_item(severity="Critical"), legacy_item(severity="medium")]

    assert only_item(items)["severity"] == "Critical"


def test_duplicates_keep_any_fix_version() -> None:
    items = [legacy_item(fix=None), legacy_item(fix="3.0.2"), legacy_item(fix="None")]

    assert only_item(items)["fix_version"] == "3.0.2"


def test_duplicates_keep_highest_scores() -> None:
    items = [
        legacy_item(nvd_data=[nvd_entry(v3=9.1, v2=4.3, vector_string="CVSS:3.1/high")]),
        legacy_item(nvd_data=[nvd_entry(v3=5.0, v2=6.8, vector_string="CVSS:3.1/low")]),
    ]

    expected = {"score_v3": 9.1, "score_v2": 6.8, "vector_v3": "CVSS:3.1/high"}

    assert only_item(items)["preferred_cvss"] == expected


def test_duplicates_union_links() -> None:
    items = [legacy_item(url=MITRE_LINK), legacy_item(url=ALPINE_LINK)]

    assert only_item(items)["links"] == [MITRE_LINK, NVD_LINK, ALPINE_LINK]


def test_same_id_two_packages_kept() -> None:
    items = [legacy_item(package_name="musl"), legacy_item(package_name="musl-utils")]

    assert len(build(items)["vulnerabilities"]) == 2


def test_ten_thousand_findings_deduplicated() -> None:
    # 5,000 distinct triples, each sent twice: first as Low, then with the severity below.
    distinct = 5000
    later_severities = ["Critical", "Negligible", "Medium", "High", "Unknown"]
    first = [legacy_item(vuln=f"CVE-2024-{n:05d}", severity="Low") for n in range(distinct)]
    second = [
        legacy_item(vuln=f"CVE-2024-{n:05d}", severity=later_severities[n % 5], fix=f"3.0.{n}")
        for n in range(distinct)
    ]

    report = build(first + second)
    by_id = {item["id"]: item for item in report["vulnerabilities"]}

    assert len(report["vulnerabilities"]) == distinct
    assert len(by_id) == distinct
    assert by_id["CVE-2024-00000"]["severity"] == "Critical"
    assert by_id["CVE-2024-00001"]["severity"] == "Low"
    assert by_id["CVE-2024-04999"]["fix_version"] == "3.0.4999"
    assert report["severity"] == "Critical"


# --- ordering and overall severity ----------------------------------------------------------


def test_items_sorted_by_severity_then_key() -> None:
    items = [
        legacy_item(vuln="CVE-2024-0003", severity="Low"),
        legacy_item(vuln="CVE-2024-0002", severity="Critical", package_name="zlib"),
        legacy_item(vuln="CVE-2024-0002", severity="Critical", package_name="busybox", package_version="2"),
        legacy_item(vuln="CVE-2024-0002", severity="Critical", package_name="busybox", package_version="1"),
        legacy_item(vuln="CVE-2024-0001", severity="Unknown"),
        legacy_item(vuln="CVE-2024-0009", severity="High"),
    ]

    order = [(item["id"], item["package"], item["version"]) for item in build(items)["vulnerabilities"]]

    assert order == [
        ("CVE-2024-0002", "busybox", "1"),
        ("CVE-2024-0002", "busybox", "2"),
        ("CVE-2024-0002", "zlib", "3.0.1"),
        ("CVE-2024-0009", "openssl", "3.0.1"),
        ("CVE-2024-0003", "openssl", "3.0.1"),
        ("CVE-2024-0001", "openssl", "3.0.1"),
    ]


def test_item_order_ignores_input_order() -> None:
    forward = build(RECORDED_VULNERABILITIES)
    backward = build(list(reversed(RECORDED_VULNERABILITIES)))

    assert forward == backward


@pytest.mark.parametrize(
    ("severities", "expected"),
    [
        (["Low", "Critical", "Medium"], "Critical"),
        (["negligible", "LOW"], "Low"),
        (["Unknown"], "Unknown"),
        (["Important", None], "Unknown"),
        (["Negligible", "Important"], "Negligible"),
    ],
)
def test_overall_severity_is_highest_item(severities: list[Any], expected: str) -> None:
    items = [
        legacy_item(vuln=f"CVE-2024-{n:04d}", severity=severity) for n, severity in enumerate(severities)
    ]

    assert build(items)["severity"] == expected


@pytest.mark.parametrize("items", [[], [None, legacy_item(vuln=5)]], ids=["no_input", "only_unkeyable"])
def test_clean_image_has_no_severity(items: list[Any]) -> None:
    report = build(items)

    assert "severity" not in report
    assert report["vulnerabilities"] == []


# --- envelope -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 31, 10, 0, 0, tzinfo=timezone.utc), "2026-01-31T10:00:00Z"),
        (datetime(2026, 1, 31, 10, 0, 0, 987654, tzinfo=timezone.utc), "2026-01-31T10:00:00Z"),
        (datetime(2026, 1, 31, 12, 30, 5, tzinfo=timezone(timedelta(hours=2))), "2026-01-31T10:30:05Z"),
        (datetime(2026, 1, 1, 0, 15, tzinfo=timezone(timedelta(hours=1))), "2025-12-31T23:15:00Z"),
    ],
    ids=["utc", "microseconds_dropped", "offset_converted", "offset_crosses_year"],
)
def test_generated_at_is_rfc3339_utc(moment: datetime, expected: str) -> None:
    report = build_report([], {}, artifact=ARTIFACT, scanner=SCANNER, generated_at=moment)

    assert report["generated_at"] == expected
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report["generated_at"])


def test_naive_generated_at_rejected() -> None:
    with pytest.raises(ValueError, match="time zone"):
        build_report([], {}, artifact=ARTIFACT, scanner=SCANNER, generated_at=datetime(2026, 1, 31, 10, 0))


def test_artifact_and_scanner_echoed_as_copies() -> None:
    artifact = dict(ARTIFACT)
    scanner = dict(SCANNER)
    report = build_report([], {}, artifact=artifact, scanner=scanner, generated_at=GENERATED_AT)

    artifact["tag"] = "changed"
    scanner["version"] = "changed"

    assert report["artifact"] == ARTIFACT
    assert report["scanner"] == SCANNER


def test_report_is_json_serialisable() -> None:
    report = rich_report()

    assert json.loads(json.dumps(report)) == report


# --- media types ----------------------------------------------------------------------------


def test_v1_1_report_unchanged() -> None:
    report = rich_report()
    original = copy.deepcopy(report)

    assert report_for_media_type(report, REPORT_MEDIA_TYPE_V1_1) == original


def test_v1_0_report_drops_v1_1_item_fields() -> None:
    converted = report_for_media_type(rich_report(), REPORT_MEDIA_TYPE_V1_0)

    for item in converted["vulnerabilities"]:
        assert not {"preferred_cvss", "cwe_ids", "vendor_attributes"} & set(item)


def test_v1_0_report_keeps_other_fields() -> None:
    report = rich_report()
    converted = report_for_media_type(report, REPORT_MEDIA_TYPE_V1_0)
    dropped = {"preferred_cvss", "cwe_ids", "vendor_attributes"}

    assert {key: value for key, value in converted.items() if key != "vulnerabilities"} == {
        key: value for key, value in report.items() if key != "vulnerabilities"
    }
    assert converted["vulnerabilities"] == [
        {key: value for key, value in item.items() if key not in dropped}
        for item in report["vulnerabilities"]
    ]


def test_v1_0_keeps_source_report_intact() -> None:
    report = rich_report()
    original = copy.deepcopy(report)

    report_for_media_type(report, REPORT_MEDIA_TYPE_V1_0)

    assert report == original


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.security.vulnerability.report+json; version=1.1",
        "application/vnd.security.vulnerability.report;version=1.1",
        "application/vnd.scanner.adapter.vuln.report.raw",
        "",
    ],
)
def test_unsupported_media_type_rejected(media_type: str) -> None:
    with pytest.raises(ValueError, match="unsupported report media type"):
        report_for_media_type(rich_report(), media_type)


# --- findings rows --------------------------------------------------------------------------


def test_findings_rows_have_exact_keys() -> None:
    rows = findings_of(rich_report())

    assert rows
    assert all(set(row) == FINDING_KEYS for row in rows)


def test_findings_one_row_per_item() -> None:
    report = build(RECORDED_VULNERABILITIES)

    assert len(findings_of(report)) == len(report["vulnerabilities"])


def test_findings_row_recorded_musl() -> None:
    rows = findings_of(build(RECORDED_VULNERABILITIES))

    assert rows[0] == {
        "vulnerability_id": "CVE-2019-14697",
        "package": "musl",
        "version": "1.1.18-r3",
        "fix_version": "1.1.18-r4",
        "severity": "High",
        "cvss_v3_score": 9.8,
        "cvss_v3_vector": None,
        "cvss_v2_score": 7.5,
        "cvss_v2_vector": None,
    }


def test_findings_row_recorded_apt() -> None:
    rows = findings_of(build(RECORDED_VULNERABILITIES))

    assert rows[-1] == {
        "vulnerability_id": "CVE-2011-3374",
        "package": "apt",
        "version": "1.0",
        "fix_version": None,
        "severity": "Negligible",
        "cvss_v3_score": None,
        "cvss_v3_vector": None,
        "cvss_v2_score": None,
        "cvss_v2_vector": None,
    }


def test_findings_row_carries_vectors() -> None:
    row = findings_of(rich_report())[0]

    assert (row["cvss_v3_score"], row["cvss_v3_vector"], row["cvss_v2_score"], row["cvss_v2_vector"]) == (
        9.8,
        V3_VECTOR,
        7.5,
        V2_VECTOR,
    )


def test_findings_row_nvd_fallback() -> None:
    item = {
        "id": "CVE-2024-0001",
        "package": "openssl",
        "version": "3.0.1",
        "fix_version": "",
        "severity": "High",
        "vendor_attributes": {"CVSS": {"nvd": {"V3Score": 7.5, "V2Vector": V2_VECTOR}}},
    }

    row = findings_of({"vulnerabilities": [item]})[0]

    assert (row["fix_version"], row["cvss_v3_score"], row["cvss_v2_vector"]) == (None, 7.5, V2_VECTOR)


def test_findings_of_clean_report_is_empty() -> None:
    assert findings_of(build([])) == []
