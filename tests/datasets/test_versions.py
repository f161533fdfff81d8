"""Edits make new immutable versions, and the diff matches an independent computation from version snapshots."""

import pytest
from sqlmodel import Session, select

from app.datasets.import_options import ImportOptions
from app.datasets.importer import import_file
from app.datasets.mapping import Mapping
from app.datasets.versions import EditError, diff_versions, edit_version
from app.datasets.visibility import visible_in
from app.models import Dataset, DatasetVersion, Sample, SampleTag
from tests.conftest import SHARED_DATA


@pytest.fixture
def dataset(settings, make_user, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", calls.append)
    owner = make_user()
    m = Mapping(prompt=["input"], answer="target", task_l1="type")
    res = import_file(
        path=SHARED_DATA / "pclue_train_9.jsonl",
        options=ImportOptions(mapping=m, name="p"),
        owner_id=owner.id,
    )
    return {"id": res.dataset_id, "owner": owner, "indexed": calls}


def snapshot(session, dataset_id, version):
    """{content_hash+line: (task, tags)} of a version, straight from the rows."""
    rows = session.exec(select(Sample).where(visible_in(dataset_id, version))).all()
    return {r.line_no: (r.task_l1, r.task_l2, r.tags, r.id, r.content_hash) for r in rows}


def test_edits_and_diff(engine, dataset):
    d, uid = dataset["id"], dataset["owner"].id
    with Session(engine) as s:
        v1 = snapshot(s, d, 1)
        nli = sorted(x[3] for x in v1.values() if x[0] == "nli")
        mrc = sorted(x[3] for x in v1.values() if x[0] == "mrc")
        r = edit_version(s, dataset_id=d, base_version=1, user_id=uid, action="drop", sample_ids=nli[:10])
        assert (r.version.number, r.n_changed, r.version.n_samples) == (2, 10, 695)
    with Session(engine) as s:
        r = edit_version(
            s,
            dataset_id=d,
            base_version=2,
            user_id=uid,
            action="add_tag",
            value="robustness",
            sample_ids=mrc[:5] + nli[:3],
        )  # the dropped ones are not in v2 and are ignored
        assert (r.version.number, r.n_changed, r.n_requested) == (3, 5, 8)
    with Session(engine) as s:
        v3 = snapshot(s, d, 3)
        mrc3 = [x[3] for x in v3.values() if x[0] == "mrc"]
        ids = sorted(mrc3)[-2:] + sorted(mrc3)[:1]  # two re-added (tagged) copies and one original row
        r = edit_version(
            s,
            dataset_id=d,
            base_version=3,
            user_id=uid,
            action="set_task_type",
            value="mrc\u00a0 /extractive",
            sample_ids=ids,
        )
        assert r.version.number == 4
    with Session(engine) as s:
        with pytest.raises(EditError, match="latest version"):
            edit_version(s, dataset_id=d, base_version=2, user_id=uid, action="drop", sample_ids=mrc[:1])
    with Session(engine) as s:
        snaps = {n: snapshot(s, d, n) for n in (1, 2, 3, 4)}
        assert len(snaps[4]) == 695
        assert sum(1 for x in snaps[4].values() if (x[0], x[1]) == ("mrc", "extractive")) == 3
        assert sum("robustness" in x[2] for x in snaps[4].values()) == 5
        tags = s.exec(select(SampleTag.sample_id).where(SampleTag.tag == "robustness")).all()
        retyped_tagged = sum(1 for x in snaps[3].values() if x[3] in ids and "robustness" in x[2])
        assert (
            len(tags) == 5 + retyped_tagged
        )  # v3 copies, then v4 copies of the re-typed ones that were tagged
        assert snaps[1] == snapshot(s, d, 1)  # version 1 is unchanged by later edits
        for a in (1, 2, 3):
            for b in range(a + 1, 5):
                diff = diff_versions(s, dataset_id=d, a=a, b=b, limit=10_000)
                sa, sb = snaps[a], snaps[b]
                added = {ln for ln in sb if ln not in sa}
                removed = {ln for ln in sa if ln not in sb}
                modified = {ln for ln in sa.keys() & sb.keys() if sa[ln][:3] != sb[ln][:3]}
                assert {x["line_no"] for x in diff["added"]} == added
                assert {x["line_no"] for x in diff["removed"]} == removed
                assert {x["after"]["line_no"] for x in diff["modified"]} == modified
                assert (diff["n_added"], diff["n_removed"], diff["n_modified"]) == (
                    len(added),
                    len(removed),
                    len(modified),
                )
                for row in diff["task_types"]:

                    def count(snap, key=row["task_type"]):
                        return sum(1 for x in snap.values() if (x[0] + ("/" + x[1] if x[1] else "")) == key)

                    assert (row["a"], row["b"], row["delta"]) == (count(sa), count(sb), count(sb) - count(sa))
        assert s.get(Dataset, d).latest_version == 4
        assert [v.number for v in s.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == d))] == [
            1,
            2,
            3,
            4,
        ]
    assert len(dataset["indexed"]) == 4


