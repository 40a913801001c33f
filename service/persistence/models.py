"""SQLAlchemy models of the scan history; Alembic migrations mirror them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.scan import ScanMode, ScanState

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _values(enum: type) -> str:
    return ", ".join(f"'{member.value}'" for member in enum)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Scan(Base):
    """One scan request from Harbor, kept after it ends so history stays complete."""

    __tablename__ = "scans"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    mode: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, default=ScanState.SUBMITTED.value)

    registry_url: Mapped[str] = mapped_column(Text)
    repository: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(Text)
    tag: Mapped[str | None] = mapped_column(Text)
    manifest_media_type: Mapped[str] = mapped_column(Text)
    # Fernet token of Harbor's `registry.authorization`; NULL once the scan no longer needs it.
    registry_credentials: Mapped[bytes | None] = mapped_column(LargeBinary)

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    scanning_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)

    report: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    report_generated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"state IN ({_values(ScanState)})", name="state"),
        CheckConstraint(f"mode IN ({_values(ScanMode)})", name="mode"),
        CheckConstraint(
            "state <> 'report_ready' OR report IS NOT NULL", name="report_ready_has_report"
        ),
        Index(None, "state", "updated_at"),
        Index(None, "digest"),
    )


class ScanEvent(Base):
    """Append-only log of every state a scan entered, written with the transition."""

    __tablename__ = "scan_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    scan_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("scans.id", ondelete="CASCADE")
    )
    from_state: Mapped[str | None] = mapped_column(Text)
    to_state: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index(None, "scan_id", "id"),)


class Finding(Base):
    """One vulnerability of a finished report, so history can be queried in SQL."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    scan_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("scans.id", ondelete="CASCADE")
    )
    vulnerability_id: Mapped[str] = mapped_column(Text)
    package: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(Text)
    fix_version: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    cvss_v3_score: Mapped[float | None] = mapped_column(Float)
    cvss_v3_vector: Mapped[str | None] = mapped_column(Text)
    cvss_v2_score: Mapped[float | None] = mapped_column(Float)
    cvss_v2_vector: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("scan_id", "vulnerability_id", "package", "version"),
        Index(None, "vulnerability_id"),
    )


class RegistryLease(Base):
    """Lease on Sysdig's single credential slot of a registry host.

    Sysdig keeps one credential per registry host, so a scan holds the lease from
    registering its robot credentials until Sysdig has finished pulling the image.
    """

    __tablename__ = "registry_leases"

    registry_host: Mapped[str] = mapped_column(Text, primary_key=True)
    scan_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VulnerabilityDatabase(Base):
    """The newest feed sync time Sysdig reported, shown in Harbor's scanner metadata."""

    __tablename__ = "vulnerability_database"

    backend: Mapped[str] = mapped_column(Text, primary_key=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
