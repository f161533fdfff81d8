"""Rule scorers for closed-answer tasks, the spec that picks one, and a guess at the spec from references.

A spec is plain data ({"kind": "choice", "labels": [...]}, {"kind": "exact"}, {"kind": "regex",
"pattern": ...}, {"kind": "numeric", "rel_tol": 1e-6}) so it can be stored with a sampling job and
shown on the results page. A score is True/False, or None when the reference itself cannot be scored
(a choice reference outside the label set, a numeric reference without a number): counting those as
wrong would blame the model for bad data.
"""

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import regex

from app.sampling_analysis.choice import choice_extract, label_set
from app.sampling_analysis.normalize import normalize_answer
from app.sampling_analysis.numerals import is_number, last_number

KINDS = ("exact", "regex", "choice", "numeric")
# A reference set looks like a label set when it has few distinct short values, each seen at least
# twice on average: pCLUE classify has 44 labels over 305 samples, its generate task 23 over 23.
MAX_LABELS = 64
MAX_LABEL_CHARS = 8


class SpecError(ValueError):
    """The task spec cannot be used; the message names the field and what is wrong with it."""


def exact_match(answer: str, reference: str) -> bool:
    """Equal after `normalize_answer` (case, width, punctuation and spacing do not count)."""
    return normalize_answer(answer) == normalize_answer(reference)


# A user's pattern runs on every answer of a job; a catastrophic one ("(a+)+$") must not hold the server.
REGEX_TIMEOUT_S = 0.25


def regex_match(answer: str, pattern: str, *, timeout: float = REGEX_TIMEOUT_S) -> bool | None:
    """The pattern is found anywhere in the stripped answer (search; anchor it to demand more); None when
    matching this answer ran past ``timeout`` seconds, so the answer counts as unscorable, not as wrong.

    The ``regex`` module rather than ``re``: only it can stop a backtracking search."""
    try:
        return regex.search(pattern, answer.strip(), timeout=timeout) is not None
    except TimeoutError:
        return None


def numeric_match(answer: str, reference: str, rel_tol: float = 1e-6, abs_tol: float = 0.0) -> bool | None:
    """The last number of the answer equals the reference's last number within the tolerances; None
    when the reference has no number. "50%" matches a reference of 0.5 and one of 50."""
    ref = last_number(reference)
    if ref is None:
        return None
    got = last_number(answer)
    if got is None:
        return False
    return any(
        math.isclose(a, r, rel_tol=rel_tol, abs_tol=abs_tol) for a in got.values() for r in ref.values()
    )


def validate_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec with defaults filled in, or SpecError saying which field is wrong."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise SpecError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "regex":
        pattern = spec.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise SpecError("a regex spec needs a non-empty 'pattern'")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SpecError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
        return {"kind": kind, "pattern": pattern}
    if kind == "choice":
        labels = spec.get("labels")
        if (
            not isinstance(labels, list)
            or not labels
            or not all(isinstance(x, str) and normalize_answer(x) for x in labels)
        ):
            raise SpecError(
                "a choice spec needs 'labels', a non-empty list of strings with more than punctuation"
            )
        if len({normalize_answer(x) for x in labels}) != len(labels):
            raise SpecError("choice labels must differ after normalisation (case, width, punctuation)")
        return {"kind": kind, "labels": list(labels)}
    if kind == "numeric":
        out: dict[str, Any] = {"kind": kind}
        for key, default in (("rel_tol", 1e-6), ("abs_tol", 0.0)):
            value = spec.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise SpecError(f"{key} must be a number >= 0, not {value!r}")
            out[key] = float(value)
        return out
    return {"kind": kind}


def score(spec: Mapping[str, Any], answer: str, reference: str | None) -> bool | None:
    """Score one answer under a validated spec. The regex kind ignores the reference (the pattern is
    the reference); the others return None without one."""
    kind = spec["kind"]
    if kind == "regex":
        return regex_match(answer, spec["pattern"])
    if reference is None:
        return None
    if kind == "exact":
        return exact_match(answer, reference)
    if kind == "numeric":
        return numeric_match(answer, reference, spec.get("rel_tol", 1e-6), spec.get("abs_tol", 0.0))
    wanted = label_set(tuple(spec["labels"])).by_norm.get(normalize_answer(reference))
    if wanted is None:
        return None
    return choice_extract(answer, spec["labels"]) == wanted


def infer_task_spec(references: Iterable[str | None]) -> dict[str, Any]:
    """A scorer proposal for one task_type: numeric when every reference is a number, choice over the
    distinct references when they look like a label set (see MAX_LABELS), exact otherwise.

    Labels come out most frequent first; references that normalise to nothing ("-") are dropped, so a
    stray placeholder does not become a label.
    """
    refs = [r.strip() for r in references if r is not None and normalize_answer(r)]
    if not refs:
        return {"kind": "exact"}
    if all(is_number(r) for r in refs):
        return {"kind": "numeric", "rel_tol": 1e-6, "abs_tol": 0.0}
    counts = Counter(refs)
    by_norm: dict[str, str] = {}
    for ref, _ in counts.most_common():
        by_norm.setdefault(normalize_answer(ref), ref)
    labels = list(by_norm.values())
    if (
        len(labels) <= MAX_LABELS
        and len(refs) >= 2 * len(labels)
        and max(map(len, labels)) <= MAX_LABEL_CHARS
    ):
        return {"kind": "choice", "labels": labels}
    return {"kind": "exact"}


def score_generations(
    generations: Sequence[Mapping[str, Any]], specs: Mapping[str, Mapping[str, Any]] | None = None
) -> list[bool | None]:
    """Score each generation (keys: task_type, text, reference) under its task_type's spec; a task_type
    without one in `specs` gets `infer_task_spec` over its references."""
    chosen = {t: validate_spec(s) for t, s in (specs or {}).items()}
    refs: dict[str, list[str | None]] = {}
    for g in generations:
        refs.setdefault(g["task_type"], []).append(g.get("reference"))
    for task_type, task_refs in refs.items():
        chosen.setdefault(task_type, infer_task_spec(task_refs))
    return [score(chosen[g["task_type"]], g["text"], g.get("reference")) for g in generations]
