"""Edits that make a new immutable version, and the diff between two versions.

An edit applies to the latest version N only and produces N+1 in one transaction:
dropped rows get `removed_in = N+1`; a retagged or re-typed row is closed the same
way and re-added as a copy whose `origin_id` points back at it, so the diff can
tell "modified" from "removed + added". Sample content never changes in place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import Session

from app.datasets import jobs
from app.datasets.sample_writer import SAMPLE_COLUMNS, insert_sql
from app.datasets.tasks import task_key, version_task_counts
from app.datasets.validate import MAX_TAG, TaskNormaliser, normalise_ws
from app.datasets.visibility import VISIBLE_SQL
from app.models import Dataset, DatasetVersion

log = logging.getLogger("sftlab.versions")

ACTIONS = ("drop", "add_tag", "remove_tag", "set_task_type")
CHUNK = 500
DIFF_PAGE = 100  # samples of each kind (added, removed, modified) per page of a diff


class EditError(ValueError):
    """A request that cannot make a version (stale base version, nothing matched, bad value)."""


@dataclass
class EditResult:
    version: DatasetVersion
    n_changed: int
    n_requested: int


def _chunks(ids: list[int], n: int = CHUNK):
    for i in range(0, len(ids), n):
        yield ids[i : i + n]


def _visible_ids(conn: Connection, dataset_id: int, version: int, ids: list[int]) -> list[int]:
    out: list[int] = []
    for chunk in _chunks(sorted(set(ids))):
        marks = ",".join(str(int(i)) for i in chunk)
        rows = conn.execute(
            text(f"SELECT s.id FROM sample s WHERE {VISIBLE_SQL} AND s.id IN ({marks})"),
            {"dataset_id": dataset_id, "version": version},
        )
        out.extend(r[0] for r in rows)
    return out


def _alloc_ids(conn: Connection, n: int) -> list[int]:
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence('sample', 'id')) FROM generate_series(1, %s)", (n,)
        )
        return [r[0] for r in rows]
    start = int(conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM sample").scalar() or 0) + 1
    return list(range(start, start + n))


def matching_ids(session: Session, *, dataset_id: int, version: int, filters: Any) -> list[int]:
    """The ids the sample browser's filters select (app.datasets.browse does the matching)."""
    from app.datasets.browse import all_matching_ids

    return list(all_matching_ids(session, dataset_id=dataset_id, version=version, filters=filters))


def edit_version(
    session: Session,
    *,
    dataset_id: int,
    base_version: int,
    user_id: int,
    action: str,
    sample_ids: list[int] | None = None,
    filters: Any = None,
    value: str = "",
    message: str = "",
) -> EditResult:
    """Applies one edit to the latest version and commits version N+1; enqueues its indexing."""
    if action not in ACTIONS:
        raise EditError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    ds = session.get(Dataset, dataset_id)
    if ds is None:
        raise LookupError(f"dataset {dataset_id} does not exist")
    if base_version != ds.latest_version:
        raise EditError(
            f"edits apply to the latest version ({ds.latest_version}); version {base_version} is "
            f"older and stays as it is. Open version {ds.latest_version} to edit."
        )
    value = value.strip()
    new_l1 = new_l2 = ""
    if action in ("add_tag", "remove_tag"):
        value = normalise_ws(value)
        if not value or "," in value or len(value) > MAX_TAG:
            raise EditError(f"a tag is 1 to {MAX_TAG} characters without commas")
    elif action == "set_task_type":
        norm = TaskNormaliser().norm(value)
        new_l1, _, new_l2 = norm.partition("/")
        if not new_l1:
            raise EditError("a task_type is 'level1' or 'level1/level2'")
    if filters is not None:
        requested = matching_ids(session, dataset_id=dataset_id, version=base_version, filters=filters)
    else:
        requested = [int(i) for i in sample_ids or []]
    if not requested:
        raise EditError("no samples selected")
    conn = session.connection()
    ids = _visible_ids(conn, dataset_id, base_version, requested)
    if not ids:
        raise EditError(f"none of the selected samples is in version {base_version}")
    new = base_version + 1
    changed = _apply(conn, action, ids, new, value, new_l1, new_l2)
    if not changed:
        raise EditError("nothing to change: the selected samples already look like that")
    prev = session.exec(select_version(dataset_id, base_version)).first()  # type: ignore[call-overload]
    n_prev = prev.n_samples if prev is not None else 0
    n_samples = n_prev - changed if action == "drop" else n_prev
    label = {
        "drop": f"dropped {changed} samples",
        "add_tag": f"tag '{value}' added to {changed} samples",
        "remove_tag": f"tag '{value}' removed from {changed} samples",
        "set_task_type": f"task_type set to '{task_key(new_l1, new_l2)}' on {changed} samples",
    }[action]
    version = DatasetVersion(
        dataset_id=dataset_id,
        number=new,
        message=(message or label)[:500],
        created_by=user_id,
        n_samples=n_samples,
    )
    ds.latest_version = new
    session.add_all([ds, version])
    session.flush()
    counts = version_task_counts(session, dataset_id=dataset_id, version=new)
    version.import_report_json = orjson.dumps(
        {
            "edit": {"action": action, "value": value, "changed": changed, "requested": len(requested)},
            "task_counts": counts,
        }
    ).decode()
    session.add(version)
    session.commit()
    session.refresh(version)
    jobs.enqueue_index(version.id)  # type: ignore[arg-type]
    return EditResult(version=version, n_changed=changed, n_requested=len(requested))


