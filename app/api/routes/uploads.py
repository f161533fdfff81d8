"""Upload, field mapping and import jobs: the pages and their JSON twins."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from app.api.deps import PostedForm, Researcher, SessionDep, SettingsDep
from app.core.i18n import translate
from app.datasets import jobs
from app.datasets.formats import REASONS
from app.datasets.import_job import create_job, job_progress
from app.datasets.import_options import ImportOptions
from app.datasets.mapping import list_paths
from app.datasets.ownership import NotOwner, can_edit, check_can_edit
from app.datasets.upload_preview import (
    UploadError,
    check_importable,
    guess,
    mapped_preview,
    options_from_body,
    options_from_form,
    preview_table,
    preview_upload,
    unreadable,
    upload_info,
)
from app.datasets.uploads import (
    MULTIPART_OVERHEAD,
    BadMultipart,
    DiskFull,
    UploadTooLarge,
    human_bytes,
    recent_uploads,
    register_upload,
    save_multipart,
    save_stream,
)
from app.models import Dataset, ImportJob, Role, Upload, User
from app.schemas.uploads import UploadCreated, UploadInfo, UploadList
from app.web import lang_of, render

router = APIRouter()
ISSUES_PER_PAGE = 200


def _own(session: Session, model: type, obj_id: int, user: User) -> Any:
    obj = session.get(model, obj_id)
    if obj is None or (obj.owner_id != user.id and user.role != Role.admin):
        raise HTTPException(status_code=404, detail=f"{model.__name__} {obj_id} not found.")
    return obj


@contextmanager
def _upload_errors() -> Iterator[None]:
    try:
        yield
    except UploadError as exc:
        raise HTTPException(status_code=exc.status_code, detail=exc.detail) from None


@router.get("/datasets/upload")
def upload_page(
    request: Request, user: Researcher, session: SessionDep, settings: SettingsDep, target: int = 0
):
    ds = session.get(Dataset, target) if target else None
    return render(
        request,
        "pages/upload.html",
        {
            "user": user,
            "nav": "datasets",
            "target": ds,
            "limit": human_bytes(settings.upload_max_bytes),
            "limit_bytes": settings.upload_max_bytes,
            "recent": recent_uploads(session, user=user),
        },
    )


@router.get("/api/uploads", response_model=UploadList)
def api_uploads(user: Researcher, session: SessionDep):
    return {"uploads": recent_uploads(session, user=user, limit=100)}


@router.post("/api/uploads", status_code=201, response_model=UploadCreated)
async def api_upload(
    request: Request, user: Researcher, session: SessionDep, settings: SettingsDep, filename: str = ""
):
    """Raw body (name in ?filename= or X-Filename) or multipart field `file`; streamed to disk either way.

    async to read the body as it arrives; writing the file and registering it (format detection, the
    row) run in the thread pool, so a large upload blocks no other request. The role guard runs first,
    so a caller who may not upload is refused before any of the body is read."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.upload_max_bytes + MULTIPART_OVERHEAD:
        raise HTTPException(status_code=413, detail=str(UploadTooLarge(settings.upload_max_bytes)))
    ctype = request.headers.get("content-type", "")
    try:
        if ctype.startswith("multipart/form-data"):
            stored, size, part_name = await save_multipart(
                request.stream(), content_type=ctype, settings=settings
            )
            filename = part_name or filename
        else:
            filename = filename or unquote(request.headers.get("x-filename", ""))
            stored, size = await save_stream(request.stream(), settings=settings)
        upload = await run_in_threadpool(
            register_upload,
            session,
            settings=settings,
            owner_id=user.id,  # type: ignore[arg-type,union-attr,attr-defined]
            filename=filename,
            stored=stored,
            size=size,
        )
    except UploadTooLarge as exc:
        raise HTTPException(status_code=413, detail=str(exc)) from None
    except BadMultipart as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    except DiskFull:
        raise HTTPException(status_code=507, detail=translate("upload.disk_full", lang_of(request))) from None
    return {
        "upload_id": upload.id,
        "filename": upload.filename,
        "size": upload.size,
        "detected_format": upload.detected_format,
        "mapping_url": f"/uploads/{upload.id}/mapping",
    }


