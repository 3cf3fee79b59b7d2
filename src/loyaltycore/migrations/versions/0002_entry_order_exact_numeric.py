"""entry order within an instant; exact decimals keep their scale on PostgreSQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_DECIMALS = (("events", "amount", True), ("events", "refunded", False),
             ("buckets", "value", False))


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("entry_seq", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "postgresql":
        for table, column, nullable in _DECIMALS:
            op.alter_column(table, column, type_=sa.Numeric(), existing_nullable=nullable)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column, nullable in _DECIMALS:
            op.alter_column(table, column, type_=sa.Numeric(30, 8), existing_nullable=nullable)
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("seq")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("entry_seq")
