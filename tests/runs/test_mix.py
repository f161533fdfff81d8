"""The mix table's "after" counts are what the trainer trains on: checked against trainer.data's own split and mix on the real export."""

from collections import Counter

import pytest
from sqlmodel import Session

from app.core.db import get_engine
from app.datasets.export import iter_export
from app.runs.mix import group_counts, mix_table, scale_task, weights
from tests.runs.conftest import PCLUE, ImportedDataset
from trainer.data import DataError, mix_samples, read_samples, split_heldout


def import_prefixed(owner_id: int) -> ImportedDataset:
    """pCLUE with level 1 "pclue" and its type as level 2, so the table has both levels."""
    from app.datasets.import_options import ImportOptions
    from app.datasets.importer import import_file
    from app.datasets.mapping import Mapping

    m = Mapping(prompt=["input"], answer="target", task_l1="type", task_prefix="pclue")
    res = import_file(
        path=PCLUE, options=ImportOptions(mapping=m, name="pclue-l2"), owner_id=owner_id, filename="p.jsonl"
    )
    assert res.status == "succeeded", res.report
    return ImportedDataset(res.dataset_id, 1, owner_id, dict(res.report["task_counts"]))


@pytest.fixture
def two_versions(pclue_dataset, settings, tmp_path):
    """Two versions trained together (groups "nli" and "pclue/nli" both exist), and their export as a run writes it."""
    other = import_prefixed(pclue_dataset.owner_id)
    pairs = [(pclue_dataset.dataset_id, 1), (other.dataset_id, 1)]
    path = tmp_path / "train.jsonl"
    with open(path, "wb") as fh:
        for d, v in pairs:
            for chunk in iter_export(get_engine(settings), dataset_id=d, version=v):
                fh.write(chunk)
    return pairs, path


def trainer_counts(path, mix, fraction, level):
    """Independent: what prepare_data's split and mix keep, counted per task_type at `level`."""
    samples = read_samples(path)
    train, _ = split_heldout(samples, fraction, seed=42)
    mixed = mix_samples(train, mix, seed=42)
    key = (lambda s: s.task_l1) if level == 1 else (lambda s: s.task_type)
    return Counter(key(s) for s in mixed), Counter(key(s) for s in samples)


MIXES = [
    ({}, 0.0),
    ({"nli": 2, "classify": 0.5}, 0.0),
    ({"pclue": 0.3, "pclue/nli": "×1.5", "generate": 0}, 0.0),
    ({"nli": 0.37, "pclue/classify": 2.25}, 0.1),
    ({"pclue": 3}, 0.25),
]


@pytest.mark.parametrize(("mix", "fraction"), MIXES)
@pytest.mark.parametrize("level", [1, 2])
def test_after_counts_equal_the_trainers_mix_of_the_export(two_versions, engine, mix, fraction, level):
    pairs, path = two_versions
    with Session(engine) as s:
        counts = group_counts(s, pairs)
    parsed = {k: float(str(v).lstrip("×")) for k, v in mix.items()}
    table = mix_table(counts, parsed, level=level, eval_fraction=fraction)
    after, before = trainer_counts(path, mix, fraction, level)
    assert {r.key: r.after for r in table.rows if r.after} == dict(after)
    assert {r.key: r.count for r in table.rows} == dict(before)
    assert table.total == sum(before.values()) and table.total_after == sum(after.values())
    assert sum(r.share for r in table.rows) == pytest.approx(1.0)
    if table.total_after:
        assert sum(r.after_share for r in table.rows) == pytest.approx(1.0)


def test_group_counts_are_the_visible_samples_keyed_as_the_trainer_reads_them(two_versions, engine):
    pairs, path = two_versions
    with Session(engine) as s:
        counts = group_counts(s, pairs)
    assert counts == dict(Counter((x.task_l1, x.task_l2) for x in read_samples(path)))
    assert counts[("nli", "")] == counts[("pclue", "nli")] == 253


