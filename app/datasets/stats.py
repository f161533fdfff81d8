"""Statistics of one dataset version, computed once in the background and stored as JSON.

One streaming pass over the version's visible rows (app.datasets.stats_scan)
feeds numpy arrays; the steps here turn them into the task tree, histograms, the
most repeated answers and prompt openings/endings (their texts fetched afterwards
for the top few only), exact duplicates by content hash and near duplicates by
MinHash (app.datasets.neardup).

compute_stats also returns what the browser needs to be fast at any depth, found
from the same arrays (app.datasets.browse_aids). The web side reads the stored
result through app.datasets.stats_cache.
"""

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.datasets import neardup
from app.datasets.browse_aids import BrowseAids, browse_aids
from app.datasets.stats_scan import ENDING, OPENING, Columns, Scan, visible_count

TOP = 30
HIST_TASKS = 30  # per-task histograms for the largest task_types
MAX_BINS = 40
GROUPS_SHOWN = 25
IDS_PER_GROUP = 12

STATS_VERSION = 1


def _nice(x: float) -> int:
    """The smallest of 1, 2, 5 x 10^k that is >= x."""
    if x <= 1:
        return 1
    k = 10 ** int(np.floor(np.log10(x)))
    for m in (1, 2, 5, 10):
        if m * k >= x:
            return int(m * k)
    return int(10 * k)


def edges_for(values: np.ndarray) -> list[int]:
    """Left bin edges: unit bins for small integers, else nice-width bins up to the 99th percentile.
    The last bin is open-ended (it holds the long tail). Unit bins start at the smallest value, not at 0:
    a dataset where every sample has one user turn gets one bar, not an empty 0 bar beside it."""
    if values.size == 0:
        return [0]
    top = int(values.max())
    if top < MAX_BINS:
        return list(range(max(int(values.min()), 0), top + 1))
    p99 = float(np.percentile(values, 99))
    width = _nice(max(p99, 1) / (MAX_BINS - 1))
    n = int(np.ceil((p99 + 1) / width))
    return [i * width for i in range(n + 1)]


def histogram(values: np.ndarray, edges: list[int]) -> list[int]:
    bins = np.searchsorted(np.asarray(edges), values, side="right") - 1
    return np.bincount(np.clip(bins, 0, len(edges) - 1), minlength=len(edges)).tolist()


def summary(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"n": 0, "mean": 0, "p50": 0, "p90": 0, "p99": 0, "max": 0}
    p = np.percentile(values, [50, 90, 99])
    return {
        "n": int(values.size),
        "mean": round(float(values.mean()), 2),
        "p50": float(p[0]),
        "p90": float(p[1]),
        "p99": float(p[2]),
        "max": int(values.max()),
    }


def _top(hashes: np.ndarray, ids: np.ndarray, k: int) -> list[tuple[int, int]]:
    """(count, first id) of the k most frequent values that occur at least twice."""
    if hashes.size == 0:
        return []
    uniq, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    order = np.lexsort((ids[first], -counts))[:k]
    return [(int(counts[i]), int(ids[first[i]])) for i in order if counts[i] >= 2]


