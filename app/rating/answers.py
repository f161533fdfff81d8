"""What a rater sees of a case (the CaseView of the rating contract) and what their answer is stored as.

The screen speaks of left and right, the database of A and B (the sampling jobs): `swapped` on the case
says B is on the left, and this module is the only place that translates, both ways. Nothing that could
tell a rater which model wrote an answer leaves here: no id of a case, generation, job or run, no model
reference, no sampling parameter, no timing, and not the prompt as the model saw it (its chat template
can name the model family): the prompt is rebuilt from the dataset sample's messages.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.models import (
    AssignmentStatus,
    Generation,
    Rating,
    RatingAssignment,
    RatingCase,
    RatingMode,
    RatingTask,
    RubricVersion,
    Sample,
    SamplingJob,
    utcnow,
)
from app.rating.rubrics import Dimension, dimensions_of
from app.rating.writes import write_turn
from app.sampling.prompts import split_prompt
from app.sampling_analysis.flags import identity_flags

MAX_COMMENT = 4000
MAX_DURATION_MS = 24 * 3600 * 1000
PREFERENCES = ("left", "right", "tie")


class AnswerError(ValueError):
    """A submission the server refuses; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.message = message
        self.status = status


def _sides(case: RatingCase) -> tuple[str, str]:
    """(stored key of the left answer, of the right one)."""
    return ("b", "a") if case.swapped else ("a", "b")


def rated_dimensions(session: Session, task: RatingTask) -> list[Dimension]:
    """The dimensions a rater scores: none in a pairwise task that asks only for the preference."""
    if task.mode == RatingMode.pairwise.value and not task.score_sides:
        return []
    version = session.get(RubricVersion, task.rubric_version_id)
    assert version is not None  # a task's version is never deleted
    return dimensions_of(version)


def _system_override(session: Session, task: RatingTask) -> str | None:
    """The system prompt the jobs replaced the samples' with, when every job of the task used the same one
    and it names no model ("You are Qwen, ..." would tell an absolute task's raters whose answer it is)."""
    found = []
    for sid in (task.sampling_a_id, task.sampling_b_id):
        if sid is not None:
            job = session.get(SamplingJob, sid)
            found.append(json.loads(job.params_json or "{}").get("system_prompt") if job else None)
    common = found[0] if found and all(f == found[0] for f in found) else None
    if not isinstance(common, str) or any(identity_flags(common).values()):
        return None
    return common


def _prompt_parts(session: Session, task: RatingTask, case: RatingCase) -> dict[str, Any]:
    sample = session.get(Sample, case.sample_id)
    messages = orjson.loads(sample.messages) if sample is not None else []
    split = split_prompt(messages, sample.reference if sample is not None else None)
    system = next((str(m.get("content") or "") for m in split.messages if m.get("role") == "system"), None)
    system = _system_override(session, task) or system
    turns = [
        {"role": m["role"], "content": str(m.get("content") or "")}
        for m in split.messages
        if m.get("role") in ("user", "assistant")
    ]
    prompt = turns.pop()["content"] if turns else ""
    return {"system": system, "prompt": prompt, "history": turns, "reference": split.reference or None}


def case_view(
    session: Session, *, assignment: RatingAssignment, task: RatingTask, lang: str
) -> dict[str, Any]:
    """The CaseView of the contract, in the rater's language."""
    case = session.get(RatingCase, assignment.case_id)
    assert case is not None
    texts = {}
    for side, gid in (("a", case.generation_a_id), ("b", case.generation_b_id)):
        gen = session.get(Generation, gid) if gid is not None else None
        texts[side] = gen.text if gen is not None else ""
    left, right = _sides(case)
    answers = [{"side": "left", "text": texts[left]}]
    if task.mode == RatingMode.pairwise.value:
        answers.append({"side": "right", "text": texts[right]})
    zh = lang == "zh"
    dims = [
        {
            "key": d.key,
            "name": d.name_zh if zh else d.name_en,
            "guidance": d.guidance_zh if zh else d.guidance_en,
            "scale": d.scale,
            "min": d.bounds[0],
            "max": d.bounds[1],
        }
        for d in rated_dimensions(session, task)
    ]
    return {
        "token": assignment.token,
        "mode": task.mode,
        "task_type": case.task_type,
        **_prompt_parts(session, task, case),
        "answers": answers,
        "dimensions": dims,
        "identity_flag": False,  # flags go to the researcher only
        "submitted": _submitted(session, assignment, case, task),
    }