def test_weights_shown_per_level(two_versions, engine):
    pairs, _ = two_versions
    with Session(engine) as s:
        counts = group_counts(s, pairs)
    table = mix_table(counts, {"pclue": 2.0, "pclue/nli": 0.5}, level=1)
    shown = {r.key: r.weight for r in table.rows}
    assert shown["pclue"] == "2" and shown["nli"] == "1"  # the level-1 key as typed
    table = mix_table(counts, {"pclue/nli": 0.5}, level=1)
    assert {r.key: r.weight for r in table.rows}["pclue"] == ""  # its groups differ: "mixed"
    table = mix_table(counts, {"pclue": 2.0, "pclue/nli": 0.5}, level=2)
    shown = {r.key: r.weight for r in table.rows}
    assert shown["pclue/nli"] == "0.5" and shown["pclue/classify"] == "2" and shown["nli"] == "1"


def test_unknown_mix_keys_are_the_trainers_error(two_versions, engine):
    pairs, _ = two_versions
    with Session(engine) as s:
        counts = group_counts(s, pairs)
    with pytest.raises(DataError, match="unknown task_type 'pclue/nope'"):
        weights(counts, {"pclue/nope": 2})


def test_scale_task_multiplies_the_effective_weight(two_versions, engine):
    pairs, _ = two_versions
    with Session(engine) as s:
        counts = group_counts(s, pairs)
    base = {"pclue": 2.0, "pclue/nli": 3.0, "classify": 0.5}
    half_l1 = weights(counts, scale_task(counts, base, "pclue", 0.5))
    full = weights(counts, base)
    for g, w in full.items():
        assert half_l1[g] == (w * 0.5 if g[0] == "pclue" else w)
    quarter_l2 = weights(counts, scale_task(counts, base, "pclue/nli", 0.25))
    for g, w in full.items():
        assert quarter_l2[g] == (w * 0.25 if g == ("pclue", "nli") else w)
    with pytest.raises(ValueError, match="unknown task_type"):
        scale_task(counts, base, "nope", 0.5)


def test_mix_partial_follows_the_form(researcher, two_versions):
    pairs, _ = two_versions
    form = {
        "train_ds": [str(d) for d, _ in pairs],
        "mix_level": "2",
        "mix.pclue/nli": "2",
        "f.data.eval_fraction": "0",
    }
    form.update({f"v.{d}": str(v) for d, v in pairs})
    response = researcher.post("/runs/new/mix", data=form, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.text
    assert html.lstrip().startswith('<div id="mix-table"') and "<html" not in html
    row = html[html.index('data-task="pclue/nli"') :].split("</tr>")[0]
    assert 'value="2"' in row and ">506<" in row  # 253 × 2
    response = researcher.post(
        "/runs/new/mix", data={**form, "mix.nope": "3"}, headers={"HX-Request": "true"}
    )
    assert "unknown task_type" in response.text


def test_the_mix_fragment_skips_the_pickers(researcher, two_versions, monkeypatch):
    """It is fetched on every weight edit; the pickers list up to 100 runs' checkpoint directories."""
    calls: list[str] = []
    monkeypatch.setattr(
        "app.api.routes.launch.dataset_choices", lambda s, **_: calls.append("datasets") or []
    )
    monkeypatch.setattr("app.api.routes.launch.checkpoint_choices", lambda s: calls.append("ckpt") or [])
    pairs, _ = two_versions
    form = {"train_ds": [str(d) for d, _ in pairs], "mix.nli": "2", **{f"v.{d}": str(v) for d, v in pairs}}
    response = researcher.post("/runs/new/mix", data=form, headers={"HX-Request": "true"})
    assert response.status_code == 200 and 'id="mix-table"' in response.text and calls == []
    page = researcher.post("/runs/new/mix", data=form)  # no HTMX: the whole page, pickers and all
    assert (
        page.status_code == 200 and "<html" in page.text and calls == ["datasets", "datasets", "ckpt"]
    )  # train and validation pickers


def test_level_one_keeps_differing_level_two_weights(researcher, two_versions):
    pairs, _ = two_versions
    form = {"train_ds": [str(d) for d, _ in pairs], "mix_level": "1", "mix.pclue/nli": "0.5"}
    form.update({f"v.{d}": str(v) for d, v in pairs})
    html = researcher.post("/runs/new/mix", data=form, headers={"HX-Request": "true"}).text
    row = html[html.index('data-task="pclue"') :].split("</tr>")[0]
    assert "readonly" in row and 'name="mix.pclue/nli" value="0.5"' in row  # posted again as it was
    assert 'name="mix.pclue/classify" value="1"' in row
    assert ">578<" in row  # 705 - 253 + round(0.5 × 253)
