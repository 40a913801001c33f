"""Process set-up shared by the worker command and the in-process demo worker."""

from __future__ import annotations

import dramatiq

from actors import runtime
from actors.broker import setup_broker
from actors.maintenance import Maintenance
from service.config import Settings
from service.logs import setup_logging


def bootstrap(settings: Settings, rabbitmq_url: str | None) -> dramatiq.Broker:
    """Set up logging, the broker, the actors and the maintenance thread for this process."""
    setup_logging(settings.log_level)
    broker = setup_broker(rabbitmq_url)
    broker.add_middleware(Maintenance())
    runtime.configure(settings)

    import actors.scans  # noqa: F401 - registers the actors on the broker set up above

    return broker
