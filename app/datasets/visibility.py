"""Which sample rows belong to a version (see app.models.datasets for the scheme)."""

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from app.models import Sample

VISIBLE_SQL = "s.dataset_id = :dataset_id AND s.added_in <= :version AND (s.removed_in IS NULL OR s.removed_in > :version)"
"""The same condition in raw SQL, for queries that alias the sample table as `s` and bind :dataset_id and :version."""


def visible_in(dataset_id: int, version: int) -> ColumnElement[bool]:
    return and_(
        col(Sample.dataset_id) == dataset_id,
        col(Sample.added_in) <= version,
        or_(col(Sample.removed_in).is_(None), col(Sample.removed_in) > version),
    )
