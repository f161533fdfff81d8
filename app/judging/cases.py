"""A rating case as the judge sees it: the question, the reference if any, the answer(s), and its prompts.

Absolute: one prompt, the answer. Pairwise: two prompts, the answers in the order a human rater sees them
(left, right: B first when the case is `swapped`) and then reversed, so each is judged in both orders and
the verdicts are turned into A/B terms here, the one place that knows `swapped` for the judge. The prompt
is reference-guided whenever the sample has a reference (its last assistant turn, or an eval set's
`reference`), and the question carries the conversation before it, as the sample does.

What the prompts ask the judge to score is the configuration's `dimensions`: AlignBench's set for the
case's task_type, or the task's rubric version, each dimension on its own scale, so that the stored
Rating carries the rubric's keys on the scales people use and the results page can compare the two.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import orjson
from sqlmodel import Session

from app.judge.dimensions import Dimension, Scale, group_for
from app.judge.prompts import JudgePrompt, build_pairwise, build_single, template_kind
from app.judging.configs import template_text
from app.models import Generation, JudgeConfig, RatingCase, RatingMode, RatingTask, RubricVersion, Sample
from app.models.judge import JudgeDimensions
from app.rating.rubrics import SCALES, dimensions_of
from app.sampling.prompts import split_prompt

Order = Literal["single", "ab", "ba"]


@dataclass(frozen=True)
class CasePrompt:
    """One prompt of a case: `order` "single", or "ab" (A shown as answer 1) / "ba" (B shown first)."""

    order: Order
    prompt: JudgePrompt


def _question(messages: list[dict], reference: str | None) -> tuple[str, str]:
    split = split_prompt(messages, reference)
    turns = [m for m in split.messages if m.get("role") in ("system", "user", "assistant")]
    if not turns:
        return "", split.reference
    *before, last = turns
    history = "\n".join(f"{m['role']}: {m.get('content') or ''}" for m in before)
    question = str(last.get("content") or "")
    return (f"{history}\n\n{question}" if history else question), split.reference


def rubric_dimensions(version: RubricVersion) -> tuple[Dimension, ...]:
    """A rubric version's dimensions as the judge scores them: key, names and guidance in both languages,
    and the scale ("binary" 0..1, "1-5", "1-10") people rate it on."""
    return tuple(
        Dimension(d.key, d.name_zh, d.name_en, d.guidance_zh, d.guidance_en, Scale(*SCALES[d.scale]))
        for d in dimensions_of(version)
    )


def _dimensions(session: Session, config: JudgeConfig, task: RatingTask) -> tuple[Dimension, ...] | None:
    if config.dimensions != JudgeDimensions.rubric.value:
        return None
    return rubric_dimensions(session.get_one(RubricVersion, task.rubric_version_id))


def case_prompts(
    session: Session, *, config: JudgeConfig, task: RatingTask, case: RatingCase
) -> list[CasePrompt]:
    """The prompts for one case, in the order they are asked (pairwise: the screen's order first)."""
    sample = session.get(Sample, case.sample_id)
    messages = orjson.loads(sample.messages) if sample is not None else []
    question, reference = _question(messages, sample.reference if sample is not None else None)
    texts = {}
    for side, gid in (("a", case.generation_a_id), ("b", case.generation_b_id)):
        gen = session.get(Generation, gid) if gid is not None else None
        texts[side] = gen.text if gen is not None else ""
    pairwise = task.mode == RatingMode.pairwise.value
    template = template_text(session, config, template_kind(pairwise=pairwise, reference=reference))
    task_type, ref = case.task_type or "-", reference or None
    dims = _dimensions(session, config, task)
    # A result names the dimension group it was scored under; "rubric" when the task's own.
    group = "rubric" if dims else group_for(case.task_type, overrides=json.loads(config.groups_json or "{}"))
    if not pairwise:
        one = build_single(template=template, lang=config.lang, group=group, task_type=task_type,
                           question=question, answer=texts["a"], reference=ref, dimensions=dims)  # fmt: skip
        return [CasePrompt("single", one)]
    ab, ba = (
        build_pairwise(
            template=template,
            lang=config.lang,
            group=group,
            task_type=task_type,
            question=question,
            answer_1=texts[first],
            answer_2=texts[second],
            reference=ref,
            dimensions=dims,
        )  # fmt: skip
        for first, second in (("a", "b"), ("b", "a"))
    )
    return (
        [CasePrompt("ba", ba), CasePrompt("ab", ab)]
        if case.swapped
        else [CasePrompt("ab", ab), CasePrompt("ba", ba)]
    )
