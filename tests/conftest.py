"""Shared fixtures: a real PostgreSQL database built by the migrations, and RabbitMQ.

DATABASE_URL and RABBITMQ_URL pick the servers. When DATABASE_URL is unset and no
PostgreSQL accepts connections on 127.0.0.1:5432, an embedded server (pgserver) is started instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from service.cli import upgrade_database
from service.config import Settings
from service.demo.embedded import embedded_postgres

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/%2F"
TEST_QUEUE = f"harbor-scans-test-{uuid.uuid4().hex[:8]}"

# Actors bind their queue when imported; keep test messages off a real deployment's queue.
os.environ.setdefault("BROKER_QUEUE_NAME", TEST_QUEUE)


def _accepts_connections(conninfo: str) -> bool:
    try:
        with psycopg.connect(conninfo, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL maintenance database the tests may create databases in."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        admin = make_url(configured).set(database="postgres").render_as_string(hide_password=False)
        if not _accepts_connections(admin):
            pytest.fail("DATABASE_URL is set but its server refuses connections; start it or unset DATABASE_URL")
        yield admin
        return

    if _accepts_connections(LOCAL_POSTGRES):
        yield LOCAL_POSTGRES
        return

    with embedded_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database for this test session, migrated to head."""
    name = f"harbor_scanner_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    upgrade_database(url)
    try:
        yield url
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def clean_database(database_url: str) -> str:
    """The session database with every table emptied."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        # A connection a previous test leaked inside a transaction would block TRUNCATE
        # forever; fail loudly instead.
        connection.execute("SET lock_timeout = '20s'")
        connection.execute(
            "TRUNCATE scans, scan_events, findings, registry_leases, vulnerability_database CASCADE"
        )
    return database_url


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """URL of a running RabbitMQ; the tests that need one fail (not skip) without it."""
    from actors.broker import broker_ready

    url = os.environ.get("RABBITMQ_URL") or LOCAL_RABBITMQ
    if not broker_ready(url):
        pytest.fail(
            f"RabbitMQ does not answer at {make_url_safe(url)}. Start one: `rabbitmq-server -detached` "
            "(Debian package rabbitmq-server) or `docker compose -f compose/compose.yaml up -d rabbitmq`, "
            "or point RABBITMQ_URL at a running server."
        )
    return url


def make_url_safe(url: str) -> str:
    """`url` with its password hidden, for messages."""
    from service.logs import scrub

    return scrub(url)


@pytest.fixture(scope="session")
def credentials_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def make_settings(clean_database: str, credentials_key: str):
    """Build Settings the way the processes do, from environment variables."""

    def build(**overrides: str) -> Settings:
        environ = {
            "SECURE_URL": "http://127.0.0.1:9",
            "SECURE_API_TOKEN": "test-secure-token-0123456789",
            "DATABASE_URL": clean_database,
            "REGISTRY_CREDENTIALS_KEY": credentials_key,
            "RABBITMQ_URL": LOCAL_RABBITMQ,
        }
        environ.update(overrides)
        return Settings.from_env(environ)

    return build
