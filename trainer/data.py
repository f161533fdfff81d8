"""Training data: read the messages JSONL, validate it, mix per task_type, order it, tokenise it.

Why so strict: bad data must fail before training starts, with ``file:line: reason`` for every bad
sample, not as a shape error an hour in. Why so deterministic: the data order is part of a run's
identity (resume, comparisons, the recorded counts), so every random choice takes an explicit seed and
uses ``random.Random`` seeded from strings, which is stable across Python versions and machines.

The pipeline, in order (``prepare_data`` runs it all):

1. ``read_samples``: parse and validate each line (messages, roles, an assistant turn, task_type).
2. ``split_heldout``: a held-out fraction per task_type (or a given eval file).
3. ``mix_samples``: per task_type weights, ``×2`` repeats, ``×0.5`` subsamples.
4. ``tokenize_samples``: render with the chat template (``trainer.render``) and enforce max_seq_len.
5. ``epoch_order``: the order of the whole run, fractional epochs included.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from trainer.render import ROLES, RenderError, RenderOptions, render_sample

_WS = re.compile(r"\s+")


class DataError(ValueError):
    """Bad data or a bad data option; the message lists the problems, each sample named where it comes from.

    `longest`: with samples over max_seq_len, the longest one's tokens (what max_seq_len would need).
    `problems`: every problem sample (the message names only the first SHOWN of each kind), as dicts
    {"where", "task_type", "problem", "tokens", "limit", "detail"}; write_problems() keeps them for the
    pages that offer the whole list as a file.
    """

    def __init__(self, message: str, *, longest: int | None = None, problems: list[dict] | None = None):
        super().__init__(message)
        self.longest = longest
        self.problems = problems or []


PROBLEMS_FILE = "data_problems.jsonl"  # beside the run's (or the estimate's) other outputs
MAX_PROBLEMS = 100_000  # kept per refusal: enough to fix the data from, bounded on disk


def problem(
    where: str, task_type: str, kind: str, *, tokens: int = 0, limit: int = 0, detail: str = ""
) -> dict:
    """One problem sample as write_problems() records it (`kind`: too_long, no_supervised, render)."""
    return {
        "where": where,
        "task_type": task_type,
        "problem": kind,
        "tokens": tokens,
        "limit": limit,
        "detail": detail,
    }


def write_problems(path: Path, problems: list[dict]) -> None:
    """The problem samples as JSON lines (at most MAX_PROBLEMS), written whole or not at all."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for p in problems[:MAX_PROBLEMS]:
            fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    tmp.replace(path)


@dataclass
class Sample:
    """One validated line of the messages JSONL."""

    messages: list[dict]
    task_l1: str
    task_l2: str
    tags: list[str] = field(default_factory=list)
    tools: list | None = None
    source: str = ""
    line: int = 0
    ref: str = ""  # the line's "id": where the sample comes from, as its owner knows it ("pclue v2 #1234")

    @property
    def task_type(self) -> str:
        return f"{self.task_l1}/{self.task_l2}" if self.task_l2 else self.task_l1

    @property
    def where(self) -> str:
        return self.ref or f"{self.source}:{self.line}"


@dataclass
class TokenizedSample:
    """A rendered sample, what packing and collation consume."""

    input_ids: list[int]
    supervised: list[bool]
    special: list[bool]
    task_l1: str
    task_l2: str
    index: int  # position of the sample in the (mixed) dataset
    where: str = ""  # how messages name it: its "id" when the line has one, else file:line
    location: str = ""  # file:line, always (the run's sample viewer reads the line back)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_supervised(self) -> int:
        return sum(self.supervised[1:])

    @property
    def task_type(self) -> str:
        return f"{self.task_l1}/{self.task_l2}" if self.task_l2 else self.task_l1


def _norm(text: str) -> str:
    # Any run of Unicode whitespace (BELLE writes "closed\u00a0qa") becomes one ASCII space.
    return _WS.sub(" ", text).strip()


