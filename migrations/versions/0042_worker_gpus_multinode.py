"""worker GPUs and multi-node runs: what each worker reports, and a run's hostfile

Revision ID: 0042
Revises: 0041
Create Date: 2026-11-26 06:40:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0042"
down_revision: str | Sequence[str] | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("workerpresence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gpu_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column(
                "gpu_names", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False, server_default=""
            )
        )
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("num_nodes", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(
            sa.Column(
                "hostfile", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False, server_default=""
            )
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("hostfile")
        batch_op.drop_column("num_nodes")
    with op.batch_alter_table("workerpresence", schema=None) as batch_op:
        batch_op.drop_column("gpu_names")
        batch_op.drop_column("gpu_count")
