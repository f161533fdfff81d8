"""worker presence: live workers and the queues they serve

Revision ID: 0041
Revises: 0040
Create Date: 2026-11-26 01:43:23.598876

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0041"
down_revision: str | Sequence[str] | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "workerpresence",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("hostname", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("queues", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("workerpresence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workerpresence_seen_at"), ["seen_at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("workerpresence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workerpresence_seen_at"))

    op.drop_table("workerpresence")
