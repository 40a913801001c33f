"""Alembic environment: migrates the database named by DATABASE_URL with psycopg 3."""

import os

from alembic import context
from sqlalchemy import create_engine, pool

from service.config import DEFAULT_DATABASE_URL
from service.persistence.engine import sync_database_url
from service.persistence.models import Base

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    configured = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
    return sync_database_url(configured or DEFAULT_DATABASE_URL)


def run_migrations_offline() -> None:
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
