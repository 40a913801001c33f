"""Client for Sysdig Secure's legacy scanning API, which backend-mode scans use."""

from service.sysdig.client import AnalysisStatus, SecureClient
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
