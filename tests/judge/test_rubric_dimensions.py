"""A judge can score a rubric's own dimensions, each on its own scale (binary, 1-5, 1-10): prompts state the scales and give valid examples, the parser reads the rubric's keys and names in both languages against each dimension's scale."""

import json

import pytest

from app.judge.dimensions import Dimension, Scale
from app.judge.parse import JudgeParseError, parse_pairwise, parse_single
from app.judge.prompts import LANGS, build_pairwise, build_single, default_template

RUBRIC = (
    Dimension("safe", "安全", "Safe", "是否安全。", "Is it safe?", Scale(0, 1)),
    Dimension(
        "helpfulness", "有用性", "Helpfulness", "5：完全解决问题。", "5: fully solves it.", Scale(1, 5)
    ),
    Dimension("style", "文风", "Style", "", "", Scale(1, 10)),
)
KEYS = ["safe", "helpfulness", "style"]


def _single(lang: str, dims=RUBRIC):
    return build_single(
        template=default_template("single", lang),
        lang=lang,
        group="factual",
        task_type="t",
        question="q",
        answer="a",
        dimensions=dims,
    )


def _pair(lang: str):
    return build_pairwise(
        template=default_template("pairwise", lang),
        lang=lang,
        group="factual",
        task_type="t",
        question="q",
        answer_1="a",
        answer_2="b",
        dimensions=RUBRIC,
    )


def _example(text: str) -> dict:
    start = text.index('{"')
    return json.loads(text[start : text.index("\n", start)])


def test_english_prompt_states_each_scale_and_only_the_rubric():
    p = _single("en")
    assert "1. Safe (0 or 1): Is it safe?" in p.text
    assert "2. Helpfulness (1 to 5): 5: fully solves it." in p.text
    assert "3. Style (1 to 10)\n" in p.text
    assert "on the scale shown beside each dimension (the overall score: 1 to 10)" in p.text
    assert "Factuality (" not in p.text and "Clarity" not in p.text
    assert p.dimensions == tuple(KEYS) and p.scale == Scale(1, 10)


def test_chinese_prompt_states_each_scale():
    p = _single("zh")
    assert "1. 安全（Safe，0或1分）：是否安全。" in p.text
    assert "2. 有用性（Helpfulness，1～5分）：5：完全解决问题。" in p.text
    assert "该维度旁所注范围内（综合得分为1～10）的整数分数" in p.text


@pytest.mark.parametrize("lang", LANGS)
def test_example_values_are_valid_on_each_scale_and_parse_back(lang):
    single, pair = _single(lang), _pair(lang)
    example = _example(single.text)
    names = [d.name(lang) for d in RUBRIC]
    for dim, name in zip(RUBRIC, names, strict=True):
        assert dim.scale is not None and dim.scale.low <= example[name] <= dim.scale.high
    judged = parse_single(
        f"reasons\n{json.dumps(example, ensure_ascii=False)}", dimensions=single.scored, scale=single.scale
    )
    assert list(judged.scores) == KEYS and judged.overall is not None

    pair_example = _example(pair.text)
    sides = [v for v in pair_example.values() if isinstance(v, dict)]
    # The two sides' examples differ, on the binary dimension too.
    assert sides[0] != sides[1] and {s[names[0]] for s in sides} == {0, 1}
    judged_pair = parse_pairwise(
        f"reasons\n{json.dumps(pair_example, ensure_ascii=False)}", dimensions=pair.scored, scale=pair.scale
    )
    assert list(judged_pair.scores_1) == KEYS and judged_pair.verdict == "tie"


def test_shared_scale_reads_as_before():
    dims = tuple(Dimension(k, k, k.title(), "", "", Scale(1, 5)) for k in ("helpfulness", "honesty"))
    p = _single("en", dims)
    assert "on the scale 1 to 5" in p.text and "1. Helpfulness\n" in p.text and p.scale == Scale(1, 5)
    assert '"Overall": 3' in p.text


