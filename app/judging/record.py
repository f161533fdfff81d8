"""The judge's replies for one case -> a Rating under the judge's account, or a failure with its reason.

A Rating is stored exactly as a human's is, in A/B terms under the task's rubric version, through an
assignment that holds no slot (slot NULL, status submitted): overlap N counts humans only and the
claim queries, which count slots, pass it by, while the unique (case, rater) constraint still makes a
second rating of the case by the same judge impossible. Its scores are the judge's dimensions: AlignBench's
keys (app.judge.dimensions) on the judge's scale, or the rubric's keys, each on its own scale. For
pairwise, each answer's score per dimension is the mean of the two orders, rounded half up: the mean of
two scores on a scale lies on it, so a binary dimension stays 0 or 1 (a split 0 and 1 counts as 1, the
answer met the criterion in one of the two readings). The preference is MT-Bench's combination of the two
verdicts (app.judge.pairwise.combine); both orders' verdicts, scores and explanations stay in the
JudgeResult. A reply that does not parse stores no rating: the result keeps the reason and an excerpt.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from app.judge.pairwise import combine
from app.judge.parse import JudgeParseError, parse_pairwise, parse_single
from app.judging.cases import CasePrompt
from app.models import (
    AssignmentStatus,
    JudgeConfig,
    JudgeJob,
    JudgeOutcome,
    JudgeResult,
    Rating,
    RatingAssignment,
    RatingCase,
    RatingTask,
    utcnow,
)

_PREFERENCE = {"A": "a", "B": "b", "tie": "tie"}


@dataclass
class Verdict:
    """What the replies of one case came to: scores and preference (A/B terms), or a failure."""

    ok: bool
    scores: dict[str, Any] = field(default_factory=dict)
    preference: str | None = None
    verdict_ab: str | None = None
    verdict_ba: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    excerpt: str = ""


def _mean(x: int, y: int) -> int:
    return int((Decimal(x + y) / 2).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def read_replies(prompts: list[CasePrompt], replies: dict[str, str]) -> Verdict:
    """Parse each order's reply (`replies` keyed by order); the first that fails names the failure."""
    parsed: dict[str, Any] = {}
    for item in prompts:
        p = item.prompt
        try:
            if item.order == "single":
                parsed[item.order] = parse_single(replies[item.order], dimensions=p.scored, scale=p.scale)
            else:
                parsed[item.order] = parse_pairwise(replies[item.order], dimensions=p.scored, scale=p.scale)
        except JudgeParseError as exc:
            where = "" if item.order == "single" else f"order {item.order.upper()}: "
            return Verdict(False, reason=f"{where}{exc.reason}", excerpt=exc.excerpt)
    if "single" in parsed:
        one = parsed["single"]
        single = {"explanation": one.explanation, "scores": one.scores, "overall": one.overall}
        return Verdict(True, scores=dict(one.scores), detail={"single": single})
    ab, ba = parsed["ab"], parsed["ba"]
    outcome = combine(ab.verdict, ba.verdict)
    scores = {
        "a": {k: _mean(ab.scores_1[k], ba.scores_2[k]) for k in ab.scores_1},
        "b": {k: _mean(ab.scores_2[k], ba.scores_1[k]) for k in ab.scores_2},
    }
    detail: dict[str, Any] = {"consistent": outcome.consistent} | {
        order: {
            "explanation": j.explanation,
            "verdict": j.verdict,
            "scores_1": j.scores_1,
            "scores_2": j.scores_2,
        }
        for order, j in (("ab", ab), ("ba", ba))
    }
    return Verdict(
        True,
        scores=scores,
        preference=_PREFERENCE[outcome.outcome],
        verdict_ab=ab.verdict,
        verdict_ba=ba.verdict,
        detail=detail,
    )


def judged_case_ids(session: Session, *, config: JudgeConfig, task: RatingTask) -> set[int]:
    """Cases of the task this judge has rated already (in any of its jobs): a resume skips them."""
    return set(
        session.exec(
            select(RatingAssignment.case_id).where(
                RatingAssignment.task_id == task.id, RatingAssignment.rater_id == config.user_id
            )
        ).all()
    )


def store(
    session: Session,
    *,
    job: JudgeJob,
    config: JudgeConfig,
    task: RatingTask,
    case: RatingCase,
    prompts: list[CasePrompt],
    verdict: Verdict,
) -> JudgeResult | None:
    """Store one case's outcome (commits); None when the judge had rated this case already meanwhile."""
    now = utcnow()
    rating_id = None
    # A failure of an earlier attempt is replaced by this one.
    session.exec(
        delete(JudgeResult).where(
            col(JudgeResult.judge_job_id) == job.id, col(JudgeResult.case_id) == case.id
        )
    )
    if verdict.ok:
        assignment = RatingAssignment(
            token=secrets.token_urlsafe(16),
            task_id=task.id or 0,
            case_id=case.id or 0,
            rater_id=config.user_id,
            slot=None,  # a judge takes no human's place
            status=AssignmentStatus.submitted.value,
            claimed_at=now,
            submitted_at=now,
        )
        session.add(assignment)
        session.flush()
        rating = Rating(
            assignment_id=assignment.id or 0,
            task_id=task.id or 0,
            case_id=case.id or 0,
            rater_id=config.user_id,
            rubric_version_id=task.rubric_version_id,
            scores_json=json.dumps(verdict.scores),
            preference=verdict.preference,
        )
        session.add(rating)
        session.flush()
        rating_id = rating.id
    first = prompts[0].prompt
    result = JudgeResult(
        judge_job_id=job.id or 0,
        case_id=case.id or 0,
        task_type=case.task_type,
        outcome=(JudgeOutcome.ok if verdict.ok else JudgeOutcome.failed).value,
        rating_id=rating_id,
        template_version=f"{first.kind}:{first.template_version}",
        group=first.group,
        verdict_ab=verdict.verdict_ab,
        verdict_ba=verdict.verdict_ba,
        detail_json=json.dumps(verdict.detail, ensure_ascii=False),
        reason=verdict.reason,
        excerpt=verdict.excerpt,
    )
    session.add(result)
    try:
        session.commit()
    except IntegrityError:  # another attempt of this judge stored the case first
        session.rollback()
        return None
    return result
