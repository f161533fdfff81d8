"""Export -> re-import gives the same samples (messages, task_type, tags, reference) for train and eval sets."""

import json

from sqlmodel import Session, select

from app.datasets.export import export_filename, iter_export
from app.datasets.import_options import ImportOptions
from app.datasets.importer import import_file
from app.datasets.mapping import Mapping
from app.datasets.versions import edit_version
from app.datasets.visibility import visible_in
from app.models import Sample
from tests.conftest import SHARED_DATA


def _samples(engine, dataset_id, version):
    with Session(engine) as s:
        rows = s.exec(select(Sample).where(visible_in(dataset_id, version))).all()
        return sorted(
            (
                r.messages,
                r.prompt,
                r.answer,
                r.reference,
                r.task_l1,
                r.task_l2,
                r.tags,
                r.content_hash,
                r.n_turns,
                r.has_system,
            )
            for r in rows
        )


def _roundtrip(engine, tmp_path, owner_id, dataset_id, version, kind):
    path = tmp_path / f"export-{dataset_id}-{version}.jsonl"
    path.write_bytes(
        b"".join(iter_export(engine, dataset_id=dataset_id, version=version, eval_set=kind == "eval"))
    )
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    m = Mapping(
        shape="messages", task_l1="task_type", tags="tags", reference="reference" if kind == "eval" else ""
    )
    res = import_file(path=path, options=ImportOptions(mapping=m, name="again", kind=kind), owner_id=owner_id)
    assert res.status == "succeeded" and res.n_bad == 0
    return lines, res


def test_train_roundtrip_after_edits(settings, engine, make_user, tmp_path, monkeypatch):
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", lambda v: None)
    owner = make_user()
    m = Mapping(prompt=["input"], answer="target", task_l1="type", task_prefix="pclue")
    res = import_file(
        path=SHARED_DATA / "pclue_train_9.jsonl",
        options=ImportOptions(mapping=m, name="p"),
        owner_id=owner.id,
    )
    with Session(engine) as s:
        ids = s.exec(select(Sample.id).where(Sample.dataset_id == res.dataset_id).order_by(Sample.id)).all()
        edit_version(
            s,
            dataset_id=res.dataset_id,
            base_version=1,
            user_id=owner.id,
            action="add_tag",
            value="robustness",
            sample_ids=ids[:20],
        )
    with Session(engine) as s:
        edit_version(
            s, dataset_id=res.dataset_id, base_version=2, user_id=owner.id, action="drop", sample_ids=ids[-5:]
        )
    lines, again = _roundtrip(engine, tmp_path, owner.id, res.dataset_id, 3, "train")
    assert len(lines) == 700
    assert all(x["task_type"].startswith("pclue/") for x in lines)
    assert sum(x["tags"] == ["robustness"] for x in lines) == 20
    assert set(lines[0]) == {"messages", "task_type", "tags"}
    assert _samples(engine, again.dataset_id, 1) == _samples(engine, res.dataset_id, 3)
    assert len(_samples(engine, res.dataset_id, 1)) == 705  # older versions still export as they were


def test_eval_roundtrip_keeps_references(settings, engine, make_user, tmp_path, monkeypatch):
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", lambda v: None)
    owner = make_user()
    m = Mapping(prompt=["question"], reference="std_answer", task_l1="class")
    res = import_file(
        path=SHARED_DATA / "belle_eval_set.json",
        options=ImportOptions(mapping=m, name="e", kind="eval"),
        owner_id=owner.id,
    )
    lines, again = _roundtrip(engine, tmp_path, owner.id, res.dataset_id, 1, "eval")
    assert len(lines) == 1000 and sum(x["reference"] is None for x in lines) == 369
    assert all(x["messages"][-1]["role"] == "user" for x in lines)
    assert _samples(engine, again.dataset_id, 1) == _samples(engine, res.dataset_id, 1)


def test_export_filename_is_ascii():
    assert export_filename("北京 数据/../x", 3) == "x-v3.jsonl"
    assert export_filename("pclue", 1) == "pclue-v1.jsonl"
