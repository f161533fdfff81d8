"""The statistics' one streaming pass over a version's visible rows (keyset batches by id).

Texts are not kept, so a million samples fit: per row, the lengths, turns, task
code, 64-bit hashes of the answer and of the prompt's opening and ending, and the
content hash; per batch, MinHash signatures for near duplicates
(app.datasets.neardup). Token counts use the embedded model's tokenizer on a
uniform sample of at most TOKEN_SAMPLE rows: tokenizing 1M samples costs minutes
on two cores while a 50k-row sample gives the same histogram shape. Tags are
counted as they stream by, with their page anchors for the browser.
"""

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.datasets import neardup
from app.datasets.browse_aids import PAGE

BATCH = 20_000
TOKEN_SAMPLE = 50_000
OPENING = 15  # characters of a prompt's opening, and of its ending, hashed to find repeated ones
ENDING = 8


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


def _sample_mask(ids: np.ndarray, rate: float) -> np.ndarray:
    """A deterministic uniform sample by a multiplicative hash of the id."""
    if rate >= 1:
        return np.ones(ids.shape[0], dtype=bool)
    h = (ids.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return h < np.uint64(int(rate * 2**32))


def _hash64(strings: list[str]) -> np.ndarray:
    return np.fromiter((hash(s) for s in strings), dtype=np.int64, count=len(strings))


def visible_count(engine: Engine, params: dict[str, int]) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM sample s WHERE s.dataset_id = :dataset_id AND s.added_in <= :version"
                " AND (s.removed_in IS NULL OR s.removed_in > :version)"
            ),
            params,
        ).scalar_one()


def _joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


@dataclass
class Columns:
    """The pass's arrays joined: one entry per visible row, in id order (the token counts: sampled rows)."""

    ids: np.ndarray
    codes: np.ndarray  # task code per row: an index into `tasks`
    tasks: list[tuple[str, str]]  # (l1, l2) per task code
    metrics: dict[str, np.ndarray]  # what the histograms show; *_tokens only when the tokenizer exists
    tok_codes: np.ndarray | None  # task code per row of the token sample
    has_system: np.ndarray
    answer_hash: np.ndarray
    opening_hash: np.ndarray
    ending_hash: np.ndarray
    content_hash: np.ndarray


