"""An edit as the sample browser's form or the API's body asks for it, applied by versions.edit_version.

The selection is either explicit sample ids or, with scope=query, every sample
the browse filters match; a whole-version edit must be asked for explicitly.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.datasets.browse import BrowseFilters
from app.datasets.versions import EditResult, edit_version


def edit_filters(data: Any) -> BrowseFilters:
    """The browse filters in a form or JSON body (values of any type); ValueError on a bad one."""

    def get(key: str) -> str:
        v = data.get(key)
        return v.strip() if isinstance(v, str) else ("" if v is None else str(v))

    def num(key: str) -> int | None:
        # A bad bound must refuse the edit: ignoring it would widen a bulk drop to more samples.
        v = get(key)
        if not v:
            return None
        if not v.isdigit() or len(v) > 12:
            raise ValueError(f"{key} must be a whole number of characters, not {v[:40]!r}")
        return int(v)

    f = BrowseFilters(
        q=get("q"),
        field=get("field") or "all",
        task=get("task"),
        tag=get("tag"),
        min_chars=num("min_chars"),
        max_chars=num("max_chars"),
        length_of=get("length_of") or "answer",
    )
    f.validate()
    return f


def apply_edit_request(
    session: Session, *, user_id: int, dataset_id: int, number: int, data: Any, ids: list[Any]
) -> EditResult:
    """Makes the new version `data` asks for (action, value, message, scope and filters) from version
    `number`; EditError or ValueError when it cannot. The new version comes back detached."""
    scope = data.get("scope") or "ids"  # a whole-version edit must be asked for explicitly (scope=query)
    # Its own session: a failed edit rolls back without expiring the request's objects (the current user).
    with Session(session.get_bind()) as edit_session:
        filters = edit_filters(data) if scope == "query" else None
        sample_ids = [int(i) for i in ids if str(i).strip().isdigit()]
        result = edit_version(
            edit_session,
            dataset_id=dataset_id,
            base_version=number,
            user_id=user_id,
            action=str(data.get("action") or ""),
            sample_ids=sample_ids,
            filters=filters,
            value=str(data.get("value") or ""),
            message=str(data.get("message") or ""),
        )
        edit_session.expunge(result.version)
        return result