def test_edit_errors(engine, dataset):
    d, uid = dataset["id"], dataset["owner"].id
    with Session(engine) as s:
        one = s.exec(select(Sample.id).where(Sample.dataset_id == d)).first()
        for kwargs, msg in (
            ({"action": "explode", "sample_ids": [one]}, "unknown action"),
            ({"action": "drop", "sample_ids": []}, "no samples"),
            ({"action": "drop", "sample_ids": [999999]}, "none of the selected"),
            ({"action": "add_tag", "sample_ids": [one], "value": "a,b"}, "without commas"),
            ({"action": "set_task_type", "sample_ids": [one], "value": " / x"}, "level1"),
            ({"action": "remove_tag", "sample_ids": [one], "value": "absent"}, "nothing to change"),
        ):
            with pytest.raises(EditError, match=msg):
                edit_version(s, dataset_id=d, base_version=1, user_id=uid, **kwargs)
            s.rollback()
        assert s.get(Dataset, d).latest_version == 1


def test_edit_by_query_uses_browse_filters(engine, dataset):
    from app.datasets.browse import BrowseFilters

    d, uid = dataset["id"], dataset["owner"].id
    with Session(engine) as s:
        r = edit_version(
            s,
            dataset_id=d,
            base_version=1,
            user_id=uid,
            action="set_task_type",
            value="coref",
            filters=BrowseFilters(task="anaphora_resolution"),
        )
        assert r.n_changed == 5
        diff = diff_versions(s, dataset_id=d, a=1, b=2)
        assert diff["n_modified"] == 5 and diff["n_added"] == diff["n_removed"] == 0
        assert {(t["task_type"], t["delta"]) for t in diff["task_types"] if t["delta"]} == {
            ("coref", 5),
            ("anaphora_resolution", -5),
        }


@pytest.mark.postgres
def test_postgres_import_edit_diff_export(pg):
    """The same path on PostgreSQL: ids from the sequence, one transaction, edits, diff and export."""
    from app.datasets.export import iter_export
    from app.models import Role, User

    engine, settings = pg
    with Session(engine) as s:
        u = User(username="pg", role=Role.researcher, password_hash="x")
        s.add(u)
        s.commit()
        uid = u.id
    m = Mapping(prompt=["question"], answer="std_answer", task_l1="class", extra_tags=["belle"])
    path = SHARED_DATA / "belle_eval_set.json"
    strict = import_file(
        path=path,
        options=ImportOptions(mapping=m, name="x", policy="all"),
        owner_id=uid,
        engine=engine,
        settings=settings,
        enqueue_index=False,
    )
    assert strict.status == "rejected"
    with Session(engine) as s:
        assert s.exec(select(Sample)).first() is None and s.exec(select(Dataset)).first() is None
    res = import_file(
        path=path,
        options=ImportOptions(mapping=m, name="b"),
        owner_id=uid,
        engine=engine,
        settings=settings,
        enqueue_index=False,
    )
    assert (res.status, res.n_ok, res.n_bad, res.report["task_normalised"]["count"]) == (
        "succeeded",
        631,
        369,
        52,
    )
    with Session(engine) as s:
        ids = s.exec(select(Sample.id).where(Sample.task_l1 == "closed qa").order_by(Sample.id)).all()
        assert len(ids) == 52 and len(s.exec(select(SampleTag)).all()) == 631
        r = edit_version(
            s,
            dataset_id=res.dataset_id,
            base_version=1,
            user_id=uid,
            action="set_task_type",
            value="qa/closed",
            sample_ids=ids,
        )
        assert r.n_changed == 52
    with Session(engine) as s:
        diff = diff_versions(s, dataset_id=res.dataset_id, a=1, b=2)
        assert diff["n_modified"] == 52 and {
            (t["task_type"], t["delta"]) for t in diff["task_types"] if t["delta"]
        } == {("closed qa", -52), ("qa/closed", 52)}
    lines = b"".join(iter_export(engine, dataset_id=res.dataset_id, version=2)).splitlines()
    assert len(lines) == 631 and sum(b'"qa/closed"' in x for x in lines) == 52
