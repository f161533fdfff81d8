"""Statistics of one dataset version, computed once in the background and stored as JSON.

One streaming pass over the version's visible rows (keyset batches by id) feeds
numpy arrays: lengths, turns, task codes, 64-bit hashes of answers and of prompt
openings/endings (the texts themselves are fetched afterwards for the top few),
content hashes for exact duplicates, and MinHash signatures for near duplicates
(app.datasets.neardup). Token counts use the embedded model's tokenizer on a
uniform sample of at most TOKEN_SAMPLE rows: tokenizing 1M samples costs minutes
on two cores while a 50k-row sample gives the same histogram shape.

The same pass computes what the browser needs to be fast at any depth: page
anchors per browse key and the version's visible id ranges (app.datasets.browse).
"""

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from app.datasets import neardup

log = logging.getLogger("sftlab.stats")

BATCH = 20_000
TOKEN_SAMPLE = 50_000
TOP = 30
OPENING = 15
ENDING = 8
HIST_TASKS = 30  # per-task histograms for the largest task_types
MAX_BINS = 40
GROUPS_SHOWN = 25
IDS_PER_GROUP = 12
PAGE = 50

STATS_VERSION = 1


@lru_cache(maxsize=2)
def _tokenizer(path: str):  # noqa: ANN202
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def token_counts(texts: list[str], tokenizer_path: Path) -> np.ndarray | None:
    """Tokens per text (no special tokens), or None when the tokenizer file is missing."""
    if not tokenizer_path.exists():
        return None
    enc = _tokenizer(str(tokenizer_path)).encode_batch(texts, add_special_tokens=False)
    return np.fromiter((len(e.ids) for e in enc), dtype=np.int64, count=len(texts))


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
    The last bin is open-ended (it holds the long tail)."""
    if values.size == 0:
        return [0]
    top = int(values.max())
    if top < MAX_BINS:
        return list(range(0, top + 1))
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


def _sample_mask(ids: np.ndarray, rate: float) -> np.ndarray:
    """A deterministic uniform sample by a multiplicative hash of the id."""
    if rate >= 1:
        return np.ones(ids.shape[0], dtype=bool)
    h = (ids.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return h < np.uint64(int(rate * 2**32))


def _hash64(strings: list[str]) -> np.ndarray:
    return np.fromiter((hash(s) for s in strings), dtype=np.int64, count=len(strings))


def _top(hashes: np.ndarray, ids: np.ndarray, k: int) -> list[tuple[int, int]]:
    """(count, first id) of the k most frequent values that occur at least twice."""
    if hashes.size == 0:
        return []
    uniq, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    order = np.lexsort((ids[first], -counts))[:k]
    return [(int(counts[i]), int(ids[first[i]])) for i in order if counts[i] >= 2]


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


@dataclass
class BrowseAids:
    """What the sample browser needs to be fast at any depth: page anchors and the visible id ranges."""

    version_id: int
    anchors: list[dict[str, Any]]  # rows of sample_fts_anchor as bind parameters
    ranges: list[list[int]]


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
    with engine.connect() as conn:
        total = conn.execute(
            text(
                "SELECT count(*) FROM sample s WHERE s.dataset_id = :dataset_id AND s.added_in <= :version"
                " AND (s.removed_in IS NULL OR s.removed_in > :version)"
            ),
            params,
        ).scalar_one()
    rate = min(1.0, TOKEN_SAMPLE / total) if total else 1.0
    ids_l, p_chars, a_chars, turns, sys_l, task_codes = [], [], [], [], [], []
    ans_h, open_h, end_h, content = [], [], [], []
    tok_ids: list[np.ndarray] = []
    p_tok: list[np.ndarray] = []
    a_tok: list[np.ndarray] = []
    sigs = []
    task_index: dict[tuple[str, str], int] = {}
    tag_counts: Counter[str] = Counter()
    tag_anchor: dict[str, list[tuple[int, int]]] = {}
    last, seen = 0, 0
    near_s = 0.0
    started = time.perf_counter()
    plus = "+" if engine.dialect.name == "sqlite" else ""
    sql = text(
        "SELECT s.id, s.prompt, s.answer, s.task_l1, s.task_l2, s.tags, s.has_system, s.n_turns, s.prompt_chars,"
        f" s.answer_chars, s.content_hash FROM sample s WHERE s.id > :last AND {plus}s.dataset_id = :dataset_id"
        " AND s.added_in <= :version AND (s.removed_in IS NULL OR s.removed_in > :version) ORDER BY s.id LIMIT :lim"
    )
    with engine.connect() as conn:
        while True:
            rows = conn.execute(sql, {**params, "last": last, "lim": BATCH}).all()
            if not rows:
                break
            cols = list(zip(*rows, strict=False))
            ids = np.asarray(cols[0], dtype=np.int64)
            prompts, answers = list(cols[1]), list(cols[2])
            ids_l.append(ids)
            p_chars.append(np.asarray(cols[8], dtype=np.int64))
            a_chars.append(np.asarray(cols[9], dtype=np.int64))
            turns.append(np.asarray(cols[7], dtype=np.int64))
            sys_l.append(np.asarray(cols[6], dtype=bool))
            task_codes.append(
                np.fromiter(
                    (
                        task_index.setdefault((a, b), len(task_index))
                        for a, b in zip(cols[3], cols[4], strict=False)
                    ),
                    dtype=np.int32,
                    count=len(rows),
                )
            )
            ans_h.append(_hash64(answers))
            open_h.append(_hash64([p[:OPENING] for p in prompts]))
            end_h.append(_hash64([p[-ENDING:] for p in prompts]))
            content.append(np.fromiter((int(h[:16], 16) for h in cols[10]), dtype=np.uint64, count=len(rows)))
            for sid, tags in zip(cols[0], cols[5], strict=False):
                if tags:
                    for t in tags.split(","):
                        c = tag_counts[t] = tag_counts[t] + 1
                        if c % PAGE == 0:
                            tag_anchor.setdefault(t, []).append((c // PAGE + 1, sid))
            mask = _sample_mask(ids, rate)
            if mask.any():
                pick = np.flatnonzero(mask).tolist()
                pt = token_counts([prompts[i] for i in pick], tokenizer_path)
                if pt is not None:
                    at = token_counts([answers[i] for i in pick], tokenizer_path)
                    assert at is not None  # the same tokenizer file
                    tok_ids.append(ids[mask])
                    p_tok.append(pt)
                    a_tok.append(at)
            t0 = time.perf_counter()
            sigs.append(neardup.signatures([p + "\n" + a for p, a in zip(prompts, answers, strict=False)]))
            near_s += time.perf_counter() - t0
            last = int(ids[-1])
            seen += len(rows)
            if on_progress:
                on_progress(seen / max(total, 1), "statistics")
    cat = np.concatenate
    ids = cat(ids_l) if ids_l else np.zeros(0, np.int64)
    n = int(ids.size)
    codes = cat(task_codes) if task_codes else np.zeros(0, np.int32)
    tasks: list[tuple[str, str]] = [("", "")] * len(task_index)
    for k, i in task_index.items():
        tasks[i] = k
    metrics = {
        "prompt_chars": cat(p_chars) if n else np.zeros(0, np.int64),
        "answer_chars": cat(a_chars) if n else np.zeros(0, np.int64),
        "turns": cat(turns) if n else np.zeros(0, np.int64),
    }
    tok_codes = None
    if tok_ids:
        tid = cat(tok_ids)
        metrics["prompt_tokens"] = cat(p_tok)
        metrics["answer_tokens"] = cat(a_tok)
        tok_codes = codes[np.searchsorted(ids, tid)]
    if on_progress:
        on_progress(1.0, "near duplicates")

    # task tree
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
    l1_of_code = np.asarray([sorted(l1_counts).index(t[0]) for t in tasks], dtype=np.int32) if tasks else None
    l1_names = sorted(l1_counts)

    # histograms, overall and for the largest task_types (level 1)
    hist_tasks: list[str] = [str(t["l1"]) for t in tree[:HIST_TASKS]]
    hists: dict[str, Any] = {}
    for name, values in metrics.items():
        vcodes = tok_codes if name.endswith("_tokens") else codes
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

    # repeated answers, prompt openings and endings
    all_ids = ids
    top_answers = _top(cat(ans_h) if n else np.zeros(0, np.int64), all_ids, TOP)
    top_openings = _top(cat(open_h) if n else np.zeros(0, np.int64), all_ids, TOP)
    top_endings = _top(cat(end_h) if n else np.zeros(0, np.int64), all_ids, TOP)

    # exact duplicates by content hash
    chash = cat(content) if n else np.zeros(0, np.uint64)
    exact_groups, exact_samples, exact_total = [], 0, 0
    if n:
        order = np.argsort(chash, kind="stable")
        sh = chash[order]
        new = np.concatenate(([True], sh[1:] != sh[:-1]))
        starts = np.flatnonzero(new)
        sizes = np.diff(np.concatenate((starts, [n])))
        dup = sizes >= 2
        exact_total = int(dup.sum())
        exact_samples = int(sizes[dup].sum())
        biggest = np.flatnonzero(dup)[np.argsort(-sizes[dup], kind="stable")][:GROUPS_SHOWN]
        for g in biggest:
            members = np.sort(ids[order[starts[g] : starts[g] + sizes[g]]])
            exact_groups.append({"size": int(sizes[g]), "ids": members[:IDS_PER_GROUP].tolist()})

    # near duplicates: clusters that are not just one exact-duplicate group
    sig = np.concatenate(sigs) if sigs else np.zeros((0, neardup.NUM_PERM), np.uint32)
    del sigs
    t0 = time.perf_counter()
    groups = neardup.clusters(sig)
    near_s += time.perf_counter() - t0
    del sig
    near_groups: list[dict[str, Any]] = []
    near_samples = near_total = 0
    for g in groups:
        if np.unique(chash[g]).size < 2:
            continue
        near_total += 1
        near_samples += len(g)
        if len(near_groups) < GROUPS_SHOWN:
            near_groups.append({"size": len(g), "ids": ids[g][:IDS_PER_GROUP].tolist()})

    # texts for the top lists and group previews
    need = {i for _, i in top_answers + top_openings + top_endings}
    need |= {g["ids"][0] for g in exact_groups + near_groups}
    texts = _texts(engine, sorted(need))
    aids = _browse_aids(
        engine, version_id=version_id, ids=ids, codes=codes, tasks=tasks, tag_anchor=tag_anchor
    )
    counts = {"": n}
    for i, (l1, l2) in enumerate(tasks):
        counts[f"t:{l1}/{l2}"] = int(per_code[i])
    for l1, c in l1_counts.items():
        counts[f"t:{l1}"] = c
    for t, c in tag_counts.items():
        counts[f"g:{t}"] = c
    stats = {
        "stats_version": STATS_VERSION,
        "n_samples": n,
        "has_system": {
            "count": int(cat(sys_l).sum()) if n else 0,
            "share": float(cat(sys_l).mean()) if n else 0.0,
        },
        "task_tree": tree,
        "histograms": hists,
        "token_sample": {
            "rows": int(metrics["prompt_tokens"].size) if "prompt_tokens" in metrics else 0,
            "of": n,
            "available": "prompt_tokens" in metrics,
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
            "seconds": round(near_s, 2),
            "num_perm": neardup.NUM_PERM,
            "bands": neardup.BANDS,
            "shingle": neardup.SHINGLE,
            "shown": [g | {"preview": texts.get(g["ids"][0], ("", ""))[0][:80]} for g in near_groups],
        },
        "tags": [
            {"tag": t, "count": c} for t, c in sorted(tag_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "counts": counts,
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


def _browse_aids(
    engine: Engine,
    *,
    version_id: int,
    ids: np.ndarray,
    codes: np.ndarray,
    tasks: list,
    tag_anchor: dict[str, list[tuple[int, int]]],
) -> BrowseAids:
    """Page anchors (all, per task_type l1 and l1/l2, per tag) and visible id ranges."""
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
