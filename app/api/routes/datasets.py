"""Datasets and their versions: list, dataset page, diff, edits (new versions), export; pages and JSON twins."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import RedirectResponse, StreamingResponse
from sqlmodel import Session, select

from app.api.deps import Researcher, SessionDep, SettingsDep
from app.core.db import get_engine
from app.datasets.export import export_filename, iter_export
from app.datasets.versions import EditError, diff_versions, edit_version
from app.models import Dataset, DatasetVersion, ImportJob, User
from app.web import render

router = APIRouter()
SORTS = {"name", "kind", "versions", "samples", "tasks", "owner", "created"}


def _summary(v: DatasetVersion | None) -> dict[str, Any]:
    if v is None or not v.import_report_json:
        return {}
    try:
        return orjson.loads(v.import_report_json)
    except orjson.JSONDecodeError:
        return {}


def list_datasets(session: Session, *, sort: str = "created", desc: bool = True) -> list[dict[str, Any]]:
    """One row per dataset with its latest version's figures (stored at version creation, so no scan)."""
    rows = session.exec(
        select(Dataset, DatasetVersion, User.username)  # type: ignore[call-overload]
        .join(
            DatasetVersion,
            (DatasetVersion.dataset_id == Dataset.id) & (DatasetVersion.number == Dataset.latest_version),  # type: ignore[arg-type,union-attr,attr-defined]
            isouter=True,
        )
        .join(User, User.id == Dataset.owner_id, isouter=True)  # type: ignore[arg-type,union-attr,attr-defined]
    ).all()
    out = []
    for ds, v, owner in rows:
        summary = _summary(v)
        out.append(
            {
                "id": ds.id,
                "name": ds.name,
                "kind": str(ds.kind.value if hasattr(ds.kind, "value") else ds.kind),
                "versions": ds.latest_version,
                "samples": v.n_samples if v else 0,
                "tasks": len(summary.get("task_counts", {})),
                "owner": owner or "",
                "created": ds.created_at.isoformat(timespec="seconds") if ds.created_at else "",
                "status": str(
                    v.status.value if v and hasattr(v.status, "value") else (v.status if v else "")
                ),
            }
        )
    key = sort if sort in SORTS else "created"
    out.sort(key=lambda r: (r[key].lower() if isinstance(r[key], str) else r[key], r["id"]), reverse=desc)  # type: ignore[arg-type,union-attr,attr-defined]
    return out


@router.get("/datasets")
def datasets_page(
    request: Request, user: Researcher, session: SessionDep, sort: str = "created", dir: str = "desc"
):
    rows = list_datasets(session, sort=sort, desc=dir != "asc")
    return render(
        request,
        "pages/datasets.html",
        {"user": user, "nav": "datasets", "rows": rows, "sort": sort, "dir": dir},
    )


@router.get("/api/datasets")
def api_datasets(user: Researcher, session: SessionDep, sort: str = "created", dir: str = "desc"):
    return {"datasets": list_datasets(session, sort=sort, desc=dir != "asc")}


def _dataset(session: Session, dataset_id: int) -> Dataset:
    ds = session.get(Dataset, dataset_id)
    if ds is None:
        raise HTTPException(status_code=404, detail=f"Dataset {dataset_id} not found.")
    return ds


def _versions(session: Session, ds: Dataset) -> list[dict[str, Any]]:
    rows = session.exec(
        select(DatasetVersion, User.username)  # type: ignore[call-overload]
        .join(User, User.id == DatasetVersion.created_by, isouter=True)  # type: ignore[arg-type,union-attr,attr-defined]
        .where(DatasetVersion.dataset_id == ds.id)
        .order_by(DatasetVersion.number.desc())  # type: ignore[arg-type,union-attr,attr-defined]
    ).all()  # type: ignore[attr-defined]
    out = []
    for v, by in rows:
        summary = _summary(v)
        status = v.status.value if hasattr(v.status, "value") else str(v.status)
        out.append(
            {
                "number": v.number,
                "id": v.id,
                "message": v.message,
                "by": by or "",
                "n_samples": v.n_samples,
                "created": v.created_at.isoformat(timespec="seconds") if v.created_at else "",
                "status": status,
                "progress": v.progress,
                "stage": v.stage,
                "error": v.error,
                "tasks": len(summary.get("task_counts", {})),
                "normalised": (summary.get("task_normalised") or {}).get("count", 0),
                "n_bad": summary.get("n_bad", 0),
                "task_counts": summary.get("task_counts", {}),
            }
        )
    return out


