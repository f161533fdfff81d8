"""jobs: one Job row per piece of background work; a run keeps what was asked, its job where it stands

Revision ID: 0030
Revises: 0020
Create Date: 2026-11-26 00:53:07.041788

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0030"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The run columns that move to its job, and their types for the way back.
MOVED = {
    "queue": sqlmodel.sql.sqltypes.AutoString(length=50),
    "status": sa.String(length=9),
    "created_at": sqlmodel.sql.sqltypes.UTCDateTime(),
    "started_at": sqlmodel.sql.sqltypes.UTCDateTime(),
    "finished_at": sqlmodel.sql.sqltypes.UTCDateTime(),
    "heartbeat_at": sqlmodel.sql.sqltypes.UTCDateTime(),
    "worker": sqlmodel.sql.sqltypes.AutoString(length=200),
    "pid": sa.Integer(),
    "task_id": sqlmodel.sql.sqltypes.AutoString(length=100),
    "cancel_requested": sa.Boolean(),
    "exit_code": sa.Integer(),
    "error": sa.Text(),
    "log_tail": sa.Text(),
    "events_seq": sa.Integer(),
}


def upgrade() -> None:
    """Upgrade schema: create job and jobevent, give every existing run a job holding its state."""
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("queue", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column(
            "status",
            sa.Enum("queued", "running", "succeeded", "failed", "cancelled", "lost", name="jobstatus"),
            nullable=False,
        ),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.Column("job_dir", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("log_file", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("marker", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("task_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("worker", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("heartbeat_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("progress_done", sa.Float(), nullable=False),
        sa.Column("progress_total", sa.Float(), nullable=False),
        sa.Column("progress_unit", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("events_seq", sa.Integer(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("log_tail", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_status"), ["status"], unique=False)
        batch_op.create_index("ix_job_status_queue", ["status", "queue"], unique=False)

    op.create_table(
        "jobevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["job.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "seq", name="uq_jobevent_job_seq"),
    )
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_id", sa.Integer(), nullable=True))

    conn = op.get_bind()
    job = sa.table(
        "job",
        *(
            sa.column(name)
            for name in ("kind", "owner_id", "title", "params_json", "job_dir", "log_file", "marker")
        ),
        *(sa.column(name) for name in ("sends", "progress_done", "progress_total", "progress_unit", "stage")),
        *(sa.column(name) for name in MOVED),
    )
    runs = conn.execute(sa.text("SELECT * FROM run ORDER BY id")).mappings().all()
    for run in runs:
        values = {name: run[name] for name in MOVED}
        values["status"] = str(values["status"])
        run_dir = run["run_dir"] or ""
        job_id = conn.execute(
            sa.insert(job)
            .values(
                kind="train",
                owner_id=run["owner_id"],
                title=run["name"],
                params_json="{}",
                job_dir=run_dir,
                log_file=f"{run_dir}/train.log" if run_dir else "",
                marker=f"{run_dir}/run.json" if run_dir else "",
                sends=1,
                progress_done=run["step"],
                progress_total=run["total_steps"],
                progress_unit="steps",
                stage="",
                **values,
            )
            .returning(sa.column("id"))
        ).scalar_one()
        conn.execute(
            sa.text("UPDATE run SET job_id = :job WHERE id = :run"), {"job": job_id, "run": run["id"]}
        )

    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.alter_column("job_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index(batch_op.f("ix_run_status"))
        batch_op.create_unique_constraint("uq_run_job_id", ["job_id"])
        batch_op.create_foreign_key("fk_run_job_id_job", "job", ["job_id"], ["id"])
        for name in (*MOVED, "step", "total_steps"):
            batch_op.drop_column(name)
    if conn.dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS runstatus")


def downgrade() -> None:
    """Downgrade schema: the runs take their state back from their jobs."""
    with op.batch_alter_table("run", schema=None) as batch_op:
        for name, type_ in MOVED.items():
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.add_column(sa.Column("step", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("total_steps", sa.Integer(), nullable=False, server_default="0"))
    for name in MOVED:
        op.execute(f"UPDATE run SET {name} = (SELECT job.{name} FROM job WHERE job.id = run.job_id)")
    op.execute(
        "UPDATE run SET step = (SELECT CAST(job.progress_done AS INTEGER) FROM job WHERE job.id = run.job_id)"
    )
    op.execute(
        "UPDATE run SET total_steps = (SELECT CAST(job.progress_total AS INTEGER) FROM job WHERE job.id = run.job_id)"
    )
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_constraint("fk_run_job_id_job", type_="foreignkey")
        batch_op.drop_constraint("uq_run_job_id", type_="unique")
        batch_op.create_index(batch_op.f("ix_run_status"), ["status"], unique=False)
        batch_op.drop_column("job_id")
    op.drop_table("jobevent")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ix_job_status_queue")
        batch_op.drop_index(batch_op.f("ix_job_status"))
        batch_op.drop_index(batch_op.f("ix_job_owner_id"))
        batch_op.drop_index(batch_op.f("ix_job_kind"))
    op.drop_table("job")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS jobstatus")
