"""The sample sink on SQLite and PostgreSQL: a generation line stored again (a resumed program answering a
prompt it had partly answered) keeps the first row and counts its tokens once; contract breaks are kept as
invalid events instead of stopping the tailer."""

import json

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models import Dataset, DatasetVersion, Generation, Job, JobEvent, SamplingJob, User
from worker.kinds.sample import SampleSink
from worker.tailer import Line


def _sampling(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        user = User(username="u", password_hash="x", role="researcher")
        session.add(user)
        session.flush()
        dataset = Dataset(name="d", owner_id=user.id)
        session.add(dataset)
        session.flush()
        version = DatasetVersion(dataset_id=dataset.id, number=1, created_by=user.id)
        job = Job(kind="sample", owner_id=user.id)
        session.add_all([version, job])
        session.flush()
        sampling = SamplingJob(owner_id=user.id, job_id=job.id, model_ref="embedded", model_dir="/m",
                               dataset_version_id=version.id)  # fmt: skip
        session.add(sampling)
        session.commit()
        return sampling.id, job.id


def _gen(prompt: str, index: int, text: str, tokens: int) -> dict:
    return {"type": "generation", "id": prompt, "index": index, "prompt_text": "p", "prompt_tokens": 3, "text": text,
            "tokens": tokens, "finish_reason": "stop", "ttft_s": 0.1, "tpot_s": 0.01, "time_s": 0.2}  # fmt: skip


def _lines(start: int, events: list) -> list[Line]:
    return [
        Line(start + i, (e if isinstance(e, str) else json.dumps(e)).encode()) for i, e in enumerate(events)
    ]


def _check(engine: Engine) -> None:
    sampling_id, job_id = _sampling(engine)
    sink = SampleSink(sampling_id, job_id)
    first = [{"type": "start", "backend_version": "0.32.0"}, _gen("11", 0, "first", 5), _gen("11", 1, "b", 7),
             {"type": "progress", "done": 1, "total": 4, "tokens": 12}]  # fmt: skip
    again = [_gen("11", 0, "second", 9), _gen("12", 0, "c", 2), _gen("x", 0, "bad id", 1), "not json",
             {"type": "progress", "done": 2, "total": 4}]  # fmt: skip
    with engine.begin() as conn:
        sink.store(conn, _lines(0, first))
    with engine.begin() as conn:
        sink.store(conn, _lines(4, again))
    with Session(engine) as session:
        rows = session.exec(
            select(Generation).order_by(col(Generation.prompt_id), col(Generation.index))
        ).all()
        assert [(g.prompt_id, g.index, g.text) for g in rows] == [
            ("11", 0, "first"),
            ("11", 1, "b"),
            ("12", 0, "c"),
        ]
        stored = session.get_one(SamplingJob, sampling_id)
        assert (stored.tokens, stored.backend_version) == (14, "0.32.0")
        job = session.get_one(Job, job_id)
        assert (job.progress_done, job.progress_total) == (2, 4)
        kinds = session.exec(select(JobEvent.type).order_by(col(JobEvent.seq))).all()
        assert kinds == ["start", "progress", "invalid", "invalid", "progress"]


def test_sink_on_sqlite(settings, engine):
    _check(engine)


@pytest.mark.postgres
def test_sink_on_postgres(pg):
    _check(pg[0])