@router.get("/api/uploads/{upload_id}", response_model=UploadInfo)
def api_upload_info(user: Researcher, session: SessionDep, settings: SettingsDep, upload_id: int):
    upload = _own(session, Upload, upload_id, user)
    with _upload_errors():
        return upload_info(upload, settings=settings)


@router.get("/uploads/{upload_id}/mapping")
def mapping_page(
    request: Request,
    user: Researcher,
    session: SessionDep,
    settings: SettingsDep,
    upload_id: int,
    target: int = 0,
):
    upload = _own(session, Upload, upload_id, user)
    with _upload_errors():
        container, rows, issues = preview_upload(upload, settings=settings)
    mapping, kind, name = guess(upload, rows)
    columns, table = preview_table(rows)
    # Merge targets: only datasets this user may add a version to (their own; every one for an admin).
    datasets = [
        d
        for d in session.exec(select(Dataset).order_by(Dataset.name)).all()  # type: ignore[arg-type]
        if can_edit(user, d)
    ]
    mapped = mapped_preview(rows, mapping=mapping, kind=kind)
    blocked = unreadable(
        container,
        rows,
        issues,
        filename=upload.filename,
        path=settings.uploads_dir / upload.stored_name,
        settings=settings,
    )
    return render(
        request,
        "pages/mapping.html",
        {
            "user": user,
            "nav": "datasets",
            "upload": upload,
            "container": container,
            "blocked": blocked,
            "columns": columns,
            "table": table,
            "issues": issues,
            "paths": list_paths([o for _, o in rows]),
            "m": mapping,
            "kind": kind,
            "name": name,
            "datasets": datasets,
            "target": target,
            "mapped": mapped,
            "reasons": REASONS,
        },
    )


@router.post("/uploads/{upload_id}/preview")
def mapping_preview(
    request: Request,
    user: Researcher,
    session: SessionDep,
    settings: SettingsDep,
    form: PostedForm,
    upload_id: int,
):
    """The first rows as the current form would import them (HTMX, on every change of the form)."""
    upload = _own(session, Upload, upload_id, user)
    with _upload_errors():
        _, rows, _ = preview_upload(upload, settings=settings)
    try:
        opts = options_from_form(form)
        mapped, error = mapped_preview(rows, mapping=opts.mapping, kind=opts.kind), ""
    except ValueError as exc:
        mapped, error = [], str(exc)
    return render(
        request,
        "partials/import_mapped.html",
        {"user": user, "mapped": mapped, "error": error, "reasons": REASONS},
    )


def _start(session: Session, upload: Upload, opts: ImportOptions, user: User) -> ImportJob:
    if opts.target_dataset_id is not None:
        target = session.get(Dataset, opts.target_dataset_id)
        if target is None:
            raise HTTPException(status_code=404, detail=f"Dataset {opts.target_dataset_id} not found.")
        try:  # merging adds a version to the target: an edit of it
            check_can_edit(session, user=user, ds=target)
        except NotOwner as exc:
            raise HTTPException(status_code=403, detail=str(exc)) from None
    job = create_job(session, upload=upload, options=opts, owner_id=user.id)  # type: ignore[arg-type]
    jobs.enqueue_import(job.id)  # type: ignore[arg-type]
    session.refresh(job)
    return job


@router.post("/uploads/{upload_id}/import")
def start_import(
    user: Researcher, session: SessionDep, settings: SettingsDep, form: PostedForm, upload_id: int
):
    upload = _own(session, Upload, upload_id, user)
    with _upload_errors():
        check_importable(upload, settings=settings)
    try:
        opts = options_from_form(form)
        opts.check()
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    job = _start(session, upload, opts, user)
    return RedirectResponse(f"/imports/{job.id}", status_code=303)


