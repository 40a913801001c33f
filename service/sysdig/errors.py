"""Errors raised by the Sysdig Secure client.

    ScannerError
    ├── ImageNotAnalyzed          the image has no vulnerability list yet, or never will
    ├── TransientError
    │   ├── SysdigUnavailable     429, 5xx, timeouts and connection errors, after the in-client retries
    │   └── InvalidSysdigResponse a 2xx response whose body is not the documented JSON
    └── ScanFailed
        └── SysdigRequestRejected any other non-2xx response, such as 400, 401, 403 or an unexpected 404

Messages name the call and the HTTP status. They never contain the API token, a registry
password or a request body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.errors import ScanFailed, ScannerError, TransientError

if TYPE_CHECKING:
    from service.sysdig.client import AnalysisStatus


class ImageNotAnalyzed(ScannerError):
    """Sysdig Secure has no vulnerability list for the image: not found, pending or failed."""

    def __init__(self, message: str, status: AnalysisStatus) -> None:
        super().__init__(message)
        self.status = status


class SysdigUnavailable(TransientError):
    """Sysdig Secure is overloaded or unreachable; `retry_after` is its Retry-After in seconds, if sent."""


class InvalidSysdigResponse(TransientError):
    """A 2xx response whose body is not the expected JSON, as when a proxy returns an HTML page."""


class SysdigRequestRejected(ScanFailed):
    """Sysdig Secure rejected a call for a reason that retrying does not fix."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