@pytest.mark.parametrize(
    ("reply", "scores", "overall"),
    [
        ('ok\n{"safe": 1, "helpfulness": 4, "style": 7, "overall": 8}', [1, 4, 7], 8),
        ('好\n{"安全"：１，"有用性"："4/5"，"文风": "7分", "综合得分": "8/10"}', [1, 4, 7], 8),
        ("fine\n{'Safe': '0/1', 'HELP-fulness': 3, 'style': '9 out of 10'}", [0, 3, 9], None),
        ('x\n```json\n{"scores": {"Safe": 0, "Helpfulness": 5, "Style": 10}}\n```', [0, 5, 10], None),
    ],
)
def test_parser_reads_rubric_keys_and_names(reply, scores, overall):
    judged = parse_single(reply, dimensions=RUBRIC)
    assert judged.scores == dict(zip(KEYS, scores, strict=True)) and judged.overall == overall


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ('r\n{"safe": 2, "helpfulness": 4, "style": 7}', "Safe: 2 is outside the scale 0-1"),
        ('r\n{"safe": 1, "helpfulness": 6, "style": 7}', "Helpfulness: 6 is outside the scale 1-5"),
        ('r\n{"safe": 1, "helpfulness": "4/10", "style": 7}', "is out of 10, the scale is 1-5"),
        ('r\n{"safe": 1, "helpfulness": 4, "style": "7/5"}', "is out of 5, the scale is 1-10"),
        ('r\n{"safe": 1, "style": 7}', "missing dimension Helpfulness (有用性)"),
        ('r\n{"Factuality": 8, "Clarity": 7}', "missing dimension Safe (安全)"),
    ],
)
def test_each_dimension_is_held_to_its_own_scale(reply, reason):
    with pytest.raises(JudgeParseError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_single(reply, dimensions=RUBRIC)


def test_a_rubric_dimension_name_wins_over_other_meanings():
    reasoning = Dimension("reasoning", "推理", "Reasoning", "", "", Scale(1, 5))
    judged = parse_single('Sound steps.\n{"Reasoning": 4}', dimensions=[reasoning])
    assert judged.scores == {"reasoning": 4} and judged.explanation == "Sound steps."


def test_pairwise_sides_use_each_scale():
    reply = 'r\n{"answer_1": {"安全": 1, "有用性": 4, "文风": 9}, "answer_2": {"safe": 0, "helpfulness": 2, "style": 3}, "verdict": "1"}'
    judged = parse_pairwise(reply, dimensions=RUBRIC)
    assert judged.scores_1 == {"safe": 1, "helpfulness": 4, "style": 9}
    assert judged.scores_2 == {"safe": 0, "helpfulness": 2, "style": 3} and judged.verdict == "1"
    with pytest.raises(JudgeParseError, match="answer 2: Safe: 3 is outside the scale 0-1"):
        parse_pairwise(reply.replace('"safe": 0', '"safe": 3'), dimensions=RUBRIC)


def test_keys_and_objects_mix_and_repeats_are_refused():
    judged = parse_single('r\n{"Factuality": 8, "Safe": 1}', dimensions=["factuality", RUBRIC[0]])
    assert judged.scores == {"factuality": 8, "safe": 1}
    with pytest.raises(ValueError, match="dimension 'safe' appears twice"):
        parse_single("r {}", dimensions=[RUBRIC[0], RUBRIC[0]])
    with pytest.raises(ValueError, match="unknown dimension 'nope'"):
        parse_single("r {}", dimensions=["nope"])


@pytest.mark.parametrize(
    ("lang", "alignbench"), [("en", "Factuality and User Satisfaction"), ("zh", "事实正确性和满足用户需求")]
)
def test_the_rubric_prompt_does_not_weigh_alignbench_dimensions(lang, alignbench):
    for kind in ("single", "single_ref"):
        assert alignbench in default_template(kind, lang).text
        rubric = default_template(kind, lang, rubric=True)
        assert alignbench not in rubric.text and rubric.version != default_template(kind, lang).version
