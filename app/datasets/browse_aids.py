"""What the sample browser needs to be fast at any depth, found by the statistics pass.

- Page anchors (rows of `sample_fts_anchor`): for the unfiltered list, each
  task_type (level 1, and l1/l2) and each tag, the id that page N starts after,
  so "jump to page N" is one keyset query (app.datasets.browse.anchor).
- The version's visible id ranges (`sample_fts_state.ranges`): maximal runs of ids
  with no other sample inside, so a text query is counted on the search index
  alone, without a join (app.datasets.browse.count_matching).

Finding them only reads (the statistics process may do it); `write_browse_aids`
stores them.
"""

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from app.datasets.browse import PAGE_SIZE as PAGE


@dataclass
class BrowseAids:
    """What the sample browser needs to be fast at any depth: page anchors and the visible id ranges."""

    version_id: int
    anchors: list[dict[str, Any]]  # rows of sample_fts_anchor as bind parameters
    ranges: list[list[int]]


def _anchors(ids: np.ndarray) -> list[tuple[int, int]]:
    """(page, after_id) for pages 2.. of a sorted id list."""
    after = ids[PAGE - 1 :: PAGE]
    return [(p + 2, int(a)) for p, a in enumerate(after.tolist()) if (p + 1) * PAGE < ids.size]


def _ranges(conn: Connection, vis: np.ndarray) -> list[list[int]]:
    """Maximal runs of visible ids with no other existing sample id inside them."""
    if vis.size == 0:
        return []
    rows = conn.execute(
        text("SELECT id FROM sample WHERE id BETWEEN :lo AND :hi ORDER BY id"),
        {"lo": int(vis[0]), "hi": int(vis[-1])},
    )
    all_ids = np.fromiter((r[0] for r in rows), dtype=np.int64)
    is_vis = np.isin(all_ids, vis, assume_unique=True)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], is_vis.astype(np.int8), [0]))))
    starts, ends = edges[::2], edges[1::2] - 1
    return [[int(all_ids[a]), int(all_ids[b])] for a, b in zip(starts, ends, strict=False)]


def browse_aids(
    engine: Engine,
    *,
    version_id: int,
    ids: np.ndarray,
    codes: np.ndarray,
    tasks: list,
    tag_anchor: dict[str, list[tuple[int, int]]],
) -> BrowseAids:
    """Page anchors (all, per task_type l1 and l1/l2, per tag) and visible id ranges.

    `ids` are the version's visible ids in order, `codes` their task codes (indexes into `tasks`, the
    (l1, l2) pairs); tag anchors come ready from the statistics pass, which counts tags as it streams."""
    rows: list[dict[str, Any]] = []

    def add(key: str, pairs: list[tuple[int, int]]) -> None:
        rows.extend({"v": version_id, "k": key, "p": p, "a": a} for p, a in pairs)

    add("", _anchors(ids))
    by_l1: dict[str, list[int]] = {}
    for i, (l1, l2) in enumerate(tasks):
        sel = codes == i
        add(f"t:{l1}/{l2}", _anchors(ids[sel]))
        by_l1.setdefault(l1, []).append(i)
    for l1, cs in by_l1.items():
        add(f"t:{l1}", _anchors(ids[np.isin(codes, cs)]))
    for t, pairs in tag_anchor.items():
        # the last anchor is useless when it ends the list (no page after it); keeping it is harmless
        add(f"g:{t}", pairs)
    with engine.connect() as conn:
        ranges = _ranges(conn, ids)
    return BrowseAids(version_id, rows, ranges)


def write_browse_aids(engine: Engine, aids: BrowseAids) -> None:
    """Replaces the version's page anchors and visible ranges (separate from computing them, which only
    reads, so the statistics can be computed in another process while this one writes the search index)."""
    ranges = json.dumps(aids.ranges)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sample_fts_anchor WHERE version_id = :v"), {"v": aids.version_id})
        for s in range(0, len(aids.anchors), 50_000):
            conn.execute(
                text(
                    "INSERT INTO sample_fts_anchor (version_id, key, page, after_id) VALUES (:v, :k, :p, :a)"
                ),
                aids.anchors[s : s + 50_000],
            )
        updated = conn.execute(
            text("UPDATE sample_fts_state SET ranges = :r WHERE version_id = :v"),
            {"r": ranges, "v": aids.version_id},
        ).rowcount
        if not updated:
            conn.execute(
                text("INSERT INTO sample_fts_state (version_id, last_id, ranges) VALUES (:v, 0, :r)"),
                {"r": ranges, "v": aids.version_id},
            )