def parse_task_type(value) -> tuple[str, str]:
    """Split ``"level1/level2"`` into its two levels, normalising whitespace; level 2 may be empty.

    >>> parse_task_type(" pclue / nli ")
    ('pclue', 'nli')
    >>> parse_task_type("belle/closed\\u00a0 qa")
    ('belle', 'closed qa')
    >>> parse_task_type("chat/")
    ('chat', '')
    >>> parse_task_type("chat")
    ('chat', '')
    """
    if not isinstance(value, str):
        raise ValueError(f"task_type must be a string, got {type(value).__name__}")
    l1, _, l2 = value.partition("/")
    l1, l2 = _norm(l1), _norm(l2)
    if not l1:
        raise ValueError(f"task_type {value!r} has an empty level 1")
    return l1, l2


def _check_record(obj) -> str | None:
    """The reason a parsed line is not a valid sample, or None."""
    if not isinstance(obj, dict):
        return "a sample must be a JSON object"
    if "messages" not in obj:
        return "missing field 'messages'"
    if "task_type" not in obj:
        return "missing field 'task_type'"
    msgs = obj["messages"]
    if not isinstance(msgs, list) or not msgs:
        return "'messages' must be a non-empty list"
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            return f"messages[{i}] must be an object"
        if "role" not in m:
            return f"messages[{i}]: missing field 'role'"
        if m["role"] not in ROLES:
            return f"messages[{i}]: bad role {m['role']!r} (expected one of {', '.join(ROLES)})"
        content = m.get("content")
        if content is None and not m.get("tool_calls"):
            return f"messages[{i}]: missing field 'content'"
        if content is not None and not isinstance(content, str):
            return f"messages[{i}]: 'content' must be a string"
    if not any(m["role"] == "assistant" for m in msgs):
        return "no assistant turn"
    tags = obj.get("tags", [])
    if not isinstance(tags, list):
        return "'tags' must be a list"
    return None


def read_samples(path, *, max_errors: int = 50) -> list[Sample]:
    """Read and validate a messages JSONL; raise ``DataError`` listing every bad line.

    Blank lines are skipped; line numbers are 1-based as editors show them.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file does not exist")
    samples, errors = [], []
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError as exc:
                errors.append(f"{path}:{lineno}: invalid JSON ({exc})")
                continue
            reason = _check_record(obj)
            if reason is None:
                try:
                    l1, l2 = parse_task_type(obj["task_type"])
                except ValueError as exc:
                    reason = str(exc)
            if reason is not None:
                errors.append(f"{path}:{lineno}: {reason}")
                continue
            ref = obj.get("id") if isinstance(obj.get("id"), str) else ""
            samples.append(
                Sample(
                    obj["messages"],
                    l1,
                    l2,
                    list(obj.get("tags", [])),
                    obj.get("tools"),
                    str(path),
                    lineno,
                    ref,
                )
            )
    if errors:
        more = f"\n... and {len(errors) - max_errors} more" if len(errors) > max_errors else ""
        raise DataError(f"{len(errors)} bad sample(s):\n" + "\n".join(errors[:max_errors]) + more)
    if not samples:
        raise DataError(f"{path}: no samples")
    return samples


def _rng(seed: int, *parts) -> random.Random:
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def _groups(samples: list) -> dict[tuple[str, str], list[int]]:
    groups: dict[tuple[str, str], list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault((s.task_l1, s.task_l2), []).append(i)
    return groups


def split_heldout(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Hold out ``round(fraction * n)`` samples of each task_type (so eval has the same breakdown).

    >>> s = [Sample([], "a", "", line=i) for i in range(10)]
    >>> train, held = split_heldout(s, 0.2, seed=0)
    >>> len(train), len(held)
    (8, 2)
    """
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"eval fraction must be in [0, 1), got {fraction}")
    held: set[int] = set()
    for key, idx in sorted(_groups(samples).items()):
        k = round(fraction * len(idx))
        held.update(_rng(seed, "heldout", *key).sample(idx, k))
    return [s for i, s in enumerate(samples) if i not in held], [
        s for i, s in enumerate(samples) if i in held
    ]


