"""judge dimensions: a judge configuration scores AlignBench's dimensions or the task's rubric

Revision ID: 0047
Revises: 0046
Create Date: 2026-11-26 11:20:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0047"
down_revision: str | Sequence[str] | None = "0046"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema: existing judges keep scoring AlignBench's dimensions."""
    with op.batch_alter_table("judgeconfig") as batch:
        batch.add_column(
            sa.Column(
                "dimensions",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="alignbench",
            )
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("judgeconfig") as batch:
        batch.drop_column("dimensions")