@router.post("/api/uploads/{upload_id}/import", status_code=202)
def api_start_import(
    user: Researcher,
    session: SessionDep,
    settings: SettingsDep,
    upload_id: int,
    body: dict[str, Any] = Body(default_factory=dict),
):  # noqa: B008
    """Body: {"mapping": {...}, "name", "kind", "policy", "target_dataset_id"}; what is left out is guessed."""
    upload = _own(session, Upload, upload_id, user)
    with _upload_errors():
        check_importable(upload, settings=settings)
        _, rows, _ = preview_upload(upload, settings=settings)
    try:
        opts = options_from_body(upload, rows, body)
    except (ValueError, TypeError) as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    job = _start(session, upload, opts, user)
    return JSONResponse(_job_json(job, settings), status_code=202)


def _job_json(job: ImportJob, settings) -> dict[str, Any]:  # noqa: ANN001
    report = orjson.loads(job.report_json) if job.report_json else None
    if report:
        report = {k: v for k, v in report.items() if k != "issues"} | {
            "issues": report.get("issues", [])[:1000]
        }
    version = report.get("version") if report else None
    return {
        "job_id": job.id,
        "upload_id": job.upload_id,
        "status": job.status,
        "progress": round(job_progress(settings, job), 3),
        "n_ok": job.n_ok,
        "n_bad": job.n_bad,
        "dataset_id": job.dataset_id,
        "version": version,
        "error": job.error,
        "status_url": f"/api/imports/{job.id}",
        "page_url": f"/imports/{job.id}",
        "report": report,
    }


@router.get("/api/imports/{job_id}")
def api_job(user: Researcher, session: SessionDep, settings: SettingsDep, job_id: int):
    return _job_json(_own(session, ImportJob, job_id, user), settings)


@router.get("/imports/{job_id}")
def job_page(
    request: Request, user: Researcher, session: SessionDep, settings: SettingsDep, job_id: int, page: int = 1
):
    job = _own(session, ImportJob, job_id, user)
    upload = session.get(Upload, job.upload_id)
    report = orjson.loads(job.report_json) if job.report_json else {}
    issues = report.get("issues", [])
    pages = max(1, -(-len(issues) // ISSUES_PER_PAGE))
    page = min(max(page, 1), pages)
    opts = orjson.loads(job.options_json)
    return render(
        request,
        "pages/import.html",
        {
            "user": user,
            "nav": "datasets",
            "job": job,
            "upload": upload,
            "report": report,
            "opts": opts,
            "progress": job_progress(settings, job),
            "running": job.status in ("queued", "running"),
            "issues": issues[(page - 1) * ISSUES_PER_PAGE : page * ISSUES_PER_PAGE],
            "page": page,
            "pages": pages,
            "reasons": REASONS,
        },
        partial="partials/import_status.html",
    )


@router.post("/imports/{job_id}/rerun")
def rerun_job(user: Researcher, session: SessionDep, form: PostedForm, job_id: int):
    """After a dry run or a rejection: the same mapping again with the policy the user now picks."""
    job = _own(session, ImportJob, job_id, user)
    upload = _own(session, Upload, job.upload_id, user)
    data = orjson.loads(job.options_json)
    policy = form.get("policy")
    data["policy"] = policy if isinstance(policy, str) else "valid"
    try:
        opts = ImportOptions.from_dict(data)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    new = _start(session, upload, opts, user)
    return RedirectResponse(f"/imports/{new.id}", status_code=303)


@router.get("/imports/{job_id}/report.csv")
def job_report_csv(user: Researcher, session: SessionDep, job_id: int):
    job = _own(session, ImportJob, job_id, user)
    report = orjson.loads(job.report_json) if job.report_json else {}
    unit = report.get("unit", "line")

    def rows():
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow([unit, "reason", "reason_text", "detail"])
        for line, reason, detail in report.get("issues", []):
            w.writerow([line, reason, REASONS.get(reason, reason), detail])
            if buf.tell() > 1 << 16:
                yield buf.getvalue().encode()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue().encode()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{job_id}-report.csv"'},
    )
