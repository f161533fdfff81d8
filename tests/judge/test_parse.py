"""Judge replies as real models write them (both languages, fences, Chinese punctuation, full-width digits, "8/10") parse to scores; broken ones raise JudgeParseError with reason and excerpt."""

import pytest

from app.judge.dimensions import GROUPS, Scale
from app.judge.parse import JudgeParseError, parse_pairwise, parse_single

FACTUAL = GROUPS["factual"]  # factuality, user_satisfaction, clarity, completeness
REASONING = GROUPS["reasoning"]  # factuality, user_satisfaction, logical_coherence, completeness
WRITING = GROUPS["writing"]  # factuality, user_satisfaction, logical_coherence, creativity, richness

SINGLE = [
    # 1. AlignBench's own habit: Python-style dict with single quotes after per-dimension prose.
    (
        "1. 事实正确性：回答正确指出了水的沸点为100摄氏度。得分：9\n2. 满足用户需求：基本满足。得分：7\n"
        "3. 清晰度：表达清楚。得分：8\n4. 完备性：未提到气压的影响。得分：6\n"
        "综合来看，回答质量较好。\n{'事实正确性': 9, '满足用户需求': 7, '清晰度': 8, '完备性': 6, '综合得分': 7}",
        FACTUAL,
        {"factuality": 9, "user_satisfaction": 7, "clarity": 8, "completeness": 6},
        7,
    ),
    # 2. English names in a ```json fence, then a closing remark.
    (
        "The answer is correct but misses the pressure caveat.\n\n```json\n"
        '{"Factuality": 9, "User Satisfaction": 7, "Clarity": 8, "Completeness": 5, "Overall": 7}\n```\n'
        "Let me know if you need anything else.",
        FACTUAL,
        {"factuality": 9, "user_satisfaction": 7, "clarity": 8, "completeness": 5},
        7,
    ),
    # 3. Chinese colons and commas, full-width braces and digits.
    (
        '评价：推理过程完整，但最后一步计算有误。\n｛"事实正确性"：３，"满足用户需求"：４，"逻辑连贯性"：６，'
        '"完备性"：５，"综合得分"：４｝',
        REASONING,
        {"factuality": 3, "user_satisfaction": 4, "logical_coherence": 6, "completeness": 5},
        4,
    ),
    # 4. "8/10" as bare values and as strings; stable keys with underscores.
    (
        "Solid answer overall.\n"
        '{"factuality": 8/10, "user_satisfaction": "7/10", "clarity": 9 / 10, "completeness": "6 / 10"}',
        FACTUAL,
        {"factuality": 8, "user_satisfaction": 7, "clarity": 9, "completeness": 6},
        None,
    ),
    # 5. Curly quotes typed by a Chinese input method, scores with 分.
    (
        "这首诗意境不错，用词略显平淡。\n{“事实正确性”: “8分”, “满足用户需求”: “7分”, “逻辑连贯性”: “8分”, "
        "“创造性”: “5分”, “丰富度”: “6分”, “综合得分”: “6分”}",
        WRITING,
        {"factuality": 8, "user_satisfaction": 7, "logical_coherence": 8, "creativity": 5, "richness": 6},
        6,
    ),
    # 6. Keys in mixed case and spacing, a trailing comma.
    (
        "Explanation: accurate and clear.\n"
        '{"FACTUALITY": 10, "user satisfaction": 9, "Clarity ": 9, "complete-ness": 8, "overall score": 9,}',
        FACTUAL,
        {"factuality": 10, "user_satisfaction": 9, "clarity": 9, "completeness": 8},
        9,
    ),
    # 7. A code answer with braces in the explanation; the score object is the last one.
    (
        "The function `def f(d): return {k: v for k, v in d.items()}` is correct, and the example "
        '`{"a": 1}` works.\n{"事实正确性": 9, "满足用户需求": 8, "逻辑连贯性": 9, "完备性": 7}\n谢谢。',
        REASONING,
        {"factuality": 9, "user_satisfaction": 8, "logical_coherence": 9, "completeness": 7},
        None,
    ),
    # 8. Explanation only inside the JSON object.
    (
        '{"explanation": "Wrong capital: Sydney instead of Canberra.", "Factuality": 1, '
        '"User Satisfaction": 2, "Clarity": 7, "Completeness": 3, "Overall": 2}',
        FACTUAL,
        {"factuality": 1, "user_satisfaction": 2, "clarity": 7, "completeness": 3},
        2,
    ),
    # 9. Unquoted Chinese keys.
    (
        "回答符合要求。\n{事实正确性: 7, 满足用户需求: 8, 清晰度: 8, 完备性: 7, 综合得分: 7}",
        FACTUAL,
        {"factuality": 7, "user_satisfaction": 8, "clarity": 8, "completeness": 7},
        7,
    ),
    # 10. Extra unknown keys (safety) are ignored; integral floats accepted.
    (
        '整体不错。\n```\n{"事实正确性": 8.0, "满足用户需求": 8, "清晰度": 7, "完备性": 7, "安全无害": 10}\n```',
        FACTUAL,
        {"factuality": 8, "user_satisfaction": 8, "clarity": 7, "completeness": 7},
        None,
    ),
    # 11. An earlier draft object and a final one: the last one wins.
    (
        'Draft: {"Factuality": 5, "User Satisfaction": 5, "Clarity": 5, "Completeness": 5}\n'
        "On reflection the answer deserves more.\n"
        '{"Factuality": 8, "User Satisfaction": 8, "Clarity": 7, "Completeness": 6}',
        FACTUAL,
        {"factuality": 8, "user_satisfaction": 8, "clarity": 7, "completeness": 6},
        None,
    ),
    # 12. Chinese explanation with curly quotes inside a JSON string value.
    (
        '分析见下。\n{"评价": "回答引用了“勾股定理”，推理正确。", "事实正确性": 9, "满足用户需求": 9, '
        '"逻辑连贯性": 8, "完备性": 8, "综合得分": 9}',
        REASONING,
        {"factuality": 9, "user_satisfaction": 9, "logical_coherence": 8, "completeness": 8},
        9,
    ),
    # 13. Scores nested under "scores", the explanation beside them, a JSON fence with no language.
    (
        '```\n{"explanation": "Correct formula, but the unit is missing.", "scores": {"Factuality": 7, '
        '"User Satisfaction": 6, "Logical Coherence": 8, "Completeness": 5}, "overall": 6}\n```',
        REASONING,
        {"factuality": 7, "user_satisfaction": 6, "logical_coherence": 8, "completeness": 5},
        6,
    ),
    # 14. A stray brace in the prose before the scores, and one after them.
    (
        "The answer writes the set as {1, 2, 3 and never closes it; otherwise right.\n"
        '{"Factuality": 8, "User Satisfaction": 8, "Clarity": 6, "Completeness": 7}\n} (end)',
        FACTUAL,
        {"factuality": 8, "user_satisfaction": 8, "clarity": 6, "completeness": 7},
        None,
    ),
]

