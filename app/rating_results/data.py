"""One task's ratings as plain data, scored under a chosen rubric version.

A score keeps the dimension values it was given under its own version; results may be computed under
any version of the same rubric, without re-rating. A value counts under the chosen version when that
version has the dimension on the same scale: a dimension the version lacks is ignored (its weight is
gone), and one whose scale changed is ignored too, since a 4 on 1-5 is not a 4 on 1-10. Both are
reported, so the page can say what it left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from app.models import (
    Adjudication,
    JudgeConfig,
    Rating,
    RatingCase,
    RatingMode,
    RatingTask,
    RubricVersion,
    SamplingJob,
    User,
)
from app.rating.rubrics import Dimension as StoredDimension
from app.rating.rubrics import dimensions_of
from app.rating_stats.rubric import Dimension, Rubric
from app.rating_stats.scales import Scale

PREFERENCES = ("a", "b", "tie")
VERDICT = {"a": "win", "tie": "tie", "b": "loss"}  # the preference from A's side


class VersionError(ValueError):
    """A rubric version that is not one of the task's rubric."""


@dataclass
class Answer:
    """Scores per side ("a", and "b" in pairwise) and the preference: one rating, an adjudication or gold."""

    scores: dict[str, dict[str, int | float]]
    preference: str | None = None


@dataclass
class RaterAnswer(Answer):
    rater: str = ""
    comment: str = ""


@dataclass
class Case:
    id: int
    sample_id: int
    task_type: str
    ratings: list[RaterAnswer] = field(default_factory=list)  # the human raters'
    judged: list[RaterAnswer] = field(default_factory=list)  # LLM judges', compared with the raters only
    gold: Answer | None = None
    adjudication: Answer | None = None


@dataclass
class Ignored:
    """A dimension some ratings have that the chosen version does not count, and why."""

    key: str
    reason: str  # "not_in_version" | "scale_changed"
    ratings: int


@dataclass
class TaskData:
    task: RatingTask
    version: RubricVersion
    versions: list[RubricVersion]
    dimensions: list[StoredDimension]  # of the chosen version, with their names for the page
    rubric: Rubric
    sides: tuple[str, ...]  # the scored sides: none in a pairwise task that asks only for the preference
    cases: list[Case]
    ignored: list[Ignored]
    models: dict[str, str]  # side -> "#<sampling job id> <model ref>", for the researcher only

    @property
    def pairwise(self) -> bool:
        return self.task.mode == RatingMode.pairwise.value


def stats_rubric(dims: list[StoredDimension], threshold: float) -> Rubric:
    """The statistics package's rubric from a stored version's dimensions."""
    return Rubric(
        dimensions=tuple(Dimension(d.key, Scale(d.scale), d.weight) for d in dims), threshold=threshold
    )


def _version(session: Session, task: RatingTask, version_id: int | None) -> tuple[RubricVersion, list]:
    current = session.get(RubricVersion, task.rubric_version_id)
    assert current is not None  # a task's version is never deleted
    versions = list(
        session.exec(
            select(RubricVersion)
            .where(RubricVersion.rubric_id == current.rubric_id)
            .order_by(col(RubricVersion.number))
        ).all()
    )
    if version_id is None:
        return current, versions
    for v in versions:
        if v.id == version_id:
            return v, versions
    known = ", ".join(str(v.id) for v in versions)
    raise VersionError(
        f"rubric version {version_id} is not a version of this task's rubric (its versions: {known})"
    )


def _answer(stored: dict[str, Any], preference: str | None, pairwise: bool) -> Answer:
    sides = {s: dict(stored.get(s) or {}) for s in ("a", "b")} if pairwise else {"a": dict(stored)}
    return Answer(scores=sides, preference=preference if preference in PREFERENCES else None)


