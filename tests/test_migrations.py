"""Alembic owns the schema: it builds it from nothing and matches the models exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from service.cli import upgrade_database
from service.persistence.engine import sync_database_url
from service.persistence.models import Base
from tests.processes import REPOSITORY_ROOT


@pytest.fixture
def empty_database(postgres_server_url):
    name = f"harbor_scanner_migrations_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_models_match_migrations(database_url):
    engine = create_engine(sync_database_url(database_url))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()

    assert differences == [], f"models and migrations differ; add a revision: {differences}"


def test_migrate_command_builds_schema_from_empty_database(empty_database):
    environ = {**os.environ, "DATABASE_URL": empty_database}

    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "migrate"], cwd=REPOSITORY_ROOT, env=environ, capture_output=True, timeout=120
    )

    assert result.returncode == 0, result.stderr.decode()
    with psycopg.connect(empty_database) as connection:
        tables = {row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"scans", "scan_events", "findings", "registry_leases", "vulnerability_database", "alembic_version"} <= tables


def test_migrate_twice_is_a_no_op(empty_database):
    upgrade_database(empty_database)
    upgrade_database(empty_database)

    with psycopg.connect(empty_database) as connection:
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert len(versions) == 1


def test_downgrade_to_base_and_back(empty_database):
    from alembic import command
    from alembic.config import Config

    import migrations

    config = Config()
    config.set_main_option("script_location", os.path.dirname(migrations.__file__))
    config.attributes["database_url"] = empty_database

    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")

    with psycopg.connect(empty_database) as connection:
        assert connection.execute("SELECT count(*) FROM scans").fetchone() == (0,)