def _task_tree(
    tasks: list[tuple[str, str]], codes: np.ndarray, n: int
) -> tuple[list[dict[str, Any]], Counter[str], np.ndarray]:
    """Level 1 task_types with their level 2 children, largest first; also samples per l1 and per code."""
    l1_counts: Counter[str] = Counter()
    children: dict[str, Counter[str]] = {}
    per_code = np.bincount(codes, minlength=len(tasks)) if n else np.zeros(0, np.int64)
    for i, (l1, l2) in enumerate(tasks):
        l1_counts[l1] += int(per_code[i])
        children.setdefault(l1, Counter())[l2] += int(per_code[i])
    tree = [
        {
            "l1": l1,
            "count": c,
            "share": c / n if n else 0,
            "children": [
                {"l2": l2, "count": cc, "share": cc / n if n else 0}
                for l2, cc in sorted(children[l1].items(), key=lambda kv: (-kv[1], kv[0]))
            ],
        }
        for l1, c in sorted(l1_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return tree, l1_counts, per_code


def _histograms(cols: Columns, tree: list[dict[str, Any]], l1_counts: Counter[str]) -> dict[str, Any]:
    """Per metric: bin edges, the overall histogram and summary, and the same for the largest level 1 tasks."""
    l1_names = sorted(l1_counts)
    l1_of_code = (
        np.asarray([l1_names.index(t[0]) for t in cols.tasks], dtype=np.int32) if cols.tasks else None
    )
    hist_tasks: list[str] = [str(t["l1"]) for t in tree[:HIST_TASKS]]
    hists: dict[str, Any] = {}
    for name, values in cols.metrics.items():
        vcodes = cols.tok_codes if name.endswith("_tokens") else cols.codes
        edges = edges_for(values)
        entry: dict[str, Any] = {
            "edges": edges,
            "open_end": len(edges) > 1 and int(values.max()) >= edges[-1] + 1 if values.size else False,
            "all": histogram(values, edges),
            "summary": {"all": summary(values)},
            "by_task": {},
        }
        if values.size and l1_of_code is not None:
            l1v = l1_of_code[vcodes]
            for t in hist_tasks:
                sel = values[l1v == l1_names.index(t)]
                entry["by_task"][t] = histogram(sel, edges)
                entry["summary"][t] = summary(sel)
        hists[name] = entry
    return hists


def _exact_duplicates(chash: np.ndarray, ids: np.ndarray) -> tuple[list[dict[str, Any]], int, int]:
    """Groups of rows with the same content hash: the largest few, samples in any group, number of groups."""
    n = int(ids.size)
    groups: list[dict[str, Any]] = []
    if not n:
        return groups, 0, 0
    order = np.argsort(chash, kind="stable")
    sh = chash[order]
    new = np.concatenate(([True], sh[1:] != sh[:-1]))
    starts = np.flatnonzero(new)
    sizes = np.diff(np.concatenate((starts, [n])))
    dup = sizes >= 2
    total = int(dup.sum())
    samples = int(sizes[dup].sum())
    biggest = np.flatnonzero(dup)[np.argsort(-sizes[dup], kind="stable")][:GROUPS_SHOWN]
    for g in biggest:
        members = np.sort(ids[order[starts[g] : starts[g] + sizes[g]]])
        groups.append({"size": int(sizes[g]), "ids": members[:IDS_PER_GROUP].tolist()})
    return groups, samples, total


def _near_duplicates(
    sig: np.ndarray, chash: np.ndarray, ids: np.ndarray
) -> tuple[list[dict[str, Any]], int, int, float]:
    """Near-duplicate clusters that are not just one exact-duplicate group: the first few, their samples,
    their number, and the seconds the clustering took."""
    t0 = time.perf_counter()
    groups = neardup.clusters(sig)
    seconds = time.perf_counter() - t0
    del sig  # the signatures are the largest thing the statistics hold
    shown: list[dict[str, Any]] = []
    samples = total = 0
    for g in groups:
        if np.unique(chash[g]).size < 2:
            continue
        total += 1
        samples += len(g)
        if len(shown) < GROUPS_SHOWN:
            shown.append({"size": len(g), "ids": ids[g][:IDS_PER_GROUP].tolist()})
    return shown, samples, total, seconds


def _counts(
    n: int,
    tasks: list[tuple[str, str]],
    per_code: np.ndarray,
    l1_counts: Counter[str],
    tag_counts: Counter[str],
) -> dict[str, int]:
    """Samples per browse key (as app.datasets.browse.BrowseFilters.anchor_key names them), so the browser
    shows the count of an unfiltered, task or tag list without counting."""
    counts = {"": n}
    for i, (l1, l2) in enumerate(tasks):
        counts[f"t:{l1}/{l2}"] = int(per_code[i])
    for l1, c in l1_counts.items():
        counts[f"t:{l1}"] = c
    for t, c in tag_counts.items():
        counts[f"g:{t}"] = c
    return counts


def compute_stats(
    engine: Engine,
    *,
    dataset_id: int,
    version: int,
    version_id: int,
    tokenizer_path: Path,
    on_progress: Callable[[float, str], None] | None = None,
) -> tuple[dict[str, Any], BrowseAids]:
    """The statistics dict of a version and its browse aids (for `write_browse_aids`); only reads."""
    params = {"dataset_id": dataset_id, "version": version}
    total = visible_count(engine, params)
    scan = Scan(tokenizer_path=tokenizer_path, total=total)
    started = time.perf_counter()
    scan.run(engine, params, on_progress=on_progress)
    cols = scan.columns()
    ids, n = cols.ids, int(cols.ids.size)
    if on_progress:
        on_progress(1.0, "near duplicates")
    tree, l1_counts, per_code = _task_tree(cols.tasks, cols.codes, n)
    hists = _histograms(cols, tree, l1_counts)
    top_answers = _top(cols.answer_hash, ids, TOP)
    top_openings = _top(cols.opening_hash, ids, TOP)
    top_endings = _top(cols.ending_hash, ids, TOP)
    exact_groups, exact_samples, exact_total = _exact_duplicates(cols.content_hash, ids)
    near_groups, near_samples, near_total, cluster_s = _near_duplicates(
        scan.take_signatures(), cols.content_hash, ids
    )

    # texts for the top lists and group previews
    need = {i for _, i in top_answers + top_openings + top_endings}
    need |= {g["ids"][0] for g in exact_groups + near_groups}
    texts = _texts(engine, sorted(need))
    aids = browse_aids(
        engine, version_id=version_id, ids=ids, codes=cols.codes, tasks=cols.tasks, tag_anchor=scan.tag_anchor
    )
    stats = {
        "stats_version": STATS_VERSION,
        "n_samples": n,
        "has_system": {
            "count": int(cols.has_system.sum()) if n else 0,
            "share": float(cols.has_system.mean()) if n else 0.0,
        },
        "task_tree": tree,
        "histograms": hists,
        "token_sample": {
            "rows": int(cols.metrics["prompt_tokens"].size) if "prompt_tokens" in cols.metrics else 0,
            "of": n,
            "available": "prompt_tokens" in cols.metrics,
        },
        "top_answers": [
            {"count": c, "id": i, "text": texts.get(i, ("", ""))[1][:300]} for c, i in top_answers
        ],
        "top_openings": [
            {"count": c, "id": i, "text": texts.get(i, ("", ""))[0][:OPENING]} for c, i in top_openings
        ],
        "top_endings": [
            {"count": c, "id": i, "text": texts.get(i, ("", ""))[0][-ENDING:]} for c, i in top_endings
        ],
        "exact_duplicates": {
            "groups": exact_total,
            "samples": exact_samples,
            "shown": [g | {"preview": texts.get(g["ids"][0], ("", ""))[0][:80]} for g in exact_groups],
        },
        "near_duplicates": {
            "groups": near_total,
            "samples": near_samples,
            "threshold": neardup.THRESHOLD,
            "seconds": round(scan.near_s + cluster_s, 2),
            "num_perm": neardup.NUM_PERM,
            "bands": neardup.BANDS,
            "shingle": neardup.SHINGLE,
            "shown": [g | {"preview": texts.get(g["ids"][0], ("", ""))[0][:80]} for g in near_groups],
        },
        "tags": [
            {"tag": t, "count": c} for t, c in sorted(scan.tag_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "counts": _counts(n, cols.tasks, per_code, l1_counts, scan.tag_counts),
        "anchors": len(aids.anchors),
    }
    stats["seconds"] = round(time.perf_counter() - started, 2)
    return stats, aids


def _texts(engine: Engine, ids: list[int]) -> dict[int, tuple[str, str]]:
    if not ids:
        return {}
    from sqlalchemy import bindparam

    stmt = text("SELECT id, prompt, answer FROM sample WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    with engine.connect() as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(stmt, {"ids": ids})}