def select_version(dataset_id: int, number: int):  # noqa: ANN201
    from sqlmodel import select

    return select(DatasetVersion).where(
        DatasetVersion.dataset_id == dataset_id, DatasetVersion.number == number
    )


def _apply(conn: Connection, action: str, ids: list[int], new: int, value: str, l1: str, l2: str) -> int:
    if action == "drop":
        for chunk in _chunks(ids):
            conn.exec_driver_sql(
                f"UPDATE sample SET removed_in = {new} WHERE id IN ({','.join(map(str, chunk))})"
            )
        return len(ids)
    insert_sample = insert_sql(conn, "sample", SAMPLE_COLUMNS)
    insert_tag = insert_sql(conn, "sampletag", ("sample_id", "tag"))
    changed = 0
    cols = ", ".join(SAMPLE_COLUMNS)
    for chunk in _chunks(ids):
        rows = conn.exec_driver_sql(
            f"SELECT {cols} FROM sample WHERE id IN ({','.join(map(str, chunk))})"
        ).all()
        updates = []
        for r in rows:
            rec = dict(zip(SAMPLE_COLUMNS, r, strict=True))
            tags = [t for t in rec["tags"].split(",") if t]
            if action == "add_tag":
                if value in tags:
                    continue
                tags = sorted({*tags, value})
            elif action == "remove_tag":
                if value not in tags:
                    continue
                tags = [t for t in tags if t != value]
            else:
                if (rec["task_l1"], rec["task_l2"]) == (l1, l2):
                    continue
                rec["task_l1"], rec["task_l2"] = l1, l2
            rec["tags"] = ",".join(tags)
            rec["origin_id"], rec["added_in"], rec["removed_in"] = rec["id"], new, None
            updates.append(rec)
        if not updates:
            continue
        old = ",".join(str(u["origin_id"]) for u in updates)
        conn.exec_driver_sql(f"UPDATE sample SET removed_in = {new} WHERE id IN ({old})")
        new_ids = _alloc_ids(conn, len(updates))
        tag_rows: list[tuple[int, str]] = []
        for rec, nid in zip(updates, new_ids, strict=True):
            rec["id"] = nid
            tag_rows.extend((nid, t) for t in rec["tags"].split(",") if t)
        conn.exec_driver_sql(insert_sample, [tuple(rec[c] for c in SAMPLE_COLUMNS) for rec in updates])
        if tag_rows:
            conn.exec_driver_sql(insert_tag, tag_rows)
        changed += len(updates)
    return changed


# --- diff --------------------------------------------------------------------------------------


