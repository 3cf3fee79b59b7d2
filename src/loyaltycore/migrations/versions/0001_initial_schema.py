"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel

import loyaltycore.tables


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('activity',
    sa.Column('member_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('line', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('member_id', 'month', 'line')
    )
    op.create_table('buckets',
    sa.Column('member_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('credit', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', loyaltycore.tables.Exact(length=64), nullable=False),
    sa.PrimaryKeyConstraint('member_id', 'month', 'credit')
    )
    op.create_table('counters',
    sa.Column('member_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('member_id', 'name', 'period')
    )
    op.create_table('entries',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('member_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('at', loyaltycore.tables.Timestamp(length=32), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('corrects', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('memo', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index('ix_entries_member_at', ['member_id', 'at'], unique=False)

    op.create_table('events',
    sa.Column('member_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('line', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('occurred_at', loyaltycore.tables.Timestamp(length=32), nullable=False),
    sa.Column('processed_at', loyaltycore.tables.Timestamp(length=32), nullable=False),
    sa.Column('amount', loyaltycore.tables.Exact(length=64), nullable=True),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('refunded', loyaltycore.tables.Exact(length=64), nullable=False),
    sa.Column('reversed', sa.BigInteger(), nullable=False),
    sa.Column('refundable', sa.Boolean(), nullable=False),
    sa.Column('receipt', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('member_id', 'event_id')
    )
    op.create_table('grants',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('member_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('right', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('line', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('granted_at', loyaltycore.tables.Timestamp(length=32), nullable=False),
    sa.Column('valid_until', loyaltycore.tables.Timestamp(length=32), nullable=True),
    sa.Column('remaining', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('source_event', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index('ix_grants_member_status', ['member_id', 'status'], unique=False)

    op.create_table('identities',
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('member_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('linked_at', loyaltycore.tables.Timestamp(length=32), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'digest')
    )
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identities_member_id'), ['member_id'], unique=False)

    op.create_table('lot_moves',
    sa.Column('entry_id', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('lot_id', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('to_line', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('at', loyaltycore.tables.Timestamp(length=32), nullable=False),
    sa.PrimaryKeyConstraint('entry_id', 'seq')
    )
    with op.batch_alter_table('lot_moves', schema=None) as batch_op:
        batch_op.create_index('ix_lot_moves_kind_at', ['kind', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lot_moves_lot_id'), ['lot_id'], unique=False)

    op.create_table('lots',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('member_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('line', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('earned_at', loyaltycore.tables.Timestamp(length=32), nullable=False),
    sa.Column('available_from', loyaltycore.tables.Timestamp(length=32), nullable=True),
    sa.Column('vests_on', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('expires_at', loyaltycore.tables.Timestamp(length=32), nullable=True),
    sa.Column('source_event', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('entry_id', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.create_index('ix_lots_member_status', ['member_id', 'status'], unique=False)

    op.create_table('members',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('tier', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('tier_since', loyaltycore.tables.Timestamp(length=32), nullable=True),
    sa.Column('manual_until', loyaltycore.tables.Timestamp(length=32), nullable=True),
    sa.Column('manual_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('birth_month', sa.Integer(), nullable=True),
    sa.Column('enrolled_on', sa.Date(), nullable=True),
    sa.Column('available', sa.BigInteger(), nullable=False),
    sa.Column('pending', sa.BigInteger(), nullable=False),
    sa.Column('debt', sa.BigInteger(), nullable=False),
    sa.Column('has_events', sa.Boolean(), nullable=False),
    sa.Column('last_activity', loyaltycore.tables.Timestamp(length=32), nullable=True),
    sa.Column('inactive_at', loyaltycore.tables.Timestamp(length=32), nullable=True),
    sa.Column('next_due', loyaltycore.tables.Timestamp(length=32), nullable=True),
    sa.Column('reviewed_to', sa.Date(), nullable=True),
    sa.Column('next_review', sa.Date(), nullable=True),
    sa.Column('merged_into', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_members_next_due'), ['next_due'], unique=False)
        batch_op.create_index(batch_op.f('ix_members_next_review'), ['next_review'], unique=False)

    op.create_table('merges',
    sa.Column('absorbed', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('survivor', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('at', loyaltycore.tables.Timestamp(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('available', sa.BigInteger(), nullable=False),
    sa.Column('pending', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('absorbed')
    )
    with op.batch_alter_table('merges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merges_survivor'), ['survivor'], unique=False)

    op.create_table('postings',
    sa.Column('entry_id', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('member_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('entry_id', 'seq')
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_postings_account'), ['account'], unique=False)
        batch_op.create_index('ix_postings_member_account', ['member_id', 'account'], unique=False)

    op.create_table('rejects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('line_no', sa.Integer(), nullable=True),
    sa.Column('member_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=True),
    sa.Column('at', loyaltycore.tables.Timestamp(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('right_uses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('right', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('line', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('at', loyaltycore.tables.Timestamp(length=32), nullable=False),
    sa.Column('grant_id', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('right_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_right_uses_member_id'), ['member_id'], unique=False)

    op.create_table('tier_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('at', loyaltycore.tables.Timestamp(length=32), nullable=False),
    sa.Column('from_tier', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('to_tier', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('valid_until', loyaltycore.tables.Timestamp(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tier_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tier_history_member_id'), ['member_id'], unique=False)




def downgrade() -> None:
    
    with op.batch_alter_table('tier_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tier_history_member_id'))

    op.drop_table('tier_history')
    with op.batch_alter_table('right_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_right_uses_member_id'))

    op.drop_table('right_uses')
    op.drop_table('rejects')
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.drop_index('ix_postings_member_account')
        batch_op.drop_index(batch_op.f('ix_postings_account'))

    op.drop_table('postings')
    with op.batch_alter_table('merges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merges_survivor'))

    op.drop_table('merges')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_members_next_review'))
        batch_op.drop_index(batch_op.f('ix_members_next_due'))

    op.drop_table('members')
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_index('ix_lots_member_status')

    op.drop_table('lots')
    with op.batch_alter_table('lot_moves', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lot_moves_lot_id'))
        batch_op.drop_index('ix_lot_moves_kind_at')

    op.drop_table('lot_moves')
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identities_member_id'))

    op.drop_table('identities')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index('ix_grants_member_status')

    op.drop_table('grants')
    op.drop_table('events')
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index('ix_entries_member_at')

    op.drop_table('entries')
    op.drop_table('counters')
    op.drop_table('buckets')
    op.drop_table('activity')

