"""indexes for the reads there are: five that no read used go, members by merged_into comes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Every index is one more B-tree page written per event once members outnumber what a
batch shares (about 15 pages an event at 10^6 members on SQLite, each written to the log
and again at the checkpoint). These five served no query: the jobs' selection of due
members ORs next_due and next_review with manual_until and reads the table anyway;
statements now find postings through their entries; nothing looks up lot moves by lot or
postings by account alone.

Reading the members merged into one (statements, tier history, a redemption's pieces)
scanned the members table; a partial index answers it and is never touched by the update
of a member that was not merged.
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_DROPPED = (("members", "ix_members_next_due", ["next_due"]),
            ("members", "ix_members_next_review", ["next_review"]),
            ("postings", "ix_postings_account", ["account"]),
            ("postings", "ix_postings_member_account", ["member_id", "account"]),
            ("lot_moves", "ix_lot_moves_lot_id", ["lot_id"]))
_MERGED = sa.text("merged_into IS NOT NULL")


def upgrade() -> None:
    for table, name, _columns in _DROPPED:
        op.drop_index(name, table_name=table)
    op.create_index("ix_members_merged_into", "members", ["merged_into"], unique=False,
                    sqlite_where=_MERGED, postgresql_where=_MERGED)


def downgrade() -> None:
    op.drop_index("ix_members_merged_into", table_name="members")
    for table, name, columns in _DROPPED:
        op.create_index(name, table, columns, unique=False)
