"""Full-text search equals a brute-force case-insensitive substring search, for 1-2 and 3+ characters, on real and generated data."""

import random
from pathlib import Path

import pytest
from sqlmodel import Session

from app.datasets.browse import BrowseFilters, all_matching_ids, browse_page, count_matching
from app.datasets.import_options import ImportOptions
from app.datasets.importer import import_file
from app.datasets.mapping import Mapping
from app.datasets.search import brute_force_ids, fold, gram_docs, gram_token
from app.models import Role
from tests.conftest import SHARED_DATA
from worker.kinds.index import index_version

PCLUE = Mapping(prompt=["input"], answer="target", task_l1="type")
BELLE = Mapping(prompt=["question"], answer="std_answer", task_l1="class")


def load(engine, owner_id: int, path: Path, mapping: Mapping, *, name: str, kind: str = "train", target=None):
    """Imports a file with the importer and indexes the new version; returns (dataset_id, version, version_id)."""
    opts = ImportOptions(mapping=mapping, name=name, kind=kind, target_dataset_id=target)
    result = import_file(path=path, options=opts, owner_id=owner_id, engine=engine, enqueue_index=False)
    assert result.status == "succeeded", result.report
    index_version(version_id=result.version_id)
    return result.dataset_id, result.version, result.version_id


def queries_from(texts: list[str], rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        t = rng.choice([x for x in texts if len(x) > 8])
        k = rng.choice([1, 1, 2, 2, 3, 4, 6])
        i = rng.randrange(0, len(t) - k)
        out.append(t[i : i + k])
    return out


def check(engine, dataset_id: int, version: int, version_id: int, q: str, field: str = "all") -> int:
    with Session(engine) as s:
        f = BrowseFilters(q=q, field=field)
        got = all_matching_ids(s, dataset_id=dataset_id, version=version, filters=f)
        with engine.connect() as c:
            want = brute_force_ids(c, dataset_id=dataset_id, version=version, q=q, field=field)
        assert got == want, (q, field, len(got), len(want))
        assert count_matching(
            s, dataset_id=dataset_id, version=version, version_id=version_id, filters=f
        ) == len(want)
        # the first page is the first 50 of the same list
        page = browse_page(s, dataset_id=dataset_id, version=version, version_id=version_id, filters=f)
        assert [r["id"] for r in page.rows] == want[:50]
        return len(want)


def test_fold_is_per_character_and_length_preserving():
    s = "İSTANBUL ΟΔΟΣ Straße ÀÉ 北京 ABC"
    assert len(fold(s)) == len(s)
    assert fold(s) == "".join(fold(c) for c in s)
    assert fold("ΟΔΟΣ") == "οδοσ"  # no context-dependent final sigma


def test_gram_tokens_are_distinct_ascii():
    docs = gram_docs([fold("北京北京"), "ab", ""], "p")
    toks = b"".join(docs[0]).decode().split()
    assert sorted(toks) == sorted(
        {gram_token("北", "p"), gram_token("京", "p"), gram_token("北京", "p"), gram_token("京北", "p")}
    )
    assert all(t.isalnum() and t.isascii() for t in toks)
    assert b"".join(docs[2]) == b""


def test_search_on_real_files_equals_brute_force(engine, make_user):
    user = make_user(Role.researcher)
    pc = load(engine, user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="pclue")
    be = load(engine, user.id, SHARED_DATA / "belle_eval_set.json", BELLE, name="belle", kind="eval")
    rng = random.Random(7)
    import json

    texts = [
        json.loads(line)["input"] for line in open(SHARED_DATA / "pclue_train_9.jsonl", encoding="utf-8")
    ]
    texts += [
        json.loads(line)["std_answer"] for line in open(SHARED_DATA / "belle_eval_set.json", encoding="utf-8")
    ]
    fixed = [
        "北京",
        "答案：",
        "答",
        "的",
        "是的",
        "，",
        "\n",
        "Python",
        "python",
        "的一",
        "1",
        "%",
        "_",
        '"',
        "a b",
    ]
    total = 0
    for q in fixed + queries_from(texts, rng, 60):
        for ds in (pc, be):
            for field in ("all", "prompt", "answer"):
                total += check(engine, *ds, q, field)
    assert total > 1000  # the queries do hit


def test_eval_references_are_searched_as_answers(engine, make_user, tmp_path):
    user = make_user(Role.researcher)
    be = load(engine, user.id, SHARED_DATA / "belle_eval_set.json", BELLE, name="belle", kind="eval")
    import json

    rows = [json.loads(line) for line in open(SHARED_DATA / "belle_eval_set.json", encoding="utf-8")]
    want = sum(1 for r in rows if "北京" in r["question"] or "北京" in r["std_answer"])
    assert want == 9 and check(engine, *be, "北京") == want  # 6 (the questions) before references
    assert check(engine, *be, "北京", "answer") == sum(1 for r in rows if "北京" in r["std_answer"])
    # an eval conversation: earlier assistant turns are its answer, the last one its reference
    convo = [
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "Alpha"},
        {"role": "user", "content": "u2"},
        {"role": "assistant", "content": "Omega"},
    ]
    path = tmp_path / "eval.jsonl"
    path.write_text(json.dumps({"messages": convo, "task_type": "chat"}) + "\n", encoding="utf-8")
    ev = load(engine, user.id, path, Mapping(shape="messages", task_l1="task_type"), name="ev", kind="eval")
    for q, n in [("alpha", 1), ("OMEGA", 1), ("om", 1), ("lp", 1), ("ao", 0), ("haom", 0)]:
        for field in ("all", "answer"):
            assert check(engine, *ev, q, field) == n, (q, field)
        assert check(engine, *ev, q, "prompt") == 0


