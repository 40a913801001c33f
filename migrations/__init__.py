"""Alembic migrations of the scan database."""