def dataset_json(session: Session, ds: Dataset) -> dict[str, Any]:
    versions = _versions(session, ds)
    return {
        "id": ds.id,
        "name": ds.name,
        "kind": str(ds.kind.value if hasattr(ds.kind, "value") else ds.kind),
        "description": ds.description,
        "owner_id": ds.owner_id,
        "latest_version": ds.latest_version,
        "created": ds.created_at.isoformat(timespec="seconds") if ds.created_at else "",
        "versions": [{k: v for k, v in r.items() if k != "task_counts"} for r in versions],
        "task_counts": versions[0]["task_counts"] if versions else {},
        "imports": list(
            session.exec(
                select(ImportJob.id).where(
                    ImportJob.dataset_id == ds.id,  # type: ignore[call-overload]
                    ImportJob.status == "succeeded",
                )
            ).all()
        ),
    }


@router.get("/datasets/{dataset_id}")
def dataset_page(request: Request, user: Researcher, session: SessionDep, dataset_id: int):
    ds = _dataset(session, dataset_id)
    data = dataset_json(session, ds)
    indexing = any(v["status"] == "indexing" for v in data["versions"])
    return render(
        request,
        "pages/datasets_detail.html",
        {"user": user, "nav": "datasets", "ds": ds, "d": data, "indexing": indexing},
        partial="partials/datasets_versions.html",
    )


@router.get("/api/datasets/{dataset_id}")
def api_dataset(user: Researcher, session: SessionDep, dataset_id: int):
    return dataset_json(session, _dataset(session, dataset_id))


@router.get("/api/datasets/{dataset_id}/versions/{number}")
def api_version(user: Researcher, session: SessionDep, dataset_id: int, number: int):
    ds = _dataset(session, dataset_id)
    for v in _versions(session, ds):
        if v["number"] == number:
            return v
    raise HTTPException(status_code=404, detail=f"Version {number} of dataset {dataset_id} not found.")


def _diff(session: Session, dataset_id: int, a: int, b: int, page: int) -> dict[str, Any]:
    _dataset(session, dataset_id)
    try:
        return diff_versions(
            session, dataset_id=dataset_id, a=a, b=b, limit=100, offset=(max(page, 1) - 1) * 100
        )
    except EditError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


@router.get("/datasets/{dataset_id}/diff")
def diff_page(
    request: Request,
    user: Researcher,
    session: SessionDep,
    dataset_id: int,
    a: int = 0,
    b: int = 0,
    page: int = 1,
):
    ds = _dataset(session, dataset_id)
    b = b or ds.latest_version
    a = a or max(1, b - 1)
    diff = _diff(session, dataset_id, a, b, page)
    return render(
        request,
        "pages/datasets_diff.html",
        {"user": user, "nav": "datasets", "ds": ds, "diff": diff, "page": max(page, 1)},
    )


@router.get("/api/datasets/{dataset_id}/diff")
def api_diff(user: Researcher, session: SessionDep, dataset_id: int, a: int, b: int, page: int = 1):
    return _diff(session, dataset_id, a, b, page)


def _filters(data: Any) -> Any:
    from app.datasets.browse import BrowseFilters

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
    if hasattr(f, "validate"):
        f.validate()
    return f


