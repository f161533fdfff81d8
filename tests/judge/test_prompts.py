"""Default judge prompts: AlignBench's dimension sets, task_type -> group with overrides, reference-guided and pairwise variants, versions."""

import pytest

from app.judge.dimensions import DIMENSIONS, GROUPS, DimensionError, Scale, dimensions_for, group_for
from app.judge.parse import parse_pairwise, parse_single
from app.judge.prompts import LANGS, build_pairwise, build_single, default_template, template_kind
from app.judge.templates import KINDS, Template, TemplateError


def test_groups_are_alignbench_sets():
    zh = {g: [DIMENSIONS[k].zh for k in keys] for g, keys in GROUPS.items()}
    assert zh == {
        "factual": ["事实正确性", "满足用户需求", "清晰度", "完备性"],
        "reasoning": ["事实正确性", "满足用户需求", "逻辑连贯性", "完备性"],
        "writing": ["事实正确性", "满足用户需求", "逻辑连贯性", "创造性", "丰富度"],
        "advisory": ["事实正确性", "满足用户需求", "公平与可负责程度", "创造性"],
    }
    assert [d.en for d in dimensions_for("advisory")] == [
        "Factuality",
        "User Satisfaction",
        "Fairness and Responsibility",
        "Creativity",
    ]


@pytest.mark.parametrize(
    ("task_type", "group"),
    [
        ("逻辑推理", "reasoning"),
        ("逻辑推理/数独", "reasoning"),
        ("写作/公文", "writing"),
        ("知识问答", "factual"),
        ("综合问答/寻求建议", "advisory"),
        ("Math", "reasoning"),
        ("闲聊", "factual"),
        ("", "factual"),
    ],
)
def test_group_for_task_type(task_type, group):
    assert group_for(task_type) == group


def test_group_overrides_whole_task_type_before_level1():
    overrides = {"写作/翻译": "factual", "写作": "advisory", "闲聊": "writing"}
    assert group_for("写作/翻译", overrides=overrides) == "factual"
    assert group_for("写作/公文", overrides=overrides) == "advisory"
    assert group_for("闲聊", overrides=overrides) == "writing"
    assert group_for("闲聊", default="advisory") == "advisory"


def test_unknown_group_is_refused():
    with pytest.raises(DimensionError, match="unknown dimension group 'poetry'"):
        group_for("写作", overrides={"写作": "poetry"})
    with pytest.raises(DimensionError, match="unknown dimension group"):
        dimensions_for("poetry")
    with pytest.raises(DimensionError, match="low < high"):
        Scale(5, 5)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_default_template_is_valid(kind, lang):
    t = default_template(kind, lang)
    assert t.kind == kind and "{{dimensions}}" in t.text and "{{json_example}}" in t.text


def test_template_kind_follows_the_reference():
    assert template_kind(pairwise=False, reference=None) == "single"
    assert template_kind(pairwise=False, reference="  \n") == "single"
    assert template_kind(pairwise=False, reference="42") == "single_ref"
    assert template_kind(pairwise=True, reference="42") == "pairwise_ref"


def test_single_prompt_reference_guided_in_chinese():
    p = build_single(
        template=default_template("single_ref", "zh"),
        lang="zh",
        group="reasoning",
        task_type="逻辑推理",
        question="甲比乙高，乙比丙高，谁最矮？",
        answer="丙最矮。",
        reference="丙",
    )
    assert p.dimensions == ("factuality", "user_satisfaction", "logical_coherence", "completeness")
    assert p.kind == "single_ref" and p.template_version == default_template("single_ref", "zh").version
    assert "[参考答案开始]\n丙\n[参考答案结束]" in p.text
    assert "1. 事实正确性（Factuality）" in p.text and "清晰度" not in p.text
    # Explanation first, then one JSON object with the Chinese names and the overall score.
    assert "必须在打分前进行评价和解释" in p.text
    assert '"逻辑连贯性": ' in p.text and '"综合得分": ' in p.text
    assert p.text.index("[用户的提问]") > p.text.index("{")


def test_single_prompt_without_reference_mentions_none():
    p = build_single(
        template=default_template("single", "en"),
        lang="en",
        group="writing",
        task_type="写作",
        question="Write a haiku.",
        answer="...",
        scale=Scale(1, 5),
    )
    assert "reference" not in p.text.lower()
    assert "on the scale 1 to 5" in p.text and p.scale == Scale(1, 5)
    assert '"Creativity": ' in p.text and '"Overall": ' in p.text


def test_reference_and_template_must_match():
    with pytest.raises(TemplateError, match="needs a single_ref template, not a single one"):
        build_single(
            template=default_template("single", "en"),
            lang="en",
            group="factual",
            task_type="x",
            question="q",
            answer="a",
            reference="r",
        )
    with pytest.raises(TemplateError, match="unknown prompt language 'fr'"):
        default_template("single", "fr")


def test_pairwise_prompt_shows_answers_in_given_order():
    p = build_pairwise(
        template=default_template("pairwise_ref", "en"),
        lang="en",
        group="factual",
        task_type="知识问答",
        question="Capital of France?",
        answer_1="FIRST Paris",
        answer_2="SECOND Lyon",
        reference="Paris",
    )
    assert p.text.index("FIRST Paris") < p.text.index("SECOND Lyon")
    assert '"answer_1": {"Factuality"' in p.text and '"verdict": "tie"' in p.text
    assert '"1", "2", or "tie"' in p.text


def test_edited_template_gets_its_own_version():
    edited = Template("single", default_template("single", "en").text + "\nBe brief.")
    p = build_single(template=edited, lang="en", group="factual", task_type="x", question="q", answer="a")
    assert p.template_version == edited.version != default_template("single", "en").version
    assert p.text.endswith("Be brief.")


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("group", list(GROUPS))
def test_a_reply_in_the_prompts_own_example_format_parses(lang, group):
    """The contract between prompt and parser: a judge that follows the example is read back, by key."""
    single = build_single(
        template=default_template("single", lang),
        lang=lang,
        group=group,
        task_type="t",
        question="q",
        answer="a",
    )
    example = single.text[single.text.index("{") : single.text.index("}") + 1]
    judged = parse_single(f"reasons\n{example}", dimensions=single.dimensions, scale=single.scale)
    assert list(judged.scores) == list(GROUPS[group]) and judged.overall is not None

    pair = build_pairwise(
        template=default_template("pairwise_ref", lang),
        lang=lang,
        group=group,
        task_type="t",
        question="q",
        answer_1="a",
        answer_2="b",
        reference="r",
    )
    start = pair.text.index('{"')
    example = pair.text[start : pair.text.index("\n", start)]
    judged_pair = parse_pairwise(f"reasons\n{example}", dimensions=pair.dimensions, scale=pair.scale)
    assert judged_pair.verdict == "tie" and list(judged_pair.scores_2) == list(GROUPS[group])
