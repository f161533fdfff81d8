"""Every file of the malformed corpus is rejected at the expected line with the expected specific reason."""

from pathlib import Path

import pytest

from app.datasets.formats import preview, sniff_container
from app.datasets.import_options import ImportOptions
from app.datasets.importer import import_file
from app.datasets.mapping import Mapping, guess_mapping
from app.datasets.validate import TaskNormaliser, make_builder

CORPUS = Path(__file__).resolve().parents[1] / "assets" / "malformed"

# file -> (line/row/element number, reason, number of valid records in the file)
EXPECTED = {
    "01_invalid_json.jsonl": (2, "invalid_json", 2),
    "02_invalid_utf8.jsonl": (2, "invalid_utf8", 2),
    "03_oversized_line.jsonl": (2, "oversized_line", 2),
    "04_not_object.jsonl": (3, "not_object", 2),
    "05_empty_file.jsonl": (0, "empty_file", 0),
    "06_unsupported_format.bin": (0, "unsupported_format", 0),
    "07_missing_answer.jsonl": (2, "missing_answer", 1),
    "08_empty_turn.jsonl": (1, "empty_turn", 1),
    "09_unknown_role.jsonl": (3, "unknown_role", 2),
    "10_assistant_not_last.jsonl": (2, "assistant_not_last", 1),
    "11_missing_task_type.jsonl": (4, "missing_task_type", 3),
    "12_wrong_type_content.jsonl": (1, "wrong_type", 0),
    "13_messages_not_list.jsonl": (2, "wrong_type", 1),
    "14_sharegpt_unknown_from.jsonl": (2, "unknown_role", 1),
    "15_no_user_turn.jsonl": (2, "no_user_turn", 1),
    "16_truncated_last_line.jsonl": (3, "invalid_json", 2),
    "17_json_array_broken.json": (3, "invalid_json", 2),
    "18_csv_missing_response.csv": (3, "missing_answer", 1),
    "19_csv_ragged_row.csv": (3, "wrong_column_count", 1),
    "20_task_type_too_long.jsonl": (1, "task_type_too_long", 0),
    "21_tags_wrong_type.jsonl": (2, "wrong_type", 1),
    "22_turn_without_role.jsonl": (1, "wrong_type", 0),
    "23_broken_parquet.parquet": (0, "unreadable_file", 0),
    "24_alpaca_missing_output.json": (2, "missing_answer", 1),
    "25_turn_not_object.jsonl": (2, "wrong_type", 1),
    "26_csv_missing_prompt.csv": (3, "missing_prompt", 1),
    "27_nul_character.jsonl": (2, "nul_character", 1),
}


def test_corpus_is_complete():
    files = sorted(p.name for p in CORPUS.iterdir())
    assert files == sorted(EXPECTED)
    assert len({reason for _, reason, _ in EXPECTED.values()}) >= 17


def _mapping(path: Path) -> Mapping:
    container = sniff_container(path, path.name)
    rows, _ = (
        preview(path, container, max_line_bytes=1000)
        if container not in ("empty", "unsupported")
        else ([], [])
    )
    m = guess_mapping([o for _, o in rows])
    if not m.task_l1:
        m.task_l1 = "task_type"
    return m


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_file(name, settings, make_user):
    owner = make_user()
    small = settings.model_copy(update={"max_line_bytes": 1000})
    path = CORPUS / name
    line, reason, n_ok = EXPECTED[name]
    result = import_file(
        path=path,
        options=ImportOptions(mapping=_mapping(path), name=name, policy="dry_run"),
        owner_id=owner.id,
        settings=small,
        filename=name,
    )
    assert result.status in ("validated", "rejected")
    issues = [(i[0], i[1]) for i in result.report["issues"]]
    assert issues == [(line, reason)], result.report["issues"]
    assert result.n_ok == n_ok
    assert result.n_bad == 1


def test_eval_sets_allow_missing_answer_but_not_missing_task():
    build = make_builder(Mapping(prompt=["q"], answer="a"), kind="eval", normaliser=TaskNormaliser())
    assert build({"q": "问题", "a": "", "task_type": "x"}, 1).reason == "missing_task_type"
    ok = make_builder(
        Mapping(prompt=["q"], answer="a", task_l1="t"), kind="eval", normaliser=TaskNormaliser()
    )
    built = ok({"q": "问题", "a": "", "t": "qa"}, 1)
    assert built.reference is None and built.answer == "" and built.task_l1 == "qa"


def test_default_task_type_fills_missing_values():
    build = make_builder(
        Mapping(shape="messages", task_l1="task_type", default_task="general/misc"),
        kind="train",
        normaliser=TaskNormaliser(),
    )
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    built = build({"messages": msgs}, 7)
    assert (built.task_l1, built.task_l2, built.line_no) == ("general", "misc", 7)


def test_whitespace_in_task_type_is_normalised_and_counted():
    norm = TaskNormaliser()
    build = make_builder(Mapping(prompt=["q"], answer="a", task_l1="c"), kind="train", normaliser=norm)
    for _ in range(3):
        built = build({"q": "x", "a": "y", "c": "closed\u00a0qa"}, 1)
        assert built.task_l1 == "closed qa"
    build({"q": "x", "a": "y", "c": "open qa"}, 2)
    assert norm.report()["count"] == 3
    assert norm.report()["examples"] == [{"from": "closed\u00a0qa", "to": "closed qa", "count": 3}]


def test_tool_calls_and_sample_fields():
    build = make_builder(
        Mapping(shape="messages", task_l1="task_type", tags="tags"), kind="train", normaliser=TaskNormaliser()
    )
    msgs = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "function": {"name": "w"}}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "1"},
        {"role": "assistant", "content": "It is sunny."},
    ]
    b = build({"messages": msgs, "task_type": "tools/weather", "tags": ["b", "robustness", "b"]}, 1)
    assert b.prompt == "S\nweather?\nsunny"
    assert b.answer == "It is sunny."
    assert (b.task_l1, b.task_l2, b.tags, b.has_system, b.n_turns) == (
        "tools",
        "weather",
        ("b", "robustness"),
        True,
        1,
    )
    assert len(b.content_hash) == 32