def _edit(session: Session, user: User, dataset_id: int, number: int, data: Any, ids: list[Any]):  # noqa: ANN202
    _dataset(session, dataset_id)
    scope = data.get("scope") or "ids"  # a whole-version edit must be asked for explicitly (scope=query)
    # Its own session: a failed edit rolls back without expiring the request's objects (the current user).
    with Session(session.get_bind()) as edit_session:
        try:
            filters = _filters(data) if scope == "query" else None
            sample_ids = [int(i) for i in ids if str(i).strip().isdigit()]
            result = edit_version(
                edit_session,
                dataset_id=dataset_id,
                base_version=number,
                user_id=user.id,  # type: ignore[arg-type]
                action=str(data.get("action") or ""),
                sample_ids=sample_ids,
                filters=filters,
                value=str(data.get("value") or ""),
                message=str(data.get("message") or ""),
            )
        except EditError as exc:
            code = 409 if "latest version" in str(exc) else 400
            raise HTTPException(status_code=code, detail=str(exc)) from None
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        edit_session.expunge(result.version)
        return result


@router.post("/datasets/{dataset_id}/v/{number}/edit")
async def edit_form(request: Request, user: Researcher, session: SessionDep, dataset_id: int, number: int):
    """The form C's sample browser and sample page post (action, value, scope, sample_ids, filters, next)."""
    form = await request.form()
    result = _edit(session, user, dataset_id, number, form, form.getlist("sample_ids"))
    new = result.version.number
    nxt = form.get("next")
    if isinstance(nxt, str) and nxt.startswith("/") and not nxt.startswith(("//", "/\\")):
        target = re.sub(rf"/datasets/{dataset_id}/v/{number}(?=/|$)", f"/datasets/{dataset_id}/v/{new}", nxt)
    else:
        target = f"/datasets/{dataset_id}"
    return RedirectResponse(target, status_code=303)


@router.post("/api/datasets/{dataset_id}/versions/{number}/edit", status_code=201)
def api_edit(
    user: Researcher, session: SessionDep, dataset_id: int, number: int, body: dict[str, Any] = Body(...)
):  # noqa: B008
    """{"action": drop|add_tag|remove_tag|set_task_type, "value": ..., "sample_ids": [...]} or "scope": "query"
    with the browse filters (q, field, task, tag, min_chars, max_chars, length_of)."""
    ids = body.get("sample_ids") or []
    if not isinstance(ids, list):
        raise HTTPException(status_code=422, detail="sample_ids must be a list")
    result = _edit(session, user, dataset_id, number, body, ids)
    return {
        "dataset_id": dataset_id,
        "version": result.version.number,
        "version_id": result.version.id,
        "changed": result.n_changed,
        "requested": result.n_requested,
        "message": result.version.message,
    }


def _export(session: Session, settings, dataset_id: int, number: int) -> StreamingResponse:  # noqa: ANN001
    ds = _dataset(session, dataset_id)
    if not 1 <= number <= ds.latest_version:
        raise HTTPException(status_code=404, detail=f"Version {number} of dataset {dataset_id} not found.")
    is_eval = str(ds.kind.value if hasattr(ds.kind, "value") else ds.kind) == "eval"
    body = iter_export(get_engine(settings), dataset_id=dataset_id, version=number, eval_set=is_eval)
    name = export_filename(ds.name, number)
    full = quote(f"{ds.name}-v{number}.jsonl", safe="")  # "/" too: the name is never a path
    return StreamingResponse(
        body,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{full}"},
    )


@router.get("/datasets/{dataset_id}/v/{number}/export.jsonl")
def export_page(user: Researcher, session: SessionDep, settings: SettingsDep, dataset_id: int, number: int):
    return _export(session, settings, dataset_id, number)


@router.get("/api/datasets/{dataset_id}/versions/{number}/export.jsonl")
def api_export(user: Researcher, session: SessionDep, settings: SettingsDep, dataset_id: int, number: int):
    return _export(session, settings, dataset_id, number)
