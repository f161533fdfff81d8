"""Datasets and their versions: list, dataset page, diff, edits (new versions), export; pages and JSON twins."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import RedirectResponse, StreamingResponse
from sqlmodel import Session

from app.api.deps import PostedForm, Researcher, SessionDep, SettingsDep
from app.core.db import get_engine
from app.datasets.catalog import dataset_json, list_datasets, version_row
from app.datasets.edit_requests import apply_edit_request
from app.datasets.export import export_filename, iter_export
from app.datasets.ownership import NotOwner, check_can_edit
from app.datasets.versions import EditError, EditResult, diff_versions_page
from app.models import Dataset, User
from app.schemas.datasets import DatasetDetail, DatasetList, EditDone, VersionDetail, VersionDiff
from app.web import render

router = APIRouter()


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


@router.get("/api/datasets", response_model=DatasetList)
def api_datasets(user: Researcher, session: SessionDep, sort: str = "created", dir: str = "desc"):
    return {"datasets": list_datasets(session, sort=sort, desc=dir != "asc")}


def _dataset(session: Session, dataset_id: int) -> Dataset:
    ds = session.get(Dataset, dataset_id)
    if ds is None:
        raise HTTPException(status_code=404, detail=f"Dataset {dataset_id} not found.")
    return ds


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


@router.get("/api/datasets/{dataset_id}", response_model=DatasetDetail)
def api_dataset(user: Researcher, session: SessionDep, dataset_id: int):
    return dataset_json(session, _dataset(session, dataset_id))


@router.get("/api/datasets/{dataset_id}/versions/{number}", response_model=VersionDetail)
def api_version(user: Researcher, session: SessionDep, dataset_id: int, number: int):
    row = version_row(session, _dataset(session, dataset_id), number)
    if row is None:
        raise HTTPException(status_code=404, detail=f"Version {number} of dataset {dataset_id} not found.")
    return row


def _diff(session: Session, dataset_id: int, a: int, b: int, page: int) -> dict[str, Any]:
    _dataset(session, dataset_id)
    try:
        return diff_versions_page(session, dataset_id=dataset_id, a=a, b=b, page=page)
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


@router.get("/api/datasets/{dataset_id}/diff", response_model=VersionDiff)
def api_diff(user: Researcher, session: SessionDep, dataset_id: int, a: int, b: int, page: int = 1):
    return _diff(session, dataset_id, a, b, page)


def _edit(
    session: Session, user: User, dataset_id: int, number: int, data: Any, ids: list[Any]
) -> EditResult:
    try:
        check_can_edit(session, user=user, ds=_dataset(session, dataset_id))
    except NotOwner as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    try:
        return apply_edit_request(
            session,
            user_id=user.id,  # type: ignore[arg-type]
            dataset_id=dataset_id,
            number=number,
            data=data,
            ids=ids,
        )
    except EditError as exc:
        code = 409 if "latest version" in str(exc) else 400
        raise HTTPException(status_code=code, detail=str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


@router.post("/datasets/{dataset_id}/v/{number}/edit")
def edit_form(user: Researcher, session: SessionDep, form: PostedForm, dataset_id: int, number: int):
    """The form the sample browser and a sample's page post (action, value, scope, sample_ids, filters, next).

    A plain `def` (the form is read by a dependency): an edit over a whole search result is seconds of
    database work, which on the event loop would stop every other request."""
    result = _edit(session, user, dataset_id, number, form, form.getlist("sample_ids"))
    new = result.version.number
    nxt = form.get("next")
    if isinstance(nxt, str) and nxt.startswith("/") and not nxt.startswith(("//", "/\\")):
        target = re.sub(rf"/datasets/{dataset_id}/v/{number}(?=/|$)", f"/datasets/{dataset_id}/v/{new}", nxt)
    else:
        target = f"/datasets/{dataset_id}"
    return RedirectResponse(target, status_code=303)


@router.post("/api/datasets/{dataset_id}/versions/{number}/edit", status_code=201, response_model=EditDone)
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
