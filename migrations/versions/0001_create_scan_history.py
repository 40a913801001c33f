"""Create the scan history tables

Revision ID: 0001
Revises: 
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('registry_leases',
    sa.Column('registry_host', sa.Text(), nullable=False),
    sa.Column('scan_id', sa.UUID(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('registry_host', name=op.f('pk_registry_leases'))
    )
    op.create_table('scans',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('mode', sa.Text(), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('registry_url', sa.Text(), nullable=False),
    sa.Column('repository', sa.Text(), nullable=False),
    sa.Column('digest', sa.Text(), nullable=False),
    sa.Column('tag', sa.Text(), nullable=True),
    sa.Column('manifest_media_type', sa.Text(), nullable=False),
    sa.Column('registry_credentials', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('scanning_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('report', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('report_generated_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("mode IN ('backend', 'inline')", name=op.f('ck_scans_mode')),
    sa.CheckConstraint("state <> 'report_ready' OR report IS NOT NULL", name=op.f('ck_scans_report_ready_has_report')),
    sa.CheckConstraint("state IN ('submitted', 'scanning', 'report_ready', 'failed')", name=op.f('ck_scans_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scans'))
    )
    op.create_index(op.f('ix_scans_digest'), 'scans', ['digest'], unique=False)
    op.create_index(op.f('ix_scans_state_updated_at'), 'scans', ['state', 'updated_at'], unique=False)
    op.create_table('vulnerability_database',
    sa.Column('backend', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('backend', name=op.f('pk_vulnerability_database'))
    )
    op.create_table('findings',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('scan_id', sa.UUID(), nullable=False),
    sa.Column('vulnerability_id', sa.Text(), nullable=False),
    sa.Column('package', sa.Text(), nullable=False),
    sa.Column('version', sa.Text(), nullable=False),
    sa.Column('fix_version', sa.Text(), nullable=True),
    sa.Column('severity', sa.Text(), nullable=False),
    sa.Column('cvss_v3_score', sa.Float(), nullable=True),
    sa.Column('cvss_v3_vector', sa.Text(), nullable=True),
    sa.Column('cvss_v2_score', sa.Float(), nullable=True),
    sa.Column('cvss_v2_vector', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['scan_id'], ['scans.id'], name=op.f('fk_findings_scan_id_scans'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_findings')),
    sa.UniqueConstraint('scan_id', 'vulnerability_id', 'package', 'version', name=op.f('uq_findings_scan_id_vulnerability_id_package_version'))
    )
    op.create_index(op.f('ix_findings_vulnerability_id'), 'findings', ['vulnerability_id'], unique=False)
    op.create_table('scan_events',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('scan_id', sa.UUID(), nullable=False),
    sa.Column('from_state', sa.Text(), nullable=True),
    sa.Column('to_state', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['scan_id'], ['scans.id'], name=op.f('fk_scan_events_scan_id_scans'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scan_events'))
    )
    op.create_index(op.f('ix_scan_events_scan_id_id'), 'scan_events', ['scan_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_scan_events_scan_id_id'), table_name='scan_events')
    op.drop_table('scan_events')
    op.drop_index(op.f('ix_findings_vulnerability_id'), table_name='findings')
    op.drop_table('findings')
    op.drop_table('vulnerability_database')
    op.drop_index(op.f('ix_scans_state_updated_at'), table_name='scans')
    op.drop_index(op.f('ix_scans_digest'), table_name='scans')
    op.drop_table('scans')
    op.drop_table('registry_leases')