class _Filter:
    """Keeps the values the chosen version counts and tallies the ones it does not."""

    def __init__(self, chosen: list[StoredDimension], scales_by_version: dict[int, dict[str, str]]):
        self.scale = {d.key: d.scale for d in chosen}
        self.scales_by_version = scales_by_version
        self.dropped: dict[tuple[str, str], int] = {}

    def keep(self, answer: Answer, version_id: int | None) -> Answer:
        given = self.scales_by_version.get(version_id, {}) if version_id is not None else self.scale
        for side, scores in answer.scores.items():
            kept = {}
            for key, value in scores.items():
                if key not in self.scale:
                    reason = "not_in_version"
                elif given.get(key, self.scale[key]) != self.scale[key]:
                    reason = "scale_changed"
                else:
                    kept[key] = value
                    continue
                self.dropped[(key, reason)] = self.dropped.get((key, reason), 0) + 1
            answer.scores[side] = kept
        return answer


def load(session: Session, task: RatingTask, *, version_id: int | None = None) -> TaskData:
    """The task's cases with their ratings, gold and adjudication, under `version_id` (default: the task's)."""
    version, versions = _version(session, task, version_id)
    dims = dimensions_of(version)
    pairwise = task.mode == RatingMode.pairwise.value
    keep = _Filter(dims, {v.id or 0: {d.key: d.scale for d in dimensions_of(v)} for v in versions})
    cases: dict[int, Case] = {}
    for c in session.exec(
        select(RatingCase).where(RatingCase.task_id == task.id).order_by(col(RatingCase.id))
    ):
        case = Case(id=c.id or 0, sample_id=c.sample_id, task_type=c.task_type)
        if c.gold_json:
            gold = json.loads(c.gold_json)
            # Gold is set under the task's own version (app.rating.overview.set_gold).
            case.gold = keep.keep(
                _answer(gold.get("scores") or {}, gold.get("preference"), pairwise), task.rubric_version_id
            )
        cases[case.id] = case
    rows = session.exec(
        select(Rating, User.username, JudgeConfig.id)
        .join(User, col(User.id) == col(Rating.rater_id))
        .outerjoin(JudgeConfig, col(JudgeConfig.user_id) == col(Rating.rater_id))
        .where(Rating.task_id == task.id)
        .order_by(col(Rating.case_id), col(User.username))
    ).all()
    # A judge scores its own dimension set (app.judge.dimensions): what the rubric lacks is not a rater's
    # dropped score, so it is filtered without being reported.
    judge_keep = _Filter(dims, keep.scales_by_version)
    for r, name, judge_id in rows:
        filtered = judge_keep if judge_id is not None else keep
        answer = filtered.keep(
            _answer(json.loads(r.scores_json), r.preference, pairwise), r.rubric_version_id
        )
        rated = RaterAnswer(scores=answer.scores, preference=answer.preference, rater=name, comment=r.comment)
        (cases[r.case_id].judged if judge_id is not None else cases[r.case_id].ratings).append(rated)
    adjudications = (
        session.exec(select(Adjudication).where(col(Adjudication.case_id).in_(list(cases)))).all()
        if cases
        else []
    )
    for adj in adjudications:
        cases[adj.case_id].adjudication = keep.keep(
            _answer(json.loads(adj.scores_json), adj.preference, pairwise), task.rubric_version_id
        )
    models = {}
    for side, sid in (("a", task.sampling_a_id), ("b", task.sampling_b_id)):
        job = session.get(SamplingJob, sid) if sid is not None else None
        if job is not None:
            models[side] = f"#{job.id} {job.model_ref}"
    return TaskData(
        task=task,
        version=version,
        versions=versions,
        dimensions=dims,
        rubric=stats_rubric(dims, version.usable_threshold),
        sides=(("a", "b") if task.score_sides else ()) if pairwise else ("a",),
        cases=list(cases.values()),
        ignored=[Ignored(k, reason, n) for (k, reason), n in sorted(keep.dropped.items())],
        models=models,
    )
