"""Version statistics match an independent straightforward computation on the real pCLUE and BELLE files."""

import json
from collections import Counter

import numpy as np
from sqlmodel import Session

from app.datasets.stats import edges_for, histogram
from app.datasets.stats_cache import load_stats
from app.models import DatasetVersion, Role
from tests.conftest import SHARED_DATA
from tests.datasets.test_search import BELLE, PCLUE, load


def read(name: str) -> list[dict]:
    return [json.loads(line) for line in open(SHARED_DATA / name, encoding="utf-8") if line.strip()]


def stats_of(engine, vid: int) -> dict:
    with Session(engine) as s:
        v = s.get(DatasetVersion, vid)
        assert v.status == "ready" and v.progress == 1.0, (v.status, v.error)
        return json.loads(v.stats_json)


def test_pclue_statistics(engine, make_user, settings):
    user = make_user(Role.researcher)
    _, _, vid = load(engine, user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="pclue")
    st = stats_of(engine, vid)
    rows = read("pclue_train_9.jsonl")
    n = len(rows)
    assert st["n_samples"] == n == 705
    types = Counter(r["type"] for r in rows)
    assert {t["l1"]: t["count"] for t in st["task_tree"]} == dict(types)
    assert abs(sum(t["share"] for t in st["task_tree"]) - 1) < 1e-9
    assert st["task_tree"][0] == {
        "l1": "classify",
        "count": 305,
        "share": 305 / n,
        "children": [{"l2": "", "count": 305, "share": 305 / n}],
    }
    assert st["has_system"] == {"count": 0, "share": 0.0}
    for metric in ("prompt_chars", "answer_chars", "turns", "prompt_tokens", "answer_tokens"):
        h = st["histograms"][metric]
        assert sum(h["all"]) == n, metric
        for t, c in types.items():
            assert sum(h["by_task"][t]) == c, (metric, t)
    # histogram of answer lengths, recomputed
    alen = np.array([len(r["target"]) for r in rows])
    assert st["histograms"]["answer_chars"]["all"] == histogram(alen, edges_for(alen))
    # tokens: every sample tokenized (705 < the sample cap), the mean agrees with a direct count
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(settings.tokenizer_path))
    ptoks = [len(tok.encode(r["input"], add_special_tokens=False).ids) for r in rows]
    assert st["token_sample"] == {"rows": n, "of": n, "available": True}
    assert st["histograms"]["prompt_tokens"]["summary"]["all"]["mean"] == round(float(np.mean(ptoks)), 2)
    # most repeated answers and openings
    answers = Counter(r["target"] for r in rows)
    assert [(a["text"], a["count"]) for a in st["top_answers"][:5]] == answers.most_common(5)
    openings = Counter(r["input"][:15] for r in rows)
    assert st["top_openings"][0]["count"] == openings.most_common(1)[0][1]
    endings = Counter(r["input"][-8:] for r in rows)
    assert st["top_endings"][0]["count"] == endings.most_common(1)[0][1]
    assert any(e["text"].endswith("答案：") for e in st["top_endings"])
    assert sum(1 for r in rows if r["input"].endswith("答案：")) == 652
    # exact duplicates: same prompt and answer
    pairs = Counter((r["input"], r["target"]) for r in rows)
    dups = [c for c in pairs.values() if c >= 2]
    assert st["exact_duplicates"]["groups"] == len(dups)
    assert st["exact_duplicates"]["samples"] == sum(dups)
    assert st["tags"] == []


def test_belle_statistics_and_cache(engine, make_user):
    user = make_user(Role.researcher)
    _, _, vid = load(engine, user.id, SHARED_DATA / "belle_eval_set.json", BELLE, name="belle", kind="eval")
    st = stats_of(engine, vid)
    rows = read("belle_eval_set.json")
    assert st["n_samples"] == 1000
    classes = Counter(" ".join(r["class"].split()) for r in rows)
    assert {t["l1"]: t["count"] for t in st["task_tree"]} == dict(classes)
    assert classes["closed qa"] == 52  # the no-break space was normalised
    # an eval set keeps std_answer as the reference: its answers are all empty
    assert st["top_answers"][0] == {"count": 1000, "id": st["top_answers"][0]["id"], "text": ""}
    qs = Counter(r["question"] for r in rows)
    assert st["histograms"]["prompt_chars"]["summary"]["all"]["max"] == max(len(q) for q in qs)
    with Session(engine) as s:
        version = s.get(DatasetVersion, vid)
        assert version is not None
        a = load_stats(version)
        b = load_stats(version)
        assert a is not None and a[0] is b[0]  # parsed once
        assert "<" not in a[1]


def test_edges_for_small_integers_and_long_tails():
    assert edges_for(np.array([0, 1, 3])) == [0, 1, 2, 3]
    e = edges_for(np.arange(10_000))
    assert e[0] == 0 and len(e) <= 42 and e[-1] >= np.percentile(np.arange(10_000), 99)
    assert sum(histogram(np.arange(10_000), e)) == 10_000


def test_histogram_of_one_turn_everywhere_has_no_empty_zero_bar():
    turns = np.ones(50, dtype=np.int64)
    e = edges_for(turns)
    assert e == [1] and histogram(turns, e) == [50]
    assert edges_for(np.array([2, 3, 5])) == [2, 3, 4, 5]