class Scan:
    """The streaming pass: per batch of rows, the numbers kept per row (never the texts), tag counts and
    tag page anchors, and MinHash signatures; the seconds spent on signatures count as near-duplicate time."""

    def __init__(self, *, tokenizer_path: Path, total: int) -> None:
        self.tokenizer_path, self.total = tokenizer_path, total
        self.rate = min(1.0, TOKEN_SAMPLE / total) if total else 1.0
        self.ids: list[np.ndarray] = []
        self.p_chars: list[np.ndarray] = []
        self.a_chars: list[np.ndarray] = []
        self.turns: list[np.ndarray] = []
        self.sys: list[np.ndarray] = []
        self.task_codes: list[np.ndarray] = []
        self.ans_h: list[np.ndarray] = []
        self.open_h: list[np.ndarray] = []
        self.end_h: list[np.ndarray] = []
        self.content: list[np.ndarray] = []
        self.tok_ids: list[np.ndarray] = []
        self.p_tok: list[np.ndarray] = []
        self.a_tok: list[np.ndarray] = []
        self.sigs: list[np.ndarray] = []
        self.task_index: dict[tuple[str, str], int] = {}
        self.tag_counts: Counter[str] = Counter()
        self.tag_anchor: dict[str, list[tuple[int, int]]] = {}
        self.near_s = 0.0

    def run(
        self,
        engine: Engine,
        params: dict[str, int],
        *,
        on_progress: Callable[[float, str], None] | None,
    ) -> None:
        """Reads the visible rows in keyset batches by id and adds each batch."""
        last, seen = 0, 0
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
                last = self.add(rows)
                seen += len(rows)
                if on_progress:
                    on_progress(seen / max(self.total, 1), "statistics")

    def add(self, rows: Sequence[Any]) -> int:
        """One batch of rows (as selected in `run`); returns its last id."""
        cols = list(zip(*rows, strict=False))
        ids = np.asarray(cols[0], dtype=np.int64)
        prompts, answers = list(cols[1]), list(cols[2])
        self.ids.append(ids)
        self.p_chars.append(np.asarray(cols[8], dtype=np.int64))
        self.a_chars.append(np.asarray(cols[9], dtype=np.int64))
        self.turns.append(np.asarray(cols[7], dtype=np.int64))
        self.sys.append(np.asarray(cols[6], dtype=bool))
        task_index = self.task_index
        self.task_codes.append(
            np.fromiter(
                (
                    task_index.setdefault((a, b), len(task_index))
                    for a, b in zip(cols[3], cols[4], strict=False)
                ),
                dtype=np.int32,
                count=len(rows),
            )
        )
        self.ans_h.append(_hash64(answers))
        self.open_h.append(_hash64([p[:OPENING] for p in prompts]))
        self.end_h.append(_hash64([p[-ENDING:] for p in prompts]))
        self.content.append(
            np.fromiter((int(h[:16], 16) for h in cols[10]), dtype=np.uint64, count=len(rows))
        )
        tag_counts = self.tag_counts
        for sid, tags in zip(cols[0], cols[5], strict=False):
            if tags:
                for t in tags.split(","):
                    c = tag_counts[t] = tag_counts[t] + 1
                    if c % PAGE == 0:
                        self.tag_anchor.setdefault(t, []).append((c // PAGE + 1, sid))
        mask = _sample_mask(ids, self.rate)
        if mask.any():
            pick = np.flatnonzero(mask).tolist()
            pt = token_counts([prompts[i] for i in pick], self.tokenizer_path)
            if pt is not None:
                at = token_counts([answers[i] for i in pick], self.tokenizer_path)
                assert at is not None  # the same tokenizer file
                self.tok_ids.append(ids[mask])
                self.p_tok.append(pt)
                self.a_tok.append(at)
        t0 = time.perf_counter()
        self.sigs.append(neardup.signatures([p + "\n" + a for p, a in zip(prompts, answers, strict=False)]))
        self.near_s += time.perf_counter() - t0
        return int(ids[-1])

    def columns(self) -> Columns:
        ids = _joined(self.ids, np.int64)
        codes = _joined(self.task_codes, np.int32)
        tasks: list[tuple[str, str]] = [("", "")] * len(self.task_index)
        for k, i in self.task_index.items():
            tasks[i] = k
        metrics = {
            "prompt_chars": _joined(self.p_chars, np.int64),
            "answer_chars": _joined(self.a_chars, np.int64),
            "turns": _joined(self.turns, np.int64),
        }
        tok_codes = None
        if self.tok_ids:
            tid = np.concatenate(self.tok_ids)
            metrics["prompt_tokens"] = np.concatenate(self.p_tok)
            metrics["answer_tokens"] = np.concatenate(self.a_tok)
            tok_codes = codes[np.searchsorted(ids, tid)]
        return Columns(
            ids=ids,
            codes=codes,
            tasks=tasks,
            metrics=metrics,
            tok_codes=tok_codes,
            has_system=_joined(self.sys, bool),
            answer_hash=_joined(self.ans_h, np.int64),
            opening_hash=_joined(self.open_h, np.int64),
            ending_hash=_joined(self.end_h, np.int64),
            content_hash=_joined(self.content, np.uint64),
        )

    def take_signatures(self) -> np.ndarray:
        """All MinHash signatures as one array, no longer held here (they are the largest thing kept)."""
        sig = np.concatenate(self.sigs) if self.sigs else np.zeros((0, neardup.NUM_PERM), np.uint32)
        self.sigs = []
        return sig
