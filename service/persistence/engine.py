"""Engines for the two drivers: asyncpg in the API, psycopg 3 in the actors."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

from service.errors import ConfigError


def _with_driver(database_url: str, driver: str) -> str:
    try:
        url = make_url(database_url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with the raw URL in it
        raise ConfigError("DATABASE_URL is not a valid URL; use postgresql://USER@HOST:PORT/DATABASE") from exc
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"DATABASE_URL uses {url.get_backend_name()!r}; only postgresql:// is supported")
    return url.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def sync_database_url(database_url: str) -> str:
    """Return `database_url` rewritten for psycopg 3."""
    return _with_driver(database_url, "psycopg")


def async_database_url(database_url: str) -> str:
    """Return `database_url` rewritten for asyncpg."""
    return _with_driver(database_url, "asyncpg")


def create_sync_engine(database_url: str, pool_size: int = 5) -> Engine:
    """Create the actors' engine; one per worker process."""
    return create_engine(
        sync_database_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )


def create_api_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    """Create the API's engine; one per Sanic worker process."""
    return create_async_engine(
        async_database_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )


def sync_sessions(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def async_sessions(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)
