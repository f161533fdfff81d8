"""Rule scorers, the spec dispatcher, and scorer inference on pCLUE's real classify/nli references."""

import json
from collections import defaultdict

import pytest

from app.sampling_analysis.scorers import (
    SpecError,
    exact_match,
    infer_task_spec,
    numeric_match,
    regex_match,
    score,
    score_generations,
    validate_spec,
)
from tests.conftest import SHARED_DATA

PCLUE = SHARED_DATA / "pclue_train_9.jsonl"


def _pclue_targets() -> dict[str, list[str]]:
    by_type: dict[str, list[str]] = defaultdict(list)
    with PCLUE.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            by_type[row["type"]].append(row["target"])
    return by_type


def _is_label(text: str) -> bool:
    # Independent of normalize_answer: a label has at least one letter or digit ("-" is a placeholder).
    return any(ch.isalnum() for ch in text)


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("北京。", "北京", True),
        ("  ＢＥＩＪＩＮＧ ", "beijing", True),
        ("New   York!", "new york", True),
        ("「矛盾」", "矛盾", True),
        ("北京市", "北京", False),
        ("", "", True),
    ],
)
def test_exact_match(answer: str, reference: str, expected: bool) -> None:
    assert exact_match(answer, reference) is expected


def test_regex_match() -> None:
    assert regex_match("答案：42", r"\b42\b")
    assert not regex_match("答案：420", r"\b42\b")
    assert regex_match("  yes  ", r"^yes$")


def test_a_catastrophic_pattern_times_out_as_unscorable() -> None:
    """(a|aa)+$ on "aaa…b" backtracks exponentially (re runs for hours); regex stops at the timeout."""
    assert regex_match("a" * 40 + "b", r"(a|aa)+$", timeout=0.05) is None
    assert score({"kind": "regex", "pattern": r"(a|aa)+$"}, "a" * 40 + "b", None) is None


@pytest.mark.parametrize(
    ("answer", "reference", "rel_tol", "abs_tol", "expected"),
    [
        ("So she has 72 apples.", "72", 1e-6, 0.0, True),
        ("#### 72", "The answer is 72", 1e-6, 0.0, True),
        ("first 72, finally 73", "72", 1e-6, 0.0, False),
        ("1,234.0", "1234", 1e-6, 0.0, True),
        ("0.75", "3/4", 1e-6, 0.0, True),
        ("-5", "5", 1e-6, 0.0, False),
        ("50%", "0.5", 1e-6, 0.0, True),
        ("50%", "50", 1e-6, 0.0, True),
        ("3.14", "3.14159", 1e-6, 0.0, False),
        ("3.14", "3.14159", 1e-3, 0.0, True),
        ("3.14", "3.14159", 0.0, 0.01, True),
        ("答案是三十五", "35", 1e-6, 0.0, True),
        ("no number", "35", 1e-6, 0.0, False),
    ],
)
def test_numeric_match(answer: str, reference: str, rel_tol: float, abs_tol: float, expected: bool) -> None:
    assert numeric_match(answer, reference, rel_tol, abs_tol) is expected


def test_numeric_reference_without_number_is_unscorable() -> None:
    assert numeric_match("42", "n/a") is None


