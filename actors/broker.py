"""Broker set-up: RabbitMQ in production, Dramatiq's in-process stub broker for the demo."""

from __future__ import annotations

import logging
import os

import dramatiq
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

logger = logging.getLogger(__name__)

# Tests set BROKER_QUEUE_NAME to keep their messages apart from a running deployment.
QUEUE_NAME = os.environ.get("BROKER_QUEUE_NAME", "harbor-scans")
BROKER_CHECK_TIMEOUT_SECONDS = 2.0


def _middleware() -> list[dramatiq.Middleware]:
    # Prometheus is left out: metrics are the deployment's concern, not every process's.
    return [AgeLimit(), TimeLimit(), ShutdownNotifications(), Callbacks(), Pipelines(), Retries()]


def setup_broker(rabbitmq_url: str | None) -> dramatiq.Broker:
    """Create the process's broker and make it Dramatiq's global one.

    Must run before `actors.scans` is imported, because actors bind to the global broker.
    """
    if rabbitmq_url is None:
        broker: dramatiq.Broker = StubBroker(middleware=_middleware())
        broker.emit_after("process_boot")
    else:
        broker = RabbitmqBroker(url=rabbitmq_url, middleware=_middleware(), confirm_delivery=True)
    dramatiq.set_broker(broker)
    return broker


def broker_ready(rabbitmq_url: str | None) -> bool:
    """Return True when the broker accepts a connection (always, for the stub broker)."""
    if rabbitmq_url is None:
        return True
    parameters = pika.URLParameters(rabbitmq_url)
    parameters.socket_timeout = BROKER_CHECK_TIMEOUT_SECONDS
    parameters.blocked_connection_timeout = BROKER_CHECK_TIMEOUT_SECONDS
    parameters.connection_attempts = 1
    try:
        connection = pika.BlockingConnection(parameters)
    except pika.exceptions.AMQPError as exc:
        logger.warning("RabbitMQ does not accept connections: %s", type(exc).__name__)
        return False
    connection.close()
    return True
