"""The scan domain: states, allowed transitions and scanning modes."""

from __future__ import annotations

from enum import StrEnum


class ScanState(StrEnum):
    SUBMITTED = "submitted"  # stored by the API, no Sysdig call made yet
    SCANNING = "scanning"  # Sysdig (or an inline Job) is analysing the image
    REPORT_READY = "report_ready"  # report and findings are stored; terminal
    FAILED = "failed"  # last_error contains the reason; terminal


# Every state change the service may make. A guarded UPDATE enforces the source state.
TRANSITIONS: dict[ScanState, frozenset[ScanState]] = {
    ScanState.SUBMITTED: frozenset({ScanState.SCANNING, ScanState.FAILED}),
    ScanState.SCANNING: frozenset({ScanState.REPORT_READY, ScanState.FAILED}),
    ScanState.REPORT_READY: frozenset(),
    ScanState.FAILED: frozenset(),
}

PENDING_STATES = frozenset({ScanState.SUBMITTED, ScanState.SCANNING})
TERMINAL_STATES = frozenset(state for state, targets in TRANSITIONS.items() if not targets)


class ScanMode(StrEnum):
    BACKEND = "backend"  # Sysdig's backend pulls and analyses the image
    INLINE = "inline"  # a Kubernetes Job analyses the image in the cluster


def check_transition(source: ScanState, target: ScanState) -> None:
    """Raise ValueError when `source` may not move to `target`."""
    if target not in TRANSITIONS[source]:
        allowed = ", ".join(sorted(TRANSITIONS[source])) or "nothing (terminal state)"
        raise ValueError(f"transition {source} -> {target} is not allowed; {source} may move to {allowed}")


def scanner_identity() -> dict[str, str]:
    """Return the `scanner` object shown in Harbor's metadata and reports."""
    from service import __version__

    return {"name": "Sysdig Secure", "vendor": "Sysdig", "version": __version__}