def test_search_on_generated_data_case_and_punctuation(engine, make_user, tmp_path):
    user = make_user(Role.researcher)
    rng = random.Random(3)
    alphabet = "北京大学答案是的不好Aa Bb，。！?%_\"'\\İΣσς" + "".join(chr(0x4E00 + i) for i in range(30))
    lines = []
    import json

    for i in range(400):
        p = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 25)))
        lines.append(
            json.dumps(
                {
                    "messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}],
                    "task_type": f"t{i % 3}/s{i % 2}",
                },
                ensure_ascii=False,
            )
        )
    path = tmp_path / "gen.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    ds = load(engine, user.id, path, Mapping(shape="messages", task_l1="task_type"), name="gen")
    for q in [
        "a",
        "A",
        "ab",
        "AB",
        "İ",
        "i",
        "σ",
        "Σ",
        "ς",
        "%",
        "_",
        '"',
        "\\",
        "北京",
        "A b",
        "大学答",
        "!?%",
    ] + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(40)]:
        q = q.strip() or "a"
        for field in ("all", "prompt", "answer"):
            check(engine, *ds, q, field)


def test_search_respects_versions(engine, make_user, tmp_path):
    """Rows of a later merge are not found in the earlier version, and both versions stay exact."""
    user = make_user(Role.researcher)
    pc = load(engine, user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="pclue")
    v2 = load(engine, user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="", target=pc[0])
    assert v2[1] == 2
    n1 = check(engine, *pc, "答案")
    n2 = check(engine, *v2, "答案")
    assert n2 == 2 * n1
    # re-running the indexing does not double-index
    index_version(version_id=v2[2])
    assert check(engine, *v2, "答案") == n2


@pytest.mark.parametrize(
    "bad", [{"field": "title"}, {"length_of": "x"}, {"min_chars": -1}, {"min_chars": 5, "max_chars": 2}]
)
def test_bad_filters_are_rejected(bad):
    with pytest.raises(ValueError):
        BrowseFilters(**bad).validate()


def test_control_characters_are_indexed_exactly_and_nul_lines_rejected(engine, make_user, tmp_path):
    """Control characters survive indexing; a NUL line is reported (PostgreSQL text cannot hold it)."""
    import json

    user = make_user(Role.researcher)
    prompts = ["x\u0000北京大学在北京", "\u0001\n\t北京大学\u001f", "北京大学", "no match here"]
    path = tmp_path / "ctl.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(
                {
                    "messages": [{"role": "user", "content": p}, {"role": "assistant", "content": p[::-1]}],
                    "task_type": "t",
                }
            )
            for p in prompts
        ),
        encoding="utf-8",
    )
    ds = load(engine, user.id, path, Mapping(shape="messages", task_l1="task_type"), name="ctl")
    for q in ("北京大学", "学在北京", "京在学大京北", "京大", "学", "x", "x\u0000", "\u0000", "\u0001\n\t"):
        for field in ("all", "prompt", "answer"):
            check(engine, *ds, q, field)
    assert check(engine, *ds, "学在北京") == 0  # only the NUL line had it, and it was rejected
    assert check(engine, *ds, "北京大学") == 2