def test_score_dispatches_by_kind() -> None:
    assert score({"kind": "exact"}, "北京。", "北京") is True
    assert score({"kind": "regex", "pattern": "^B"}, "Bee", None) is True
    assert score({"kind": "numeric", "rel_tol": 1e-6, "abs_tol": 0.0}, "= 7", "7") is True
    assert score({"kind": "choice", "labels": ["A", "B"]}, "答案是B", "B") is True
    assert score({"kind": "choice", "labels": ["A", "B"]}, "答案是A", "B") is False
    # A reference outside the label set, or none at all, cannot be scored: None, not False.
    assert score({"kind": "choice", "labels": ["A", "B"]}, "A", "E") is None
    assert score({"kind": "exact"}, "A", None) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "fuzzy"}, "kind must be one of"),
        ({}, "kind must be one of"),
        ({"kind": "regex"}, "needs a non-empty 'pattern'"),
        ({"kind": "regex", "pattern": "(unclosed"}, "not a valid regular expression"),
        ({"kind": "choice"}, "needs 'labels'"),
        ({"kind": "choice", "labels": ["A", "-"]}, "needs 'labels'"),
        ({"kind": "choice", "labels": ["A", "Ａ"]}, "must differ after normalisation"),
        ({"kind": "numeric", "rel_tol": -1}, "rel_tol must be a number >= 0"),
        ({"kind": "numeric", "abs_tol": "x"}, "abs_tol must be a number >= 0"),
        ({"kind": "numeric", "abs_tol": float("nan")}, "abs_tol must be a number >= 0"),
    ],
)
def test_validate_spec_names_the_problem(spec: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        validate_spec(spec)


def test_validate_spec_fills_defaults() -> None:
    assert validate_spec({"kind": "numeric"}) == {"kind": "numeric", "rel_tol": 1e-6, "abs_tol": 0.0}
    assert validate_spec({"kind": "exact", "junk": 1}) == {"kind": "exact"}


def test_infer_numeric_and_exact() -> None:
    assert infer_task_spec(["1", "2.5", "-3", "1,000", "3/4"])["kind"] == "numeric"
    assert infer_task_spec(["a long free answer", "another one", "and a third"]) == {"kind": "exact"}
    assert infer_task_spec([]) == {"kind": "exact"}
    assert infer_task_spec([None, "-"]) == {"kind": "exact"}


def test_infer_labels_most_frequent_first() -> None:
    spec = infer_task_spec(["B", "A", "B", "C", "B", "A"])
    assert spec == {"kind": "choice", "labels": ["B", "A", "C"]}


@pytest.mark.parametrize("task_type", ["classify", "nli"])
def test_pclue_choice_tasks(task_type: str) -> None:
    targets = _pclue_targets()[task_type]
    labels = {t for t in targets if _is_label(t)}
    spec = infer_task_spec(targets)
    assert spec["kind"] == "choice"
    assert set(spec["labels"]) == labels
    assert len(spec["labels"]) == len(labels)

    scorable = [t for t in targets if _is_label(t)]
    assert [score(spec, t, t) for t in scorable] == [True] * len(scorable)
    unscorable = len(targets) - len(scorable)
    assert [score(spec, t, t) for t in targets].count(None) == unscorable
    # The label wrapped in prose is still found.
    assert all(score(spec, f"答案是：{t}。", t) for t in scorable)

    shifted = targets[1:] + targets[:1]
    expected = sum(1 for a, r in zip(shifted, targets, strict=True) if _is_label(r) and a == r)
    outcomes = [score(spec, a, r) for a, r in zip(shifted, targets, strict=True)]
    assert outcomes.count(True) == expected
    assert 0 < expected < len(scorable)


@pytest.mark.parametrize("task_type", ["mrc", "generate"])
def test_pclue_free_tasks_get_exact(task_type: str) -> None:
    assert infer_task_spec(_pclue_targets()[task_type]) == {"kind": "exact"}


def test_score_generations_infers_per_task_type_and_honours_given_specs() -> None:
    generations = [
        {"task_type": "nli", "text": "答案是蕴含", "reference": "蕴含"},
        {"task_type": "nli", "text": "矛盾", "reference": "蕴含"},
        {"task_type": "nli", "text": "中性", "reference": "中性"},
        {"task_type": "nli", "text": "矛盾", "reference": "矛盾"},
        {"task_type": "nli", "text": "x", "reference": "中性"},
        {"task_type": "nli", "text": "x", "reference": "矛盾"},
        {"task_type": "math", "text": "so 12", "reference": "12"},
        {"task_type": "math", "text": "so 13", "reference": "12"},
        {"task_type": "code", "text": "def f(): pass", "reference": None},
    ]
    outcomes = score_generations(generations, {"code": {"kind": "regex", "pattern": r"^def "}})
    assert outcomes == [True, False, True, True, False, False, True, False, True]


def test_score_generations_rejects_a_bad_spec() -> None:
    with pytest.raises(SpecError, match="kind must be one of"):
        score_generations([{"task_type": "t", "text": "a", "reference": "a"}], {"t": {"kind": "nope"}})
