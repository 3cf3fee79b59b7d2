"""holds at a till: the reservations table and each member's reserved balance

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel

import loyaltycore.tables

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("reserved", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    op.create_table(
        "reservations",
        sa.Column("member_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("line", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("at", loyaltycore.tables.Timestamp(length=32), nullable=False),
        sa.Column("expires_at", loyaltycore.tables.Timestamp(length=32), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("captured", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", loyaltycore.tables.Timestamp(length=32), nullable=True),
        sa.Column("closed_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.PrimaryKeyConstraint("member_id", "event_id"),
    )
    with op.batch_alter_table("reservations") as batch:
        batch.create_index("ix_reservations_member_status", ["member_id", "status"],
                           unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reservations") as batch:
        batch.drop_index("ix_reservations_member_status")
    op.drop_table("reservations")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("reserved")
