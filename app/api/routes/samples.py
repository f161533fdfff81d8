"""Sample browser, full-text search and one sample's page; JSON twins under /api.

The pages post bulk and per-sample edits to POST /datasets/{id}/v/{n}/edit (routes/datasets.py);
nothing here writes. Logic lives in app.datasets.browse / search / highlight.
"""

import json
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from app.api.deps import Researcher, SessionDep
from app.datasets import browse
from app.datasets.highlight import mark_all, snippet
from app.datasets.ownership import can_edit
from app.datasets.stats_cache import load_stats
from app.datasets.tasks import task_key
from app.models import Sample
from app.schemas.samples import SampleCount, SampleDetail, SamplePage
from app.web import render

router = APIRouter()


def _version(session, dataset_id: int, n: int):  # noqa: ANN001, ANN202
    found = browse.get_version(session, dataset_id=dataset_id, number=n)
    if found is None:
        raise HTTPException(status_code=404, detail=f"Dataset {dataset_id} has no version {n}.")
    return found


def _filters(
    q: str = "",
    field: str = "all",
    task: str = "",
    tag: str = "",
    min_chars: str = "",
    max_chars: str = "",
    length_of: str = "answer",
) -> browse.BrowseFilters:
    """The browse filters of every route here, declared once so the OpenAPI schema lists them."""
    params = {
        "q": q,
        "field": field,
        "task": task,
        "tag": tag,
        "min_chars": min_chars,
        "max_chars": max_chars,
        "length_of": length_of,
    }
    try:
        return browse.filters_from(params)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


def _nav(after: str = "", before: str = "", page: str = "") -> dict:
    """Keyset (after/before an id) or page-number position in the results."""
    try:
        nav = {
            k: browse.parse_int(k, v, minimum=0)
            for k, v in (("after", after), ("before", before), ("page", page))
        }
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    if nav["page"] == 0:
        raise HTTPException(status_code=400, detail="page starts at 1")
    return nav


Filters = Annotated[browse.BrowseFilters, Depends(_filters)]
Nav = Annotated[dict, Depends(_nav)]


def _page(session, ds, version, filters: browse.BrowseFilters, nav: dict) -> tuple[browse.Page, dict | None]:  # noqa: ANN001
    loaded = load_stats(version)
    stats = loaded[0] if loaded else None
    l2 = None
    if filters.task and not filters.q and not filters.tag:
        l1, sub = filters.task_parts()
        l2 = browse.l2_values_from_stats(stats, l1) if sub is None else None
    page = browse.browse_page(
        session,
        dataset_id=ds.id,
        version=version.number,
        version_id=version.id,
        filters=filters,
        after=nav["after"],
        before=nav["before"],
        page=nav["page"],
        l2_values=l2,
    )
    return page, stats


def _count(session, ds, version, filters: browse.BrowseFilters, stats: dict | None) -> int:  # noqa: ANN001
    key = filters.anchor_key()
    if stats and key is not None:
        return int(stats.get("counts", {}).get(key, 0))
    return browse.count_matching(
        session, dataset_id=ds.id, version=version.number, version_id=version.id, filters=filters
    )


def _row_view(row: dict, q: str, field: str) -> dict:
    return row | {
        "prompt_html": snippet(row["prompt"], q if field in ("all", "prompt") else ""),
        "answer_html": snippet(row["answer"], q if field in ("all", "answer") else ""),
        # an eval sample's expected answer, searched with the answer field
        "reference_html": snippet(row["reference"], q if field in ("all", "answer") else "")
        if row.get("reference")
        else "",
        "tag_list": [t for t in row["tags"].split(",") if t],
    }


def page_context(session, ds, version, filters: browse.BrowseFilters, nav: dict, user) -> dict:  # noqa: ANN001
    """Everything the browser template needs (the bench renders it without HTTP)."""
    page, stats = _page(session, ds, version, filters, nav)
    keep = filters.as_query()
    n = version.number
    base = f"/datasets/{ds.id}/v/{n}/samples"
    number = nav["page"] or (1 if not nav["after"] and not nav["before"] else None)
    nxt = keep | {"after": page.last_id} | ({"page": number + 1} if number else {})
    prev = keep | {"before": page.first_id} | ({"page": number - 1} if number and number > 1 else {})
    links = {
        "next": f"{base}?{urlencode(nxt)}" if page.has_next and page.last_id else None,
        "prev": f"{base}?{urlencode(prev)}" if page.has_prev and page.first_id else None,
        "count": f"{base}/count?{urlencode(keep)}",
        "self": f"{base}?{urlencode(keep | {k: v for k, v in nav.items() if v})}",
        "base": base,
    }
    known_count = None
    if stats and filters.anchor_key() is not None:
        known_count = _count(session, ds, version, filters, stats)
    return {
        "user": user,
        "nav": "datasets",
        "dataset": ds,
        "version": version,
        "filters": filters,
        "rows": [_row_view(r, filters.q, filters.field) for r in page.rows],
        "page": page,
        "number": number,
        "links": links,
        "known_count": known_count,
        "pages": (known_count + 49) // 50 if known_count else None,
        "stats": stats,
        "can_edit": can_edit(user, ds),  # others read and use the dataset; the edit form is not shown
    }