def _submitted(session: Session, assignment: RatingAssignment, case: RatingCase, task: RatingTask):
    if assignment.status != AssignmentStatus.submitted.value:
        return None
    rating = session.exec(select(Rating).where(Rating.assignment_id == assignment.id)).first()
    if rating is None:
        return None
    stored = json.loads(rating.scores_json)
    left, right = _sides(case)
    if task.mode == RatingMode.pairwise.value:
        scores: dict[str, Any] = {"left": stored.get(left, {}), "right": stored.get(right, {})}
        pref = {left: "left", right: "right", "tie": "tie"}.get(rating.preference or "")
    else:
        scores, pref = stored, None
    return {"scores": scores, "preference": pref, "flag": rating.flag, "comment": rating.comment}


def check_scores(raw: Any, dims: list[Dimension], where: str) -> dict[str, int]:
    prefix = f"{where}." if where else ""
    if not isinstance(raw, dict):
        raise AnswerError(f"scores{'.' + where if where else ''} must be an object of dimension: score")
    known = {d.key for d in dims}
    extra = sorted(set(raw) - known)
    if extra:
        allowed = ", ".join(sorted(known)) or "none (this task asks only for the preference)"
        raise AnswerError(f"{prefix}{extra[0]} is not a dimension of this task; its dimensions: {allowed}")
    out: dict[str, int] = {}
    for d in dims:
        lo, hi = d.bounds
        value = raw.get(d.key)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            shown = "missing" if d.key not in raw else json.dumps(value)[:40]
            raise AnswerError(
                f"{prefix}{d.key}: {shown} is not allowed; the scale {d.scale} takes {lo} to {hi}"
            )
        out[d.key] = value
    return out


def parse_answer(body: Any, *, task: RatingTask, case: RatingCase, dims: list[Dimension]) -> dict[str, Any]:
    """The posted answer checked and turned into stored terms (A/B); AnswerError names what is wrong."""
    if not isinstance(body, dict):
        raise AnswerError(
            "the body must be a JSON object with scores, preference, flag, comment, duration_ms"
        )
    left, right = _sides(case)
    raw = body.get("scores", {})
    pref = body.get("preference")
    if task.mode == RatingMode.pairwise.value:
        if not isinstance(raw, dict) or set(raw) - {"left", "right"}:
            raise AnswerError('pairwise scores must be {"left": {...}, "right": {...}}')
        scores: dict[str, Any] = {
            left: check_scores(raw.get("left", {}), dims, "left"),
            right: check_scores(raw.get("right", {}), dims, "right"),
        }
        if pref not in PREFERENCES:
            raise AnswerError("preference must be one of left, right, tie")
        stored_pref: str | None = {"left": left, "right": right, "tie": "tie"}[pref]
    else:
        scores = check_scores(raw, dims, "")
        if pref is not None:
            raise AnswerError("preference is only for pairwise tasks: send null")
        stored_pref = None
    flag = body.get("flag", False)
    comment = body.get("comment", "")
    duration = body.get("duration_ms", 0)
    if not isinstance(flag, bool):
        raise AnswerError("flag must be true or false")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise AnswerError(f"comment must be a text of at most {MAX_COMMENT} characters")
    if isinstance(duration, bool) or not isinstance(duration, int) or not 0 <= duration <= MAX_DURATION_MS:
        raise AnswerError(f"duration_ms must be a whole number from 0 to {MAX_DURATION_MS}")
    return {
        "scores": scores,
        "preference": stored_pref,
        "flag": flag,
        "comment": comment,
        "duration_ms": duration,
    }


def submit(session: Session, *, assignment: RatingAssignment, task: RatingTask, body: Any) -> None:
    """Store (or, for a submitted assignment, replace) the rater's answer; the assignment becomes submitted."""
    if assignment.status == AssignmentStatus.skipped.value:
        raise AnswerError("this case was skipped; it is no longer yours to rate", status=409)
    case = session.get(RatingCase, assignment.case_id)
    assert case is not None
    answer = parse_answer(body, task=task, case=case, dims=rated_dimensions(session, task))
    for _ in range(2):
        rating = session.exec(select(Rating).where(Rating.assignment_id == assignment.id)).first()
        now = utcnow()
        if rating is None:
            rating = Rating(
                assignment_id=assignment.id or 0,
                task_id=task.id or 0,
                case_id=case.id or 0,
                rater_id=assignment.rater_id,
                rubric_version_id=task.rubric_version_id,
                scores_json="{}",
            )
        rating.scores_json = json.dumps(answer["scores"])
        rating.preference = answer["preference"]
        rating.flag = answer["flag"]
        rating.comment = answer["comment"]
        rating.duration_ms = answer["duration_ms"]
        rating.updated_at = now
        if assignment.status != AssignmentStatus.submitted.value:
            assignment.status = AssignmentStatus.submitted.value
            assignment.submitted_at = now
        session.add(rating)
        session.add(assignment)
        try:
            with write_turn(session):
                session.commit()
            return
        except IntegrityError:  # the same answer posted twice at once: the other one stored the row
            session.rollback()
            session.refresh(assignment)
    raise AnswerError("this answer is being saved by another request; try again", status=409)
