"""Logging set-up: one line per record, the current scan id on every line, secrets scrubbed."""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

_scan_id: contextvars.ContextVar[str] = contextvars.ContextVar("scan_id", default="-")

# Last line of defence: credentials must never be logged in the first place.
_SECRET_PATTERNS = (
    re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"(?i)(\"?(?:registry_pass|password|api_token|token|authorization)\"?\s*[:=]\s*)(\"[^\"]*\"|\S+)"),
    re.compile(r"(amqp|postgresql|postgres)(\+\w+)?://([^:/@\s]+):[^@\s]+@"),
)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s scan_id=%(scan_id)s %(message)s"


@contextmanager
def scan_context(scan_id: object) -> Iterator[None]:
    """Tag every log line written inside the block with `scan_id`."""
    token = _scan_id.set(str(scan_id))
    try:
        yield
    finally:
        _scan_id.reset(token)


def scrub(text: str) -> str:
    """Replace anything that looks like a credential in `text` with `[redacted]`."""
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)} [redacted]", text)
    text = _SECRET_PATTERNS[1].sub(lambda m: f"{m.group(1)}[redacted]", text)
    return _SECRET_PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2) or ''}://{m.group(3)}:[redacted]@", text)


class ScanContextFilter(logging.Filter):
    """Add `scan_id` to each record and scrub credentials from its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "scan_id"):
            record.scan_id = _scan_id.get()
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str = "INFO") -> None:
    """Route every logger to stderr in one format; idempotent."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if getattr(handler, "_harbor_scanner", False):
            return

    handler = logging.StreamHandler()
    handler._harbor_scanner = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(ScanContextFilter())
    root.addHandler(handler)

    # pika logs every connection step, and logs a connection that RabbitMQ dropped for missed
    # heartbeats (an idle publisher) as ERROR with a traceback, although Dramatiq then
    # reconnects and retries. Dramatiq logs the failures that remain.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    # httpx logs every request URL at INFO; the Sysdig client logs the calls that matter.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