def parse_weight(value) -> float:
    """A mixing weight: a number, or a string like ``"×2"``, ``"x0.5"``, ``"*3"``.

    >>> parse_weight("×2"), parse_weight("x0.5"), parse_weight(1)
    (2.0, 0.5, 1.0)
    """
    if isinstance(value, str):
        value = value.strip().lstrip("×xX*").strip()
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise DataError(f"mix weight {value!r} is not a number") from None
    if not math.isfinite(w) or w < 0:
        raise DataError(f"mix weight {value!r} must be a finite number >= 0")
    return w


def resolve_mix(samples: list, mix: dict | None) -> dict[tuple[str, str], float]:
    """Weight per (level1, level2) group: a level-2 key wins over its level-1 key; default 1.

    Keys that match no task_type of the data are an error (a typo would silently change nothing).
    """
    groups = _groups(samples)
    weights = dict.fromkeys(groups, 1.0)
    if not mix:
        return weights
    l1_known = {k[0] for k in groups}
    l1_keys, l2_keys = {}, {}
    for key, value in mix.items():
        try:
            l1, l2 = parse_task_type(key)
        except ValueError as exc:
            raise DataError(f"mix: {exc}") from None
        w = parse_weight(value)
        if "/" in key and l2:
            if (l1, l2) not in groups:
                raise DataError(
                    f"mix: unknown task_type {key!r} (known: {', '.join(sorted(_names(groups)))})"
                )
            l2_keys[(l1, l2)] = w
        else:
            if l1 not in l1_known:
                raise DataError(
                    f"mix: unknown task_type {key!r} (known: {', '.join(sorted(_names(groups)))})"
                )
            l1_keys[l1] = w
    for g in groups:
        weights[g] = l2_keys.get(g, l1_keys.get(g[0], 1.0))
    return weights


def _names(groups) -> set[str]:
    return {f"{a}/{b}" if b else a for a, b in groups} | {a for a, _ in groups}


def mix_samples(samples: list, mix: dict | None, seed: int) -> list:
    """Apply per-task_type weights: ``round(w * n)`` samples per group, deterministic with ``seed``.

    Whole copies first (×2 = every sample twice), then a seeded subsample for the fraction
    (×0.5 = a fixed half, ×1.5 = every sample once plus a fixed half). Dataset order is kept.

    >>> s = [Sample([], "a", "", line=i) for i in range(4)] + [Sample([], "b", "", line=9)]
    >>> [x.task_l1 for x in mix_samples(s, {"a": 0.5, "b": "×2"}, seed=0)]
    ['a', 'a', 'b', 'b']
    """
    weights = resolve_mix(samples, mix)
    picked: list[int] = []
    for key, idx in _groups(samples).items():
        w = weights[key]
        whole = int(w)
        extra = round(w * len(idx)) - whole * len(idx)
        picked.extend(idx * whole)
        picked.extend(sorted(_rng(seed, "mix", *key).sample(idx, extra)))
    picked.sort()
    return [samples[i] for i in picked]


def epoch_order(n: int, epochs: float, seed: int) -> list[int]:
    """Indices into the dataset for the whole run: one seeded shuffle per epoch, the last one cut.

    ``epochs=1.1`` is all the data, then the first 10% of the next epoch's shuffle.

    >>> len(epoch_order(10, 1.5, seed=0)), sorted(epoch_order(10, 1.0, seed=0)) == list(range(10))
    (15, True)
    >>> epoch_order(10, 2, seed=0)[:10] == epoch_order(10, 1, seed=0)
    True
    """
    if epochs <= 0:
        raise DataError(f"epochs must be > 0, got {epochs}")
    total = round(epochs * n)
    order: list[int] = []
    e = 0
    while len(order) < total:
        perm = list(range(n))
        _rng(seed, "epoch", e).shuffle(perm)
        order.extend(perm[: total - len(order)])
        e += 1
    return order