PAIRWISE = [
    # 15. English, fenced.
    (
        "Answer 1 gives the right date; answer 2 is off by a year.\n```json\n"
        '{"answer_1": {"Factuality": 9, "User Satisfaction": 8, "Clarity": 8, "Completeness": 7}, '
        '"answer_2": {"Factuality": 3, "User Satisfaction": 4, "Clarity": 8, "Completeness": 6}, '
        '"verdict": "1"}\n```',
        "1",
        {"factuality": 9, "user_satisfaction": 8, "clarity": 8, "completeness": 7},
        {"factuality": 3, "user_satisfaction": 4, "clarity": 8, "completeness": 6},
    ),
    # 16. Chinese keys, Chinese punctuation, a tie written as 平局.
    (
        '两个回答都正确，表达方式不同。\n{"回答1"：{"事实正确性"：８，"满足用户需求"：７，"清晰度"：８，"完备性"：７}，'
        '"回答2"：{"事实正确性"：８，"满足用户需求"：７，"清晰度"：７，"完备性"：８}，"胜者"："平局"}',
        "tie",
        {"factuality": 8, "user_satisfaction": 7, "clarity": 8, "completeness": 7},
        {"factuality": 8, "user_satisfaction": 7, "clarity": 7, "completeness": 8},
    ),
    # 17. Verdict as a number, before the sides, single quotes.
    (
        "第二个回答更完整。\n{'胜者': 2, '回答1': {'事实正确性': 7, '满足用户需求': 5, '清晰度': 7, '完备性': 4}, "
        "'回答2': {'事实正确性': 8, '满足用户需求': 8, '清晰度': 7, '完备性': 8}}",
        "2",
        {"factuality": 7, "user_satisfaction": 5, "clarity": 7, "completeness": 4},
        {"factuality": 8, "user_satisfaction": 8, "clarity": 7, "completeness": 8},
    ),
    # 18. Verdict named after the answer, "x/10" scores, trailing text.
    (
        "Both are fine; the first is more precise.\n"
        '{"answer_1": {"factuality": "9/10", "user_satisfaction": "8/10", "clarity": "8/10", '
        '"completeness": "8/10"}, "answer_2": {"factuality": "7/10", "user_satisfaction": "7/10", '
        '"clarity": "8/10", "completeness": "7/10"}, "verdict": "Answer 1"}\nHope this helps!',
        "1",
        {"factuality": 9, "user_satisfaction": 8, "clarity": 8, "completeness": 8},
        {"factuality": 7, "user_satisfaction": 7, "clarity": 8, "completeness": 7},
    ),
]


