"""Field mappings are guessed right for the real files and for the common shapes; dotted paths resolve."""

import json

from app.datasets.mapping import Mapping, get_path, guess_kind, guess_mapping, list_paths
from tests.conftest import SHARED_DATA


def _first(name, n=20):
    lines = (SHARED_DATA / name).read_text(encoding="utf-8").splitlines()[:n]
    return [json.loads(x) for x in lines]


def test_pclue_guess():
    m = guess_mapping(_first("pclue_train_9.jsonl"))
    assert (m.shape, m.prompt, m.answer, m.task_l1) == ("fields", ["input"], "target", "type")
    assert guess_kind(_first("pclue_train_9.jsonl"), m, "pclue_train_9.jsonl") == "train"


def test_belle_eval_guess():
    rows = _first("belle_eval_set.json", 50)
    m = guess_mapping(rows, kind="eval")
    assert (m.prompt, m.answer, m.reference, m.task_l1) == (["question"], "std_answer", "std_answer", "class")
    assert guess_kind(rows, m, "belle_eval_set.json") == "eval"


def test_belle_seed_guess():
    m = guess_mapping(_first("belle_zh_seed_tasks.jsonl"))
    assert m.prompt == ["instruction", "instances[0].input"]
    assert (m.answer, m.task_l1) == ("instances[0].output", "name")
    assert "instances[0].input" in list_paths(_first("belle_zh_seed_tasks.jsonl"))


def test_common_shapes():
    assert guess_mapping([{"messages": [], "task_type": "a"}]).shape == "messages"
    sg = guess_mapping([{"conversations": [], "category": "c"}])
    assert (sg.shape, sg.task_l1) == ("sharegpt", "category")
    alp = guess_mapping([{"instruction": "i", "input": "x", "output": "o", "system": "s"}])
    assert (alp.prompt, alp.answer, alp.system) == (["instruction", "input"], "output", "system")
    csv = guess_mapping([{"Prompt": "p", "Response": "r", "tags": "a,b"}])
    assert (csv.prompt, csv.answer, csv.tags) == (["Prompt"], "Response", "tags")


def test_paths():
    obj = {"a": {"b": [{"c": 1}, {"c": 2}]}, "l": ["x", "y"]}
    assert get_path(obj, "a.b[1].c") == 2
    assert get_path(obj, "a.b.1.c") == 2
    assert get_path(obj, "a.b.c") == 1  # a key on a list applies to its first element
    assert get_path(obj, "l[1]") == "y"
    assert get_path(obj, "a.zz") is None and get_path(obj, "l[5]") is None and get_path(obj, "l.0.x") is None


def test_mapping_from_dict_accepts_strings_and_rejects_shapes():
    m = Mapping.from_dict({"prompt": "instruction, input", "extra_tags": "robustness", "bogus": 1})
    assert m.prompt == ["instruction", "input"] and m.extra_tags == ["robustness"]
    try:
        Mapping.from_dict({"shape": "yaml"})
    except ValueError as exc:
        assert "unknown shape" in str(exc)
    else:
        raise AssertionError("accepted an unknown shape")


def test_reference_and_second_level_are_guessed():
    rows = [{"question": "q", "reference": "r", "category": "qa", "subcategory": "open"}]
    m = guess_mapping(rows)
    assert (m.prompt, m.answer, m.reference) == (["question"], "", "reference")
    assert (m.task_l1, m.task_l2) == ("category", "subcategory")
    assert guess_kind(rows, m, "mine.jsonl") == "eval"  # a reference and no answer: an eval set
    typed = guess_mapping([{"input": "i", "output": "o", "type": "nli", "subtype": "ocnli"}])
    assert (typed.answer, typed.task_l1, typed.task_l2) == ("output", "type", "subtype")
    both = guess_mapping([{"prompt": "p", "answer": "a", "reference": "r"}], kind="eval")
    assert (both.answer, both.reference) == ("answer", "reference")
    for name in ("output", "response", "target", "label"):
        assert guess_mapping([{"text": "t", name: "x"}]).answer == name
        assert guess_mapping([{"text": "t", name: "x"}], kind="eval").reference == name
    msgs = guess_mapping([{"messages": [], "type": "chat", "sub_type": "casual", "gold": "g"}])
    assert (msgs.task_l1, msgs.task_l2, msgs.reference) == ("type", "sub_type", "gold")