@dataclass
class Dropped:
    """A sample left out of the run, and why (``too_long`` under over_length=drop, or ``no_supervised``: its
    answer was cut away by truncation, or the template gave it no trained token)."""

    where: str
    task_type: str
    reason: str
    tokens: int

    def to_dict(self) -> dict:
        return {
            "where": self.where,
            "task_type": self.task_type,
            "reason": self.reason,
            "tokens": self.tokens,
        }

    def as_problem(self, max_seq_len: int) -> dict:
        return problem(self.where, self.task_type, self.reason, tokens=self.tokens, limit=max_seq_len)


SHOWN = 20  # problems listed in a message; the rest are counted


def too_long_message(long: list[tuple[str, str, int]], n_samples: int, max_seq_len: int) -> str:
    """One summary of the samples over max_seq_len with the ways out, then the first few of them."""
    longest = max(n for _, _, n in long)
    lines = [
        f"{len(long):,} of {n_samples:,} samples are longer than data.max_seq_len {max_seq_len:,} tokens "
        f"(longest {longest:,}): raise data.max_seq_len, or set data.over_length to truncate or drop"
    ]
    lines += [f"  {where} ({task}): {n:,} tokens" for where, task, n in long[:SHOWN]]
    if len(long) > SHOWN:
        lines.append(f"  ... and {len(long) - SHOWN:,} more")
    return "\n".join(lines)


def tokenize_samples(
    samples: list[Sample],
    tokenizer,
    options: RenderOptions | None = None,
    *,
    max_seq_len: int,
    over_length: str = "error",
) -> tuple[list[TokenizedSample], list[Dropped]]:
    """Render every sample; returns (tokenized, dropped).

    Raises ``DataError`` for templates that cannot render a sample and, with over_length "error", for
    samples longer than ``max_seq_len`` (one summary, the longest named). "truncate" cuts the tail; a
    sample left without any supervised token is then dropped and reported rather than trained on. "drop"
    leaves long samples out.
    """
    out: list[TokenizedSample] = []
    dropped: list[Dropped] = []
    errors: list[tuple[str, str, str]] = []  # (where, task_type, why)
    long: list[tuple[str, str, int]] = []
    for i, s in enumerate(samples):
        try:
            r = render_sample(tokenizer, s.messages, options, tools=s.tools)
        except RenderError as exc:
            errors.append((s.where, s.task_type, str(exc)))
            continue
        ids, sup, spec = r.input_ids, r.supervised, r.special
        if len(ids) > max_seq_len:
            if over_length == "error":
                long.append((s.where, s.task_type, len(ids)))
                continue
            if over_length == "drop":
                dropped.append(Dropped(s.where, s.task_type, "too_long", len(ids)))
                continue
            ids, sup, spec = ids[:max_seq_len], sup[:max_seq_len], spec[:max_seq_len]
        t = TokenizedSample(ids, sup, spec, s.task_l1, s.task_l2, i, s.where, f"{s.source}:{s.line}")
        if t.n_supervised == 0:
            dropped.append(Dropped(s.where, s.task_type, "no_supervised", len(r.input_ids)))
            continue
        out.append(t)
    problems = []
    if long:
        problems.append(too_long_message(long, len(samples), max_seq_len))
    if errors:
        more = f"\n  ... and {len(errors) - SHOWN:,} more" if len(errors) > SHOWN else ""
        problems.append(
            f"{len(errors):,} sample(s) the chat template cannot render:\n  "
            + "\n  ".join(f"{where} ({task}): {why}" for where, task, why in errors[:SHOWN])
            + more
        )
    if problems:
        listed = [problem(w, t, "too_long", tokens=n, limit=max_seq_len) for w, t, n in long]
        listed += [problem(w, t, "render", detail=why) for w, t, why in errors]
        raise DataError(
            "\n".join(problems), longest=max((n for _, _, n in long), default=None), problems=listed
        )
    return out, dropped