@pytest.mark.parametrize(
    ("reply", "dims", "scores", "overall"), SINGLE, ids=[f"single{i}" for i in range(1, 15)]
)
def test_single_replies_parse(reply, dims, scores, overall):
    judgement = parse_single(reply, dimensions=dims)
    assert judgement.scores == scores
    assert judgement.overall == overall
    assert judgement.explanation and "{" not in judgement.explanation[-3:]


def test_explanation_is_the_text_before_the_object_without_the_fence():
    j = parse_single(SINGLE[1][0], dimensions=FACTUAL)
    assert j.explanation == "The answer is correct but misses the pressure caveat."
    assert parse_single(SINGLE[7][0], dimensions=FACTUAL).explanation.startswith("Wrong capital")


@pytest.mark.parametrize(("reply", "verdict", "s1", "s2"), PAIRWISE, ids=[f"pair{i}" for i in range(15, 19)])
def test_pairwise_replies_parse(reply, verdict, s1, s2):
    j = parse_pairwise(reply, dimensions=FACTUAL)
    assert (j.verdict, j.scores_1, j.scores_2) == (verdict, s1, s2)
    assert j.explanation


def test_a_pairwise_reply_is_not_read_as_single_scores():
    with pytest.raises(JudgeParseError, match="a pairwise verdict where one answer's scores were expected"):
        parse_single(PAIRWISE[0][0], dimensions=FACTUAL)


def test_other_scales():
    reply = 'ok\n{"Factuality": 5, "User Satisfaction": "4/5", "Clarity": 1, "Completeness": 3}'
    assert parse_single(reply, dimensions=FACTUAL, scale=Scale(1, 5)).scores["user_satisfaction"] == 4
    with pytest.raises(JudgeParseError, match=r"'4/5' is out of 5, the scale is 1-10"):
        parse_single(reply, dimensions=FACTUAL)


BAD_SINGLE = [
    ("The answer is fine. I would give it a good score.", "no JSON object with scores", "good score"),
    (
        "Fine.\n{'事实正确性': 9, '满足用户需求': 8, '清晰度': 8}",
        r"missing dimension Completeness \(完备性\)",
        "清晰度",
    ),
    (
        "Fine.\n{'事实正确性': 11, '满足用户需求': 8, '清晰度': 8, '完备性': 8}",
        "Factuality: 11 is outside the scale 1-10",
        "11",
    ),
    ("Fine.\n{'事实正确性': 0, '满足用户需求': 8, '清晰度': 8, '完备性': 8}", "outside the scale", "0"),
    ("Fine.\n{'事实正确性': -1, '满足用户需求': 8, '清晰度': 8, '完备性': 8}", "outside the scale", "-1"),
    (
        "Fine.\n{'事实正确性': 7.5, '满足用户需求': 8, '清晰度': 8, '完备性': 8}",
        "7.5 is not a whole number",
        "7.5",
    ),
    (
        "Fine.\n{'事实正确性': 'high', '满足用户需求': 8, '清晰度': 8, '完备性': 8}",
        "'high' is not a score",
        "high",
    ),
    (
        "Fine.\n{'事实正确性': true, '满足用户需求': 8, '清晰度': 8, '完备性': 8}",
        "True is not a score",
        "true",
    ),
    (
        "Fine.\n{'事实正确性': null, '满足用户需求': 8, '清晰度': 8, '完备性': 8}",
        "None is not a score",
        "null",
    ),
    (
        "Fine.\n{'事实正确性': [8], '满足用户需求': 8, '清晰度': 8, '完备性': 8}",
        r"\[8\] is not a score",
        "[8]",
    ),
    (
        '{"Factuality": 8, "User Satisfaction": 8, "Clarity": 8, "Completeness": 8}',
        "no explanation",
        "Factuality",
    ),
    ("Truncated by max_tokens:\n{'事实正确性': 9, '满足用户需求': 8, '清晰", "no JSON object", "清晰"),
    (
        "Fine.\n{'事实正确性': 8, '满足用户需求': 8, '清晰度': 8, '完备性': 8, '综合得分': 12}",
        "Overall: 12 is outside",
        "12",
    ),
]


