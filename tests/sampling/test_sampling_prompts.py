"""Prompts from a real pCLUE dataset version: the filter's samples, cut before the last answer, which
becomes the reference; written once per job in the contract's shape."""

import json

import orjson
from sqlmodel import Session, select

from app.models import Sample
from app.sampling.prompts import references, select_ids, split_prompt, write_prompts
from app.sampling.request import Filter


def test_split_takes_the_last_assistant_turn_as_the_reference():
    msgs = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
    ]
    cut = split_prompt(msgs)
    assert cut.messages == msgs[:4] and cut.reference == "d"
    # An eval sample without an answer turn: all prompt, its reference field as the reference.
    assert split_prompt(msgs[:2], "ref").messages == msgs[:2]
    assert split_prompt(msgs[:2], "ref").reference == "ref"


def test_pclue_prompts_by_task_type(pclue, engine, tmp_path):
    with Session(engine) as session:
        ids = select_ids(session, dataset_id=pclue.dataset_id, version=1, flt=Filter(task="generate"))
        all_ids = select_ids(session, dataset_id=pclue.dataset_id, version=1, flt=Filter())
        samples = {s.id: s for s in session.exec(select(Sample).where(Sample.id.in_(ids))).all()}  # type: ignore[union-attr]
        refs = references(session, ids)
    assert len(ids) == pclue.task_counts["generate"] == 23
    assert len(all_ids) == sum(pclue.task_counts.values())
    path = tmp_path / "prompts.jsonl"
    assert write_prompts(engine, ids=ids, mode="chat", path=path) == 23
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [int(line["id"]) for line in lines] == ids
    for line in lines:
        sample = samples[int(line["id"])]
        stored = orjson.loads(sample.messages)
        assert line["messages"] == stored[:-1] and line["messages"][-1]["role"] == "user"
        assert refs[sample.id] == stored[-1]["content"] == sample.answer
        assert set(line) == {"id", "messages"}


def test_continuation_prompts_are_raw_text_and_the_file_is_written_once(pclue, engine, tmp_path):
    with Session(engine) as session:
        ids = select_ids(
            session, dataset_id=pclue.dataset_id, version=1, flt=Filter(task="anaphora_resolution")
        )
        first = session.get_one(Sample, ids[0])
    path = tmp_path / "prompts.jsonl"
    assert write_prompts(engine, ids=ids, mode="continuation", path=path) == 5
    line = json.loads(path.read_text().splitlines()[0])
    assert line == {"id": str(ids[0]), "text": first.prompt}
    before = path.read_bytes()
    # A resumed job keeps its prompts even if it would select others now.
    assert write_prompts(engine, ids=ids[:1], mode="chat", path=path) == 5
    assert path.read_bytes() == before
