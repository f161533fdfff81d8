"""dataset jobs: an import and a version's index build each refer to a Job, which holds where they stand

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-26 01:07:38.875197

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0031"
down_revision: str | Sequence[str] | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


IMPORT_STATUS = {  # ImportJob.status -> (Job.status, ImportJob.outcome)
    "queued": ("queued", ""),
    "running": ("running", ""),
    "succeeded": ("succeeded", "imported"),
    "rejected": ("failed", "rejected"),
    "validated": ("succeeded", "validated"),
    "failed": ("failed", ""),
}
# An interrupted index build is queued again: the worker's doorbell sends it, and the build resumes.
VERSION_STATUS = {"ready": "succeeded", "failed": "failed", "indexing": "queued"}


def _job(conn, values: dict) -> int:  # noqa: ANN001
    job = sa.table("job", *(sa.column(name) for name in values))
    return conn.execute(sa.insert(job).values(**values).returning(sa.column("id"))).scalar_one()


def _defaults(**values: object) -> dict:
    base = {
        "owner_id": None,
        "title": "",
        "queue": "default",
        "params_json": "{}",
        "job_dir": "",
        "log_file": "",
        "marker": "",
        "task_id": "",
        "sends": 1,
        "worker": "",
        "cancel_requested": False,
        "progress_done": 0.0,
        "progress_total": 1.0,
        "progress_unit": "",
        "stage": "",
        "events_seq": 0,
        "error": "",
        "log_tail": "",
    }
    return base | values


def upgrade() -> None:
    """Upgrade schema: every import and every version gets a job carrying its state."""
    with op.batch_alter_table("datasetversion", schema=None) as batch_op:
        batch_op.add_column(sa.Column("index_job_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("importjob", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "outcome", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default=""
            )
        )

    conn = op.get_bind()
    for imp in conn.execute(sa.text("SELECT * FROM importjob ORDER BY id")).mappings().all():
        status, outcome = IMPORT_STATUS.get(str(imp["status"]), ("failed", ""))
        job_id = _job(
            conn,
            _defaults(
                kind="import",
                owner_id=imp["owner_id"],
                title=f"import #{imp['upload_id']}",
                status=status,
                progress_done=float(imp["progress"] or 0.0),
                error=imp["error"] or "",
                created_at=imp["created_at"],
            ),
        )
        conn.execute(
            sa.text("UPDATE importjob SET job_id = :j, outcome = :o WHERE id = :i"),
            {"j": job_id, "o": outcome, "i": imp["id"]},
        )
    for v in conn.execute(sa.text("SELECT * FROM datasetversion ORDER BY id")).mappings().all():
        job_id = _job(
            conn,
            _defaults(
                kind="index",
                owner_id=v["created_by"],
                title=f"index #{v['dataset_id']} v{v['number']}",
                status=VERSION_STATUS.get(str(v["status"]), "queued"),
                params_json=f'{{"version_id": {v["id"]}}}',
                progress_done=float(v["progress"] or 0.0),
                stage=v["stage"] or "",
                error=v["error"] or "",
                created_at=v["created_at"],
            ),
        )
        conn.execute(
            sa.text("UPDATE datasetversion SET index_job_id = :j WHERE id = :i"), {"j": job_id, "i": v["id"]}
        )

    with op.batch_alter_table("datasetversion", schema=None) as batch_op:
        batch_op.create_foreign_key("fk_datasetversion_index_job_id_job", "job", ["index_job_id"], ["id"])
        for name in ("progress", "status", "stage", "error"):
            batch_op.drop_column(name)
    with op.batch_alter_table("importjob", schema=None) as batch_op:
        batch_op.alter_column("job_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column(
            "outcome", existing_type=sqlmodel.sql.sqltypes.AutoString(length=20), server_default=None
        )
        batch_op.create_unique_constraint("uq_importjob_job_id", ["job_id"])
        batch_op.create_foreign_key("fk_importjob_job_id_job", "job", ["job_id"], ["id"])
        for name in ("created_at", "progress", "status", "error"):
            batch_op.drop_column(name)
    if conn.dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS versionstatus")


def downgrade() -> None:
    """Downgrade schema: imports and versions take their state back from their jobs."""
    with op.batch_alter_table("importjob", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), nullable=False, server_default="queued")
        )
        batch_op.add_column(sa.Column("progress", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE importjob SET status = COALESCE(NULLIF(outcome, ''), (SELECT CAST(job.status AS VARCHAR) "
        "FROM job WHERE job.id = importjob.job_id)), error = (SELECT job.error FROM job WHERE job.id = "
        "importjob.job_id), created_at = (SELECT job.created_at FROM job WHERE job.id = importjob.job_id)"
    )
    op.execute("UPDATE importjob SET status = 'succeeded' WHERE status = 'imported'")
    with op.batch_alter_table("importjob", schema=None) as batch_op:
        batch_op.drop_constraint("fk_importjob_job_id_job", type_="foreignkey")
        batch_op.drop_constraint("uq_importjob_job_id", type_="unique")
        batch_op.drop_column("outcome")
        batch_op.drop_column("job_id")
    with op.batch_alter_table("datasetversion", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("stage", sa.String(length=100), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("status", sa.String(length=8), nullable=False, server_default="indexing")
        )
        batch_op.add_column(sa.Column("progress", sa.Float(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE datasetversion SET status = (SELECT CASE CAST(job.status AS VARCHAR) WHEN 'succeeded' THEN "
        "'ready' WHEN 'queued' THEN 'indexing' WHEN 'running' THEN 'indexing' ELSE 'failed' END FROM job "
        "WHERE job.id = datasetversion.index_job_id) WHERE index_job_id IS NOT NULL"
    )
    with op.batch_alter_table("datasetversion", schema=None) as batch_op:
        batch_op.drop_constraint("fk_datasetversion_index_job_id_job", type_="foreignkey")
        batch_op.drop_column("index_job_id")
    op.execute("DELETE FROM job WHERE kind IN ('import', 'index')")
