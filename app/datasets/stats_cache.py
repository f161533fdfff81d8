"""The web side's cache of a version's statistics, parsed once per process.

The routes read stats_json with the version itself (one query for both); parsing
a large statistics document on every page view would not be cheap. An entry serves
only while the stored text is unchanged, so a version re-indexed by the worker
(another process) is noticed on the next view; `forget` drops an entry in the
process that rewrote it.
"""

import json
from typing import Any

from app.datasets.stats import HIST_TASKS
from app.models import DatasetVersion

_CACHE: dict[int, tuple[str, dict[str, Any], str]] = {}


def forget(version_id: int) -> None:
    _CACHE.pop(version_id, None)


def load_stats(version: DatasetVersion) -> tuple[dict[str, Any], str] | None:
    """The parsed statistics and the JSON the charts need, cached while the stored text is unchanged.

    From the text the version loaded in this request: a second query for it would cost a round trip
    and a parse in the database server on every browser, search and count request (on PostgreSQL,
    where that is measurable under load; bench/load.py)."""
    raw, version_id = version.stats_json, version.id
    if not raw or version_id is None:
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
