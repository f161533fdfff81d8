"""The task_type of a sample as one string, and samples per task_type in a version.

A sample stores its task_type as two columns (task_l1, task_l2; level 2 may be
empty); everywhere it is shown, exported or counted it is "l1/l2", or "l1" when
level 2 is empty. Level 1 never contains "/" (the importer and the edit both
split at the first one), so the string names exactly one pair.
"""

from sqlalchemy import text
from sqlmodel import Session

from app.datasets.visibility import VISIBLE_SQL


def task_key(l1: str, l2: str) -> str:
    return f"{l1}/{l2}" if l2 else l1


def version_task_counts(session: Session, *, dataset_id: int, version: int) -> dict[str, int]:
    """Samples per task_type ("l1/l2", or "l1" when level 2 is empty) visible in a version, by a GROUP BY."""
    rows = session.connection().execute(
        text(
            f"SELECT s.task_l1, s.task_l2, COUNT(*) FROM sample s WHERE {VISIBLE_SQL} GROUP BY s.task_l1, s.task_l2"
        ),
        {"dataset_id": dataset_id, "version": version},
    )
    return {task_key(l1, l2): n for l1, l2, n in rows}
