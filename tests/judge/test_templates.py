"""User-edited judge templates substitute only {{name}} placeholders, refuse unknown or missing ones, and evaluate nothing."""

import pytest

from app.judge.templates import Template, TemplateError, placeholders

BASE = "Judge {{ task_type }}.\nQ: {{question}}\nA: {{answer}}\n"


def test_render_substitutes_each_placeholder_once():
    t = Template("single", BASE)
    assert t.names == ("task_type", "question", "answer")
    out = t.render({"task_type": "写作", "question": "q?", "answer": "a!"})
    assert out == "Judge 写作.\nQ: q?\nA: a!\n"


def test_a_value_holding_a_placeholder_stays_literal():
    # One pass: an answer that says "{{question}}" must not pull the question (or anything) in.
    t = Template("single", BASE)
    out = t.render({"task_type": "x", "question": "SECRET", "answer": "{{question}} {{reference}}"})
    assert out.endswith("A: {{question}} {{reference}}\n")
    assert out.count("SECRET") == 1


@pytest.mark.parametrize(
    "text",
    [
        "{__class__} {0.__class__.__mro__} {question.__init__.__globals__}",
        "{__import__('os').system('echo hi')} %(question)s ${question} {% for x in y %}",
    ],
)
def test_format_style_fields_are_plain_text(text):
    # The literal text stays as it is: nothing was looked up or evaluated.
    t = Template("single", "{{question}} {{answer}} " + text)
    assert t.render({"question": "q", "answer": "a"}) == "q a " + text


def test_unknown_placeholder_is_refused_when_saved():
    with pytest.raises(TemplateError, match=r"unknown placeholder \{\{__class__\}\}"):
        Template("single", "{{question}} {{answer}} {{__class__}}")


@pytest.mark.parametrize("bad", ["{{question.__class__}}", "{{ a b }}", "{{}}", "{{x|upper}}", "{{0}}"])
def test_malformed_placeholder_is_refused(bad):
    with pytest.raises(TemplateError, match="is not a placeholder"):
        Template("single", "{{question}} {{answer}} " + bad)


def test_required_placeholder_must_be_present():
    with pytest.raises(TemplateError, match=r"must contain \{\{answer\}\}"):
        Template("single", "{{question}} only")
    with pytest.raises(TemplateError, match=r"must contain \{\{reference\}\}"):
        Template("single_ref", BASE)
    with pytest.raises(TemplateError, match=r"must contain \{\{answer_2\}\}"):
        Template("pairwise", "{{question}} {{answer_1}}")


def test_render_refuses_unknown_and_missing_values():
    t = Template("single", BASE)
    with pytest.raises(TemplateError, match="unknown placeholder '__class__'"):
        t.render({"task_type": "x", "question": "q", "answer": "a", "__class__": "x"})
    with pytest.raises(TemplateError, match=r"no value for placeholder \{\{task_type\}\}"):
        t.render({"question": "q", "answer": "a"})


def test_unknown_kind_is_refused():
    with pytest.raises(TemplateError, match="unknown template kind 'triple'"):
        Template("triple", BASE)


def test_version_is_a_short_hash_of_the_content():
    a, b = Template("single", BASE), Template("single", BASE + " ")
    assert a.version == Template("single", BASE).version
    assert a.version != b.version
    assert len(a.version) == 12 and int(a.version, 16) >= 0


def test_placeholders_in_order_of_first_use():
    assert placeholders("{{b}} {{a}} {{ b }}") == ("b", "a")
