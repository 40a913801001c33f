"""Data functions on scans. Callers own the session and the transaction; nothing here commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from service.errors import TransitionConflict
from service.persistence.models import Finding, RegistryLease, Scan, ScanEvent, VulnerabilityDatabase
from service.scan import PENDING_STATES, ScanState, check_transition

_NOW = text("now()")


# --- API side (asyncpg) -------------------------------------------------------------------


async def insert_scan(session: AsyncSession, scan: Scan) -> None:
    """Add a new scan in state `submitted` and its first event."""
    scan.state = ScanState.SUBMITTED.value
    session.add(scan)
    await session.flush()
    await session.execute(
        insert(ScanEvent).values(scan_id=scan.id, from_state=None, to_state=ScanState.SUBMITTED.value)
    )


async def find_scan(session: AsyncSession, scan_id: uuid.UUID) -> Scan | None:
    return await session.get(Scan, scan_id)


async def read_database_updated_at(session: AsyncSession, backend: str) -> datetime | None:
    row = await session.get(VulnerabilityDatabase, backend)
    return row.updated_at if row else None


# --- Worker side (psycopg) ----------------------------------------------------------------


def get_scan(session: Session, scan_id: uuid.UUID) -> Scan | None:
    """Read a scan afresh from the database, bypassing the session's identity map."""
    return session.execute(
        select(Scan).where(Scan.id == scan_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()


def transition(
    session: Session,
    scan_id: uuid.UUID,
    source: ScanState,
    target: ScanState,
    reason: str | None = None,
    **values: Any,
) -> None:
    """Move a scan from `source` to `target` with one guarded UPDATE and one event row.

    Raises TransitionConflict when the scan is not in `source`, which is how a second
    worker racing on the same step learns that it lost.
    """
    check_transition(source, target)

    if target is ScanState.FAILED:
        values.setdefault("last_error", reason)
    if target is ScanState.REPORT_READY:
        values.setdefault("last_error", None)  # a retried error no longer describes the scan
    if target in (ScanState.FAILED, ScanState.REPORT_READY):
        values.setdefault("registry_credentials", None)

    moved = session.execute(
        update(Scan)
        .where(Scan.id == scan_id, Scan.state == source.value)
        .values(state=target.value, updated_at=_NOW, **values)
        .returning(Scan.id)
    ).scalar_one_or_none()
    if moved is None:
        raise TransitionConflict(scan_id, source.value, target.value)

    session.execute(
        insert(ScanEvent).values(scan_id=scan_id, from_state=source.value, to_state=target.value, reason=reason)
    )


def record_progress(session: Session, scan_id: uuid.UUID, state: ScanState, **values: Any) -> bool:
    """Mark a scan as still progressing in `state`, so the sweeper leaves it alone.

    Returns False when the scan has left `state` in the meantime.
    """
    touched = session.execute(
        update(Scan)
        .where(Scan.id == scan_id, Scan.state == state.value)
        .values(updated_at=_NOW, attempts=Scan.attempts + 1, **values)
        .returning(Scan.id)
    ).scalar_one_or_none()
    return touched is not None


def insert_findings(session: Session, scan_id: uuid.UUID, findings: Iterable[Mapping[str, Any]]) -> int:
    """Store a report's findings and return how many rows were added.

    A second call for the same scan adds nothing and returns 0.
    """
    rows = [{"scan_id": scan_id, **finding} for finding in findings]
    if not rows:
        return 0
    statement = (
        pg_insert(Finding)
        .on_conflict_do_nothing(index_elements=["scan_id", "vulnerability_id", "package", "version"])
        .returning(Finding.id)
    )
    return len(session.execute(statement, rows).all())


def claim_registry_lease(session: Session, registry_host: str, scan_id: uuid.UUID, ttl: timedelta) -> bool:
    """Take or renew the credential lease of `registry_host` for `scan_id`.

    Succeeds when the host is free, the lease has expired, or `scan_id` already holds it.
    """
    expires_at = text("now() + make_interval(secs => :ttl)").bindparams(ttl=ttl.total_seconds())
    statement = (
        pg_insert(RegistryLease)
        .values(registry_host=registry_host, scan_id=scan_id, expires_at=expires_at)
        .on_conflict_do_update(
            index_elements=["registry_host"],
            set_={"scan_id": scan_id, "expires_at": expires_at},
            where=or_(RegistryLease.expires_at < _NOW, RegistryLease.scan_id == scan_id),
        )
        .returning(RegistryLease.scan_id)
    )
    return session.execute(statement).scalar_one_or_none() == scan_id


def release_registry_lease(session: Session, registry_host: str, scan_id: uuid.UUID) -> None:
    session.execute(
        delete(RegistryLease).where(
            RegistryLease.registry_host == registry_host, RegistryLease.scan_id == scan_id
        )
    )


def claim_stalled_scans(session: Session, stalled_for: timedelta, limit: int = 100) -> Sequence[tuple[uuid.UUID, str]]:
    """Return pending scans with no progress for `stalled_for`, marking them as re-driven.

    SKIP LOCKED plus the `updated_at` bump means concurrent sweepers never pick the same scan.
    """
    cutoff = text("now() - make_interval(secs => :secs)").bindparams(secs=stalled_for.total_seconds())
    stalled = (
        select(Scan.id)
        .where(Scan.state.in_([state.value for state in PENDING_STATES]), Scan.updated_at < cutoff)
        .order_by(Scan.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = session.execute(
        update(Scan).where(Scan.id.in_(stalled)).values(updated_at=_NOW).returning(Scan.id, Scan.state)
    )
    return [(row.id, row.state) for row in rows]


def overdue_scans(session: Session, limit: int = 100) -> Sequence[tuple[uuid.UUID, str]]:
    """Return pending scans whose deadline has passed."""
    rows = session.execute(
        select(Scan.id, Scan.state)
        .where(and_(Scan.state.in_([state.value for state in PENDING_STATES]), Scan.deadline_at < _NOW))
        .order_by(Scan.deadline_at)
        .limit(limit)
    )
    return [(row.id, row.state) for row in rows]


def store_database_updated_at(session: Session, backend: str, updated_at: datetime | None) -> None:
    """Remember the vulnerability database time; an unknown time never erases a known one."""
    statement = pg_insert(VulnerabilityDatabase).values(backend=backend, updated_at=updated_at, checked_at=_NOW)
    new_value = statement.excluded.updated_at if updated_at is not None else VulnerabilityDatabase.updated_at
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["backend"], set_={"updated_at": new_value, "checked_at": _NOW}
        )
    )


def release_leases_of(session: Session, scan_id: uuid.UUID) -> None:
    """Free every registry lease `scan_id` holds, whatever the host."""
    session.execute(delete(RegistryLease).where(RegistryLease.scan_id == scan_id))
