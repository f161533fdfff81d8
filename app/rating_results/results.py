"""The results of a rating task, every section of the page in one JSON-ready dict."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.models import RatingTask, RubricVersion
from app.rating.rubrics import Dimension, dimensions_of
from app.rating_results.agreement import agreement_table, judges_table
from app.rating_results.data import load
from app.rating_results.review import disputes, raters_vs_gold
from app.rating_results.summary import pairwise_table, scores_table
from app.rating_stats.quality import DEFAULT_GOLD_MARGIN, DEFAULT_MIN_GOLD_CASES


def task_results(
    session: Session, task: RatingTask, *, version_id: int | None = None, use_adjudicated: bool = False
) -> dict[str, Any]:
    """Usability and dimensions, pairwise, agreement, disputes and gold, scored under `version_id`
    (VersionError when it is not a version of the task's rubric)."""
    data = load(session, task, version_id=version_id)
    task_version = session.get(RubricVersion, task.rubric_version_id)
    assert task_version is not None
    return {
        "task": {
            "id": task.id,
            "name": task.name,
            "mode": task.mode,
            "n_cases": len(data.cases),
            "ratings": sum(len(c.ratings) for c in data.cases),
            "judge_ratings": sum(len(c.judged) for c in data.cases),
            "models": data.models,
            "score_sides": bool(data.sides),
            # what an adjudication is checked against, whichever version the page shows
            "dimensions": [_dimension(d) for d in dimensions_of(task_version)],
        },
        "version": {
            "id": data.version.id,
            "number": data.version.number,
            "task_version": data.version.id == task.rubric_version_id,
            "threshold": data.version.usable_threshold,
            "dimensions": [_dimension(d) for d in data.dimensions],
        },
        "versions": [{"id": v.id, "number": v.number} for v in data.versions],
        "ignored": [{"key": i.key, "reason": i.reason, "ratings": i.ratings} for i in data.ignored],
        "use_adjudicated": use_adjudicated,
        "adjudicated_cases": sum(c.adjudication is not None for c in data.cases),
        "scores": scores_table(data, use_adjudicated=use_adjudicated),
        "pairwise": pairwise_table(data, use_adjudicated=use_adjudicated),
        "agreement": agreement_table(data),
        "judges": judges_table(data),
        "disputes": disputes(data),
        "gold": {**raters_vs_gold(data), "min_cases": DEFAULT_MIN_GOLD_CASES, "margin": DEFAULT_GOLD_MARGIN},
    }


def _dimension(d: Dimension) -> dict[str, Any]:
    return {"key": d.key, "name_en": d.name_en, "name_zh": d.name_zh, "scale": d.scale, "weight": d.weight}