def diff_versions(
    session: Session, *, dataset_id: int, a: int, b: int, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    """What changed from version a to version b (a < b; swapped otherwise): samples added, removed and
    modified (matched through origin_id), and samples per task_type in both with the delta."""
    ds = session.get(Dataset, dataset_id)
    if ds is None:
        raise LookupError(f"dataset {dataset_id} does not exist")
    for n in (a, b):
        if not 1 <= n <= ds.latest_version:
            raise EditError(f"version {n} does not exist (versions 1 to {ds.latest_version})")
    if a > b:
        a, b = b, a
    conn = session.connection()
    p = {"d": dataset_id, "a": a, "b": b}
    added = {
        r[0]: r[1]
        for r in conn.execute(
            text(
                "SELECT id, origin_id FROM sample WHERE dataset_id = :d AND added_in > :a AND added_in <= :b "
                "AND (removed_in IS NULL OR removed_in > :b)"
            ),
            p,
        )
    }
    removed = {
        r[0]
        for r in conn.execute(
            text(
                "SELECT id FROM sample WHERE dataset_id = :d AND added_in <= :a AND removed_in > :a AND removed_in <= :b"
            ),
            p,
        )
    }
    between = {
        r[0]: r[1]
        for r in conn.execute(
            text(
                "SELECT id, origin_id FROM sample WHERE dataset_id = :d AND added_in > :a AND added_in <= :b "
                "AND removed_in <= :b AND origin_id IS NOT NULL"
            ),
            p,
        )
    }
    modified: list[tuple[int, int]] = []  # (old id visible in a, new id visible in b)
    for new_id, origin in added.items():
        while origin is not None and origin in between:
            origin = between[origin]
        if origin is not None and origin in removed:
            modified.append((origin, new_id))
    mod_new = {n for _, n in modified}
    mod_old = {o for o, _ in modified}
    only_added = sorted(i for i in added if i not in mod_new)
    only_removed = sorted(i for i in removed if i not in mod_old)
    modified.sort(key=lambda p: p[1])
    ca = version_task_counts(session, dataset_id=dataset_id, version=a)
    cb = version_task_counts(session, dataset_id=dataset_id, version=b)
    tasks = [
        {"task_type": t, "a": ca.get(t, 0), "b": cb.get(t, 0), "delta": cb.get(t, 0) - ca.get(t, 0)}
        for t in sorted(set(ca) | set(cb))
    ]
    tasks.sort(key=lambda r: (-abs(r["delta"]), r["task_type"]))  # type: ignore[arg-type,union-attr,attr-defined]
    page_added = only_added[offset : offset + limit]
    page_removed = only_removed[offset : offset + limit]
    page_mod = modified[offset : offset + limit]
    details = _rows(conn, page_added + page_removed + [i for pair in page_mod for i in pair])
    return {
        "dataset_id": dataset_id,
        "a": a,
        "b": b,
        "n_added": len(only_added),
        "n_removed": len(only_removed),
        "n_modified": len(modified),
        "n_a": sum(ca.values()),
        "n_b": sum(cb.values()),
        "task_types": tasks,
        "added": [details[i] for i in page_added],
        "removed": [details[i] for i in page_removed],
        "modified": [{"before": details[o], "after": details[n]} for o, n in page_mod],
        "offset": offset,
        "limit": limit,
    }


def diff_versions_page(session: Session, *, dataset_id: int, a: int, b: int, page: int) -> dict[str, Any]:
    """Page `page` of the diff (counted from 1; lower means 1): DIFF_PAGE samples of each kind."""
    offset = (max(page, 1) - 1) * DIFF_PAGE
    return diff_versions(session, dataset_id=dataset_id, a=a, b=b, limit=DIFF_PAGE, offset=offset)


def _rows(conn: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(ids))):
        rows = conn.exec_driver_sql(
            "SELECT id, line_no, substr(prompt, 1, 160), substr(answer, 1, 80), task_l1, task_l2, tags FROM sample "
            f"WHERE id IN ({','.join(map(str, chunk))})"
        )
        for sid, line_no, prompt, answer, l1, l2, tags in rows:
            out[sid] = {
                "id": sid,
                "line_no": line_no,
                "prompt": prompt,
                "answer": answer,
                "task_type": task_key(l1, l2),
                "tags": [t for t in tags.split(",") if t],
            }
    return out