@router.get("/datasets/{dataset_id}/v/{n}/samples")
def samples_page(
    request: Request,
    dataset_id: int,
    n: int,
    session: SessionDep,
    user: Researcher,
    filters: Filters,
    nav: Nav,
):
    ds, version = _version(session, dataset_id, n)
    ctx = page_context(session, ds, version, filters, nav, user)
    return render(request, "pages/samples.html", ctx, partial="partials/samples_results.html")


@router.get("/datasets/{dataset_id}/v/{n}/samples/count", response_class=HTMLResponse)
def samples_count(
    request: Request, dataset_id: int, n: int, session: SessionDep, user: Researcher, filters: Filters
):
    """The exact hit count, fetched by its own HTMX request so the page of hits never waits for it."""
    ds, version = _version(session, dataset_id, n)
    loaded = load_stats(version)
    count = _count(session, ds, version, filters, loaded[0] if loaded else None)
    return render(
        request,
        "partials/samples_count.html",
        {"user": user, "count": count},
        partial="partials/samples_count.html",
    )


@router.get("/samples/{sample_id}")
def sample_page(request: Request, sample_id: int, session: SessionDep, user: Researcher):
    sample = session.get(Sample, sample_id)
    if sample is None:
        raise HTTPException(status_code=404, detail=f"Sample {sample_id} does not exist.")
    from app.models import Dataset

    ds = session.get(Dataset, sample.dataset_id)
    q = request.query_params.get("q", "")
    try:
        turns = json.loads(sample.messages)
    except ValueError:
        turns = [{"role": "user", "content": sample.prompt}, {"role": "assistant", "content": sample.answer}]
    view = [{"role": str(t.get("role", "")), "html": mark_all(str(t.get("content") or ""), q)} for t in turns]
    latest = ds.latest_version if ds else sample.added_in
    ctx = {
        "user": user,
        "nav": "datasets",
        "sample": sample,
        "dataset": ds,
        "turns": view,
        "reference_html": mark_all(sample.reference or "", q),
        "q": q,
        "tag_list": [t for t in sample.tags.split(",") if t],
        "current": sample.removed_in is None,
        "latest": latest,
        "back": f"/datasets/{sample.dataset_id}/v/{latest}/samples",
        "can_edit": ds is not None and can_edit(user, ds),
    }
    return render(request, "pages/sample.html", ctx)


def _sample_json(row: dict) -> dict:
    return {
        k: row[k]
        for k in ("id", "task_l1", "task_l2", "prompt_chars", "answer_chars", "n_turns", "has_system")
    } | {
        "task_type": task_key(row["task_l1"], row["task_l2"]),
        "tags": [t for t in row["tags"].split(",") if t],
        "prompt": row["prompt"],
        "answer": row["answer"],
        "reference": row["reference"],
    }


@router.get("/api/datasets/{dataset_id}/versions/{n}/samples", response_model=SamplePage)
def samples_api(dataset_id: int, n: int, session: SessionDep, _: Researcher, filters: Filters, nav: Nav):
    """One page of 50 samples; follow `next_after` (or `prev_before`) for the next page. Filters as the browser's."""
    ds, version = _version(session, dataset_id, n)
    result, _stats = _page(session, ds, version, filters, nav)
    return {
        "dataset_id": ds.id,
        "version": n,
        "status": version.status,
        "items": [_sample_json(r) for r in result.rows],
        "next_after": result.last_id if result.has_next else None,
        "prev_before": result.first_id if result.has_prev else None,
    }


@router.get("/api/datasets/{dataset_id}/versions/{n}/samples/count", response_model=SampleCount)
def samples_count_api(dataset_id: int, n: int, session: SessionDep, _: Researcher, filters: Filters):
    ds, version = _version(session, dataset_id, n)
    loaded = load_stats(version)
    return {"count": _count(session, ds, version, filters, loaded[0] if loaded else None)}


@router.get("/api/samples/{sample_id}", response_model=SampleDetail)
def sample_api(sample_id: int, session: SessionDep, _: Researcher):
    sample = session.get(Sample, sample_id)
    if sample is None:
        raise HTTPException(status_code=404, detail=f"Sample {sample_id} does not exist.")
    row = sample.model_dump()
    return _sample_json(row) | {
        "dataset_id": sample.dataset_id,
        "added_in": sample.added_in,
        "removed_in": sample.removed_in,
        "messages": json.loads(sample.messages),
    }