def no_supervised_message(dropped: list[Dropped], n_samples: int, max_seq_len: int) -> str:
    """Why no training sample is left to train on, and which samples."""
    cut = [d for d in dropped if d.reason == "no_supervised" and d.tokens > max_seq_len]
    if len(cut) == len(dropped) and cut:
        why = (
            f"truncation at data.max_seq_len {max_seq_len:,} cut away every answer "
            "(the prompts alone fill the sequence): raise data.max_seq_len"
        )
    elif all(d.reason == "too_long" for d in dropped):
        why = f"every sample is longer than data.max_seq_len {max_seq_len:,} and over_length drops them"
    else:
        why = "the chat template gives none of them a trained token (check loss.scope and the template)"
    shown = "\n".join(
        f"  {d.where} ({d.task_type}): {d.tokens:,} tokens, {d.reason}" for d in dropped[:SHOWN]
    )
    more = f"\n  ... and {len(dropped) - SHOWN:,} more" if len(dropped) > SHOWN else ""
    return f"no training sample has a supervised token ({n_samples:,} read): {why}\n{shown}{more}"


def count_by_task(samples) -> dict[str, int]:
    """Samples per task_type, sorted by name."""
    return dict(sorted(Counter(s.task_type for s in samples).items()))


@dataclass
class DataPlan:
    """Everything the loop needs, and everything the run directory should record."""

    train: list[TokenizedSample]  # the mixed dataset; ``order`` indexes into it
    eval: list[TokenizedSample]
    order: list[int]  # the run's sample order, all epochs
    counts: dict  # per task_type counts at each stage, for the run directory
    seed: int


def prepare_data(
    train_path,
    tokenizer,
    *,
    options: RenderOptions | None = None,
    max_seq_len: int,
    over_length: str = "error",
    mix: dict | None = None,
    epochs: float = 1.0,
    seed: int = 0,
    eval_fraction: float = 0.0,
    eval_path=None,
) -> DataPlan:
    """Run the whole data pipeline; every error surfaces here, before any model is loaded."""
    samples = read_samples(train_path)
    if eval_path is not None:
        train, held = samples, read_samples(eval_path)
    else:
        train, held = split_heldout(samples, eval_fraction, seed)
    mixed = mix_samples(train, mix, seed)
    if not mixed:
        raise DataError("the mix leaves no training sample")
    train_tok, dropped = tokenize_samples(
        mixed, tokenizer, options, max_seq_len=max_seq_len, over_length=over_length
    )
    eval_tok, eval_dropped = tokenize_samples(
        held, tokenizer, options, max_seq_len=max_seq_len, over_length=over_length
    )
    if not train_tok:
        raise DataError(
            no_supervised_message(dropped, len(mixed), max_seq_len),
            problems=[d.as_problem(max_seq_len) for d in dropped],
        )
    for i, t in enumerate(train_tok):
        t.index = i
    order = epoch_order(len(train_tok), epochs, seed)
    in_order = Counter(train_tok[i].task_type for i in order)
    dropped_n = Counter(d.task_type for d in dropped)
    eval_dropped_n = Counter(d.task_type for d in eval_dropped)
    read, held_n, mixed_n = (
        count_by_task(train + held if eval_path is None else train),
        count_by_task(held),
        count_by_task(train_tok),
    )
    per_task = {
        name: {
            "read": read.get(name, 0),  # training file (eval file excluded)
            "eval": held_n.get(name, 0),
            "train_after_mix": mixed_n.get(name, 0),
            "train_seen": in_order.get(name, 0),  # occurrences in the run's order, all epochs
            "dropped": dropped_n.get(name, 0),  # left out of training (too long, or nothing to train)
            "eval_dropped": eval_dropped_n.get(name, 0),
        }
        for name in sorted(set(read) | set(held_n))
    }
    counts = {
        "per_task": per_task,
        "train_samples": len(train_tok),
        "eval_samples": len(eval_tok),
        "train_seen": len(order),
        "epochs": epochs,
        "seed": seed,
        "dropped": [d.to_dict() for d in dropped],
        "eval_dropped": [d.to_dict() for d in eval_dropped],
    }
    return DataPlan(train_tok, eval_tok, order, counts, seed)
