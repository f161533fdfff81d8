"""The web side's cache of a version's statistics, parsed once per process.

Reading the stored stats_json is one small query; parsing a large statistics
document on every page view is not. An entry serves only while the stored text is
unchanged, so a version re-indexed by the worker (another process) is noticed on
the next view; `forget` drops an entry in the process that rewrote it.
"""

import json
from typing import Any

from sqlalchemy import text

from app.datasets.stats import HIST_TASKS

_CACHE: dict[int, tuple[str, dict[str, Any], str]] = {}


def forget(version_id: int) -> None:
    _CACHE.pop(version_id, None)


def load_stats(conn, *, version_id: int) -> tuple[dict[str, Any], str] | None:  # noqa: ANN001
    """The parsed statistics and the JSON the charts need, cached while the stored text is unchanged
    (reading the text is cheap; parsing it on every page view is not)."""

    raw = conn.execute(
        text("SELECT stats_json FROM datasetversion WHERE id = :v"), {"v": version_id}
    ).scalar()
    if not raw:
        return None
    hit = _CACHE.get(version_id)
    if hit is not None and hit[0] == raw:
        return hit[1], hit[2]
    data = json.loads(raw)
    charts = json.dumps(
        {
            "histograms": data.get("histograms", {}),
            "tasks": [t["l1"] for t in data.get("task_tree", [])][:HIST_TASKS],
        },
        ensure_ascii=False,
    ).replace("<", "\\u003c")
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[version_id] = (raw, data, charts)
    return data, charts
