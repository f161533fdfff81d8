"""Results of a hand-computable task read from the database: means, intervals, rubric versions,
adjudication, pairwise win/tie/loss, alpha against krippendorff, accuracy against gold."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from sqlmodel import Session, select

from app.models import Rubric
from app.rating import overview, rubrics
from app.rating_results.data import VersionError, load
from app.rating_results.export import export_csv
from app.rating_results.results import task_results
from tests.rating_results.conftest import add_judge, make_task, rate, rate_small, s3, set_gold, task_row

H, HO, M = "helpfulness", "honesty", "harmlessness"


@pytest.fixture
def rated(engine, absolute):
    """Cases 0-3 (math/arith, math/algebra, writing/poem, qa) rated by two raters each; 4-7 unrated."""
    rate_small(engine, absolute)
    return absolute


def results(engine, task, **kw):  # noqa: ANN001, ANN003
    with Session(engine) as s:
        return task_results(s, task_row(engine, task), **kw)


def row(table: list[dict], task_type: str) -> dict:
    return next(r for r in table if r["task_type"] == task_type)


def test_means_per_task_type_are_the_mean_of_each_case_mean_and_intervals_bracket_them(engine, rated):
    r = results(engine, rated)
    table = r["scores"]["a"]
    assert [(x["task_type"], x["level"]) for x in table] == [
        ("", 0), ("math", 1), ("math/algebra", 2), ("math/arith", 2), ("qa", 1), ("writing", 1), ("writing/poem", 2),
    ]  # fmt: skip
    everything = row(table, "")
    # Case means of helpfulness: 3, 5, 2, 4; unrated cases have no score and do not count.
    assert everything["cases"] == 8 and everything["rated"] == 4
    assert everything["dimensions"][H]["mean"] == pytest.approx(3.5)
    assert everything["dimensions"][H]["n"] == 4
    assert row(table, "math")["dimensions"][H]["mean"] == pytest.approx(4.0)
    assert row(table, "math/arith")["dimensions"][H]["mean"] == pytest.approx(3.0)
    # Usability (equal weights, on 0..1): 0.8333, 1, 0.5, 0.79167; usable from 0.6: 3 of 4.
    assert everything["usability"]["mean"] == pytest.approx((5 / 6 + 1 + 0.5 + 0.79166667) / 4)
    assert everything["usable"]["mean"] == pytest.approx(0.75)
    for x in table:
        for interval in [x["usability"], x["usable"], *x["dimensions"].values()]:
            if interval is not None:
                assert interval["low"] <= interval["mean"] <= interval["high"]
    spread = everything["dimensions"][H]
    assert spread["low"] < spread["mean"] < spread["high"], "four different case means give a real interval"


def test_another_rubric_version_recomputes_usability_without_re_rating(engine, rated):
    with Session(engine) as s:
        rubric = s.exec(select(Rubric).where(Rubric.name == rubrics.DEFAULT_NAME)).one()
        dims = [
            {"key": H, "name_en": "Helpfulness", "scale": "1-5", "weight": 3},
            {"key": HO, "name_en": "Honesty", "scale": "1-5", "weight": 1},
        ]
        version = rubrics.new_version(
            s, rubric=rubric, body={"dimensions": dims, "usable_threshold": 0.8}, by=1
        )
        version_id = version.id
    r = results(engine, rated, version_id=version_id)
    everything = row(r["scores"]["a"], "")
    # (3 * h + 1 * o) / 4 on 0..1 per case: 0.625, 1, 0.3125, 0.75; usable from 0.8: only case 1.
    assert everything["usability"]["mean"] == pytest.approx((0.625 + 1 + 0.3125 + 0.75) / 4)
    assert everything["usable"]["mean"] == pytest.approx(0.25)
    assert M not in everything["dimensions"]
    assert r["ignored"] == [{"key": M, "reason": "not_in_version", "ratings": 8}]
    assert r["version"]["number"] == 2 and not r["version"]["task_version"]
    # The task's own version is unchanged.
    assert row(results(engine, rated)["scores"]["a"], "")["usable"]["mean"] == pytest.approx(0.75)


def test_a_version_of_another_rubric_is_refused(engine, rated):
    with Session(engine) as s:
        other = rubrics.create_rubric(
            s, name="other", body={"dimensions": [{"key": "x", "name_en": "X"}]}, owner_id=rated.owner_id
        )
        with pytest.raises(VersionError, match="not a version of this task's rubric"):
            load(s, task_row(engine, rated), version_id=other.id)


def test_an_adjudicated_score_replaces_the_mean_when_asked(engine, rated):
    with Session(engine) as s:
        task = task_row(engine, rated)
        case = overview.task_case(s, task, rated.cases[2].id or 0)
        assert case is not None
        overview.adjudicate(s, task=task, case=case, body={"scores": s3(5, 5, 5)}, by=rated.owner_id)
    plain = row(results(engine, rated)["scores"]["a"], "")
    settled = row(results(engine, rated, use_adjudicated=True)["scores"]["a"], "")
    assert plain["dimensions"][H]["mean"] == pytest.approx(3.5) and plain["adjudicated"] == 0
    assert settled["dimensions"][H]["mean"] == pytest.approx((3 + 5 + 5 + 4) / 4)
    assert settled["adjudicated"] == 1
    assert (
        row(results(engine, rated, use_adjudicated=True)["scores"]["a"], "writing")["usability"]["mean"]
        == 1.0
    )


def test_alpha_and_kappa_match_the_references_on_the_same_matrix(engine, rated):
    from sklearn.metrics import cohen_kappa_score

    agreement = row(results(engine, rated)["agreement"], "")
    helpfulness = next(d for d in agreement["dimensions"] if d["key"] == H)
    nan = np.nan
    # raters 1..3 x cases 0..3 (unrated cases add nothing)
    matrix = [[4, 5, nan, 4], [2, nan, 3, 4], [nan, 5, 1, nan]]
    expected = krippendorff.alpha(
        reliability_data=matrix, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5]
    )
    assert helpfulness["alpha"]["value"] == pytest.approx(expected)
    pairs = {tuple(p["raters"]): p for p in helpfulness["kappa_pairs"]}
    assert set(pairs) == {("rater1", "rater2"), ("rater1", "rater3"), ("rater2", "rater3")}
    k12 = cohen_kappa_score([4, 4], [2, 4], weights="quadratic", labels=[1, 2, 3, 4, 5])
    assert pairs[("rater1", "rater2")]["value"] == pytest.approx(k12)
    # rater1 and rater3 share one case only: no kappa, and the reason says why.
    assert pairs[("rater1", "rater3")]["value"] is None
    assert pairs[("rater1", "rater3")]["reason"] == "too_few_pairable"


def test_undefined_agreement_says_why(engine, absolute):
    rate(engine, absolute, absolute.cases[0], "rater1", s3(4, 4, 4))
    dims = row(results(engine, absolute)["agreement"], "")["dimensions"]
    assert {d["alpha"]["reason"] for d in dims} == {"too_few_pairable"}
    assert all(d["alpha"]["value"] is None for d in dims)


def test_gold_accuracy_per_rater(engine, rated):
    set_gold(engine, rated.cases[0], s3(4, 5, 5))
    set_gold(engine, rated.cases[3], s3(4, 4, 4))
    gold = results(engine, rated)["gold"]
    by = {g["rater"]: g for g in gold["raters"]}
    assert gold["gold_cases"] == 2
    assert by["rater1"]["accuracy"] == pytest.approx(1.0) and by["rater1"]["exact"] == 1.0
    # rater2 is off by 2 of 4 on helpfulness (0.5) and 1 of 4 on harmlessness (0.25), over 6 pairs.
    assert by["rater2"]["accuracy"] == pytest.approx(1 - 0.75 / 6)
    assert by["rater2"]["exact"] == pytest.approx(4 / 6)
    assert by["rater2"]["cases"] == 3 and by["rater2"]["gold_cases"] == 2
    assert by["rater3"]["accuracy"] is None and by["rater3"]["gold_cases"] == 0
    assert not any(g["far_from_gold"] for g in gold["raters"]), "two gold cases are too few to flag anyone"


def test_disputes_rank_the_widest_case_first(engine, rated):
    disputes = results(engine, rated)["disputes"]
    # case 2: harmlessness 3 vs 5 and helpfulness 3 vs 1 (0.5 either way, a tie on range, then std);
    # case 0: helpfulness 4 vs 2 (0.5); case 3: 4 vs 5 (0.25); case 1 agreed.
    assert [d["case_id"] for d in disputes][-1] == rated.cases[3].id
    assert {d["case_id"] for d in disputes} == {rated.cases[i].id for i in (0, 2, 3)}
    assert disputes[0]["range"] == pytest.approx(0.5)


def test_csv_has_a_row_per_case_with_each_raters_scores(engine, rated):
    with Session(engine) as s:
        text = export_csv(load(s, task_row(engine, rated)), use_adjudicated=False)
    lines = text.splitlines()
    header = lines[0].split(",")
    assert header[:3] == ["task_type", "case_id", "sample_id"]
    assert "rater1.helpfulness" in header and header[-3:] == ["usability", "usable", "adjudicated"]
    first = dict(zip(header, lines[1].split(","), strict=True))
    assert first["rater1.helpfulness"] == "4" and first["rater2.helpfulness"] == "2"
    assert first["rater3.helpfulness"] == "" and first["mean.helpfulness"] == "3.0"
    assert first["usable"] == "True" and first["adjudicated"] == "False"
    assert len(lines) == 1 + 8


@pytest.fixture
def pairwise(engine, make_user):
    t = make_task(engine, make_user, mode="pairwise")
    c = t.cases
    both = {"a": s3(4, 4, 4), "b": s3(3, 3, 3)}
    for case, rater, pref in [
        (c[0], "rater1", "a"), (c[0], "rater2", "a"),
        (c[1], "rater1", "tie"), (c[1], "rater3", "b"),
        (c[2], "rater2", "b"), (c[2], "rater3", "b"),
        (c[3], "rater1", "a"), (c[3], "rater2", "tie"),
    ]:  # fmt: skip
        rate(engine, t, case, rater, both, preference=pref)
    return t


def test_pairwise_win_tie_loss_and_preference_agreement(engine, pairwise):
    r = results(engine, pairwise)
    everything, math = row(r["pairwise"], ""), row(r["pairwise"], "math")
    assert everything["counts"] == {"win": 3, "tie": 2, "loss": 3}
    assert math["counts"] == {"win": 2, "tie": 1, "loss": 1}
    # Per case A's win share: 1, 0, 0, 0.5.
    assert everything["shares"]["win"]["mean"] == pytest.approx(0.375)
    assert everything["shares"]["win"]["low"] <= 0.375 <= everything["shares"]["win"]["high"]
    pref = row(r["agreement"], "")["preference"]
    assert pref["with_ties"]["value"] == pytest.approx(0.5)  # cases 0 and 2 agree, 1 and 3 do not
    assert pref["without_ties"]["value"] == pytest.approx(1.0)  # cases 1 and 3 have no pair without a tie
    assert pref["ceiling"] == {"with_ties": 0.63, "without_ties": 0.81}
    assert set(r["scores"]) == {"a", "b"}
    assert row(r["scores"]["b"], "")["dimensions"][H]["mean"] == pytest.approx(3.0)
    assert r["task"]["models"]["a"].endswith("run:9871/step-00004242")


def test_an_adjudicated_preference_replaces_the_raters_verdicts(engine, pairwise):
    with Session(engine) as s:
        task = task_row(engine, pairwise)
        case = overview.task_case(s, task, pairwise.cases[1].id or 0)
        assert case is not None
        body = {"scores": {"a": s3(5, 5, 5), "b": s3(1, 1, 1)}, "preference": "a"}
        overview.adjudicate(s, task=task, case=case, body=body, by=pairwise.owner_id)
    assert row(results(engine, pairwise, use_adjudicated=True)["pairwise"], "")["counts"] == {
        "win": 4, "tie": 1, "loss": 2,
    }  # fmt: skip
    assert row(results(engine, pairwise)["pairwise"], "")["counts"] == {"win": 3, "tie": 2, "loss": 3}


def test_a_dimension_whose_scale_changed_is_ignored_and_said_so(engine, rated):
    with Session(engine) as s:
        rubric = s.exec(select(Rubric).where(Rubric.name == rubrics.DEFAULT_NAME)).one()
        dims = [
            {"key": H, "name_en": "Helpfulness", "scale": "1-10", "weight": 1},
            {"key": HO, "name_en": "Honesty", "scale": "1-5", "weight": 1},
        ]
        version_id = rubrics.new_version(s, rubric=rubric, body={"dimensions": dims}, by=1).id
    r = results(engine, rated, version_id=version_id)
    assert r["ignored"] == [
        {"key": M, "reason": "not_in_version", "ratings": 8},
        {"key": H, "reason": "scale_changed", "ratings": 8},
    ]
    everything = row(r["scores"]["a"], "")
    assert everything["dimensions"][H] is None  # a 4 on 1-5 is not a 4 on 1-10
    assert everything["dimensions"][HO]["mean"] == pytest.approx((5 + 5 + 3 + 4) / 4)


def test_kappa_pairs_come_lowest_first(engine, absolute):
    # rater1 and rater2 agree on every case; rater3 reverses them.
    for case, (a, b) in zip(absolute.cases[:4], [(1, 5), (2, 4), (4, 2), (5, 1)], strict=True):
        rate(engine, absolute, case, "rater1", s3(a, 3, 3))
        rate(engine, absolute, case, "rater2", s3(a, 3, 3))
        rate(engine, absolute, case, "rater3", s3(b, 3, 3))
    dims = row(results(engine, absolute)["agreement"], "")["dimensions"]
    pairs = next(d for d in dims if d["key"] == H)["kappa_pairs"]
    assert [p["raters"] for p in pairs][-1] == ["rater1", "rater2"]
    assert [p["value"] for p in pairs] == sorted(p["value"] for p in pairs)
    assert pairs[0]["value"] < 0 < pairs[-1]["value"] == 1.0


def test_an_llm_judge_is_read_against_the_raters_and_never_enters_the_means(engine, pairwise, make_user):
    add_judge(engine, make_user, pairwise, ["a", "b", "a", "tie"], {"a": s3(5, 5, 5), "b": s3(1, 1, 1)})
    r = results(engine, pairwise)
    # The raters' figures are those of the test above: the judge's four verdicts and scores are not in them.
    assert row(r["pairwise"], "")["counts"] == {"win": 3, "tie": 2, "loss": 3}
    assert row(r["scores"]["b"], "")["dimensions"][H]["mean"] == pytest.approx(3.0)
    assert row(r["agreement"], "")["preference"]["with_ties"]["value"] == pytest.approx(0.5)
    assert r["task"]["ratings"] == 8 and r["task"]["judge_ratings"] == 4
    assert not r["ignored"]  # the judge's own dimension set is not a rater's dropped score
    judged = row([j for j in r["judges"] if j["judge"] == "judge-1-gpt"], "")
    assert judged["cases"] == 4
    # (judge, rater) verdict pairs: case 0 a/a a/a, case 1 b/tie b/b, case 2 a/b a/b, case 3 tie/a tie/tie
    assert judged["preference"]["with_ties"] == {"value": pytest.approx(4 / 8), "n": 8, "reason": None}
    # without ties: case 0's two, case 1's b/b, case 2's two; case 3 has a tie in both pairs
    assert judged["preference"]["without_ties"] == {"value": pytest.approx(3 / 5), "n": 5, "reason": None}
    helpful_a = next(d for d in judged["dimensions"] if (d["side"], d["key"]) == ("a", H))
    assert {p["rater"]: p["n"] for p in helpful_a["pairs"]} == {"rater1": 3, "rater2": 3, "rater3": 2}
