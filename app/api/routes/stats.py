"""Statistics of a dataset version: the page (uPlot charts), its progress fragment, and the JSON twin.

The numbers are computed once by app.datasets.indexing in the background; these
routes only read DatasetVersion.stats_json (parsed once per process, see
app.datasets.stats_cache.load_stats), loaded with the version: a page view costs one query.
"""

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from app.api.deps import Researcher, SessionDep
from app.datasets.browse import get_version
from app.datasets.stats_cache import load_stats
from app.schemas.stats import VersionStats
from app.web import render

router = APIRouter()

METRICS = ("prompt_chars", "answer_chars", "turns", "prompt_tokens", "answer_tokens")


def _version(session, dataset_id: int, n: int):  # noqa: ANN001, ANN202
    found = get_version(session, dataset_id=dataset_id, number=n)
    if found is None:
        raise HTTPException(status_code=404, detail=f"Dataset {dataset_id} has no version {n}.")
    return found


@router.get("/datasets/{dataset_id}/v/{n}/stats")
def stats_page(request: Request, dataset_id: int, n: int, session: SessionDep, user: Researcher):
    ds, version = _version(session, dataset_id, n)
    return render(request, "pages/stats.html", stats_context(session, ds, version, user))


def stats_context(session, ds, version, user) -> dict:  # noqa: ANN001
    """What the statistics template needs (the bench renders it without HTTP)."""
    loaded = load_stats(version) if version.status == "ready" else None
    return {
        "user": user,
        "nav": "datasets",
        "dataset": ds,
        "version": version,
        "stats": loaded[0] if loaded else None,
        "charts_json": loaded[1] if loaded else "{}",
        "metrics": METRICS,
        "samples_url": f"/datasets/{ds.id}/v/{version.number}/samples",
    }


@router.get("/datasets/{dataset_id}/v/{n}/stats/progress", response_class=HTMLResponse)
def stats_progress(request: Request, dataset_id: int, n: int, session: SessionDep, user: Researcher):
    """Polled by the page while the version is indexing; asks HTMX to reload the page once it is ready."""
    ds, version = _version(session, dataset_id, n)
    response = render(
        request,
        "partials/stats_progress.html",
        {"user": user, "dataset": ds, "version": version},
        partial="partials/stats_progress.html",
    )
    if version.status == "ready":
        response.headers["HX-Refresh"] = "true"
    return response


@router.get("/api/datasets/{dataset_id}/versions/{n}/stats", response_model=VersionStats)
def stats_api(dataset_id: int, n: int, session: SessionDep, _: Researcher):
    """The version's statistics (null until indexing has finished), with its status and progress."""
    ds, version = _version(session, dataset_id, n)
    loaded = load_stats(version) if version.status == "ready" else None
    return {
        "dataset_id": ds.id,
        "version": n,
        "status": version.status,
        "progress": version.progress,
        "stage": version.stage,
        "error": version.error or None,
        "stats": loaded[0] if loaded else None,
    }