@pytest.mark.parametrize(("reply", "reason", "shown"), BAD_SINGLE)
def test_bad_single_replies_raise_with_reason_and_excerpt(reply, reason, shown):
    with pytest.raises(JudgeParseError, match=reason) as info:
        parse_single(reply, dimensions=FACTUAL)
    assert shown in info.value.excerpt
    assert str(info.value).startswith(info.value.reason)


BAD_PAIRWISE = [
    (
        'x\n{"answer_1": {"Factuality": 8, "User Satisfaction": 8, "Clarity": 8, "Completeness": 8}, '
        '"answer_2": {"Factuality": 8, "User Satisfaction": 8, "Clarity": 8, "Completeness": 8}}',
        "no verdict",
    ),
    (
        'x\n{"answer_1": {"Factuality": 8, "User Satisfaction": 8, "Clarity": 8, "Completeness": 8}, '
        '"answer_2": {"Factuality": 8, "User Satisfaction": 8, "Clarity": 8, "Completeness": 8}, "verdict": "A"}',
        "verdict 'A' is not 1, 2 or tie",
    ),
    (
        'x\n{"answer_1": {"Factuality": 8, "User Satisfaction": 8, "Clarity": 8, "Completeness": 8}, "verdict": "1"}',
        "no scores for answer 2",
    ),
    (
        'x\n{"answer_1": {"Factuality": 8, "User Satisfaction": 8, "Clarity": 8}, '
        '"answer_2": {"Factuality": 8, "User Satisfaction": 8, "Clarity": 8, "Completeness": 8}, "verdict": "1"}',
        "answer 1: missing dimension Completeness",
    ),
    ("Answer 1 is better. [[A]]", "no JSON object"),
    ('x\n{"verdict": true, "answer_1": {}, "answer_2": {}}', "missing dimension"),
]


@pytest.mark.parametrize(("reply", "reason"), BAD_PAIRWISE)
def test_bad_pairwise_replies_raise(reply, reason):
    with pytest.raises(JudgeParseError, match=reason):
        parse_pairwise(reply, dimensions=FACTUAL)


def test_hostile_replies_never_raise_anything_but_parse_errors():
    hostile = [
        "",
        "{" * 5000,
        "}" * 100 + "{",
        '{"a": ' * 2000 + "1" + "}" * 2000,
        "{'__class__': __import__('os').system('echo pwned')}",
        "{'事实正确性': 10**10**10}",
        "{1: 2, None: 3, (1, 2): 4}",
        '{"事实正确性": "9" * 10}',
        '{"事实正确性": ' + "9" * 400 + "}",
        '{"事实正确性": "' + "9" * 400 + '/10"}',
        '{"事实正确性": NaN}',
        '{"事实正确性": -Infinity}',
        '{"事实正确性": 1e400}',
    ]
    for reply in hostile:
        with pytest.raises(JudgeParseError):
            parse_single(reply, dimensions=FACTUAL)
        with pytest.raises(JudgeParseError):
            parse_pairwise(reply, dimensions=FACTUAL)


def test_long_reply_excerpt_is_short():
    with pytest.raises(JudgeParseError) as info:
        parse_single("blah " * 10_000, dimensions=FACTUAL)
    assert len(info.value.excerpt) <= 160
