"""Exception tree of the service.

    ScannerError
    ├── ConfigError          invalid or missing configuration; the process refuses to start
    ├── ClientError          the HTTP client's mistake; carries the status Harbor receives
    ├── TransientError       the step may succeed later; the scan is retried, not failed
    ├── ScanFailed           permanent outcome; its message is stored as the scan's reason
    └── TransitionConflict   a guarded state change matched no row

Messages of every exception here may reach Harbor's scan log or the `scans.last_error`
column, so they never contain a token, a registry credential or a whole report.
"""


class ScannerError(Exception):
    """Base class of every error raised on purpose by this service."""


class ConfigError(ScannerError):
    """A setting is missing or invalid."""


class ClientError(ScannerError):
    """A request from Harbor that the adapter rejects with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TransientError(ScannerError):
    """A failure that may clear up by itself, such as a 429 or a 503 from Sysdig."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ScanFailed(ScannerError):
    """A permanent scan failure; the message becomes the reason Harbor shows."""


class TransitionConflict(ScannerError):
    """A scan was not in the state a transition expected."""

    def __init__(self, scan_id: object, expected: str, target: str) -> None:
        super().__init__(
            f"scan {scan_id} cannot move to {target!r}: it is not in state {expected!r} "
            "(another worker already moved it, or the scan does not exist)"
        )
        self.scan_id = scan_id
        self.expected = expected
        self.target = target
