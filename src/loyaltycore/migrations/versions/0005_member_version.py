"""a version on each member row, incremented by every write of it

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

A writing engine keeps the members it wrote in memory between units of work; the
version it reads back (and on PostgreSQL locks) tells it whether anyone else has written
the member since, in which case it loads the member afresh.
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("version", sa.BigInteger(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("version")
