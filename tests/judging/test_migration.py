"""Migrations 0046 and 0047 on SQLite and PostgreSQL: the judge tables exist, down and up again; a judge's
rating and result store through them, one result per (job, case), and a judge's assignment holds no slot;
a configuration from before 0047 scores AlignBench's dimensions after it."""

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.core.config import Settings
from app.core.db import get_engine
from app.judging.cases import case_prompts
from app.judging.configs import create_config, parse_config
from app.judging.record import Verdict, store
from app.models import Job, JudgeConfig, JudgeJob, JudgeResult, RatingAssignment, RatingCase, User
from tests.judging.conftest import endpoint_config
from tests.rating.conftest import make_jobs, new_task

TABLES = {"judgeconfig", "judgeprompt", "judgejob", "judgeresult"}
REPO_ALEMBIC = str(Path(__file__).resolve().parents[2] / "alembic.ini")


def _check(engine, settings: Settings) -> None:  # noqa: ANN001
    assert TABLES <= set(inspect(engine).get_table_names())
    jobs = make_jobs(engine, n=2)
    with Session(engine) as s:
        human = User(username="human", password_hash="x", role="rater")
        s.add(human)
        s.commit()
        hid = human.id or 0
    task = new_task(engine, jobs, [hid], mode="absolute")
    body = {"name": "j", "kind": "endpoint", "base_url": "http://127.0.0.1:9/v1", "model": "m", "key": "k" * 20,
            "templates": {"single": "Rate {{question}} / {{answer}}"}}  # fmt: skip
    with Session(engine) as s:
        config = create_config(s, req=parse_config(body), owner_id=jobs.owner_id, settings=settings)
        job = Job(kind="judge")
        s.add(job)
        s.flush()
        jj = JudgeJob(
            job_id=job.id or 0, config_id=config.id or 0, task_id=task.id or 0, owner_id=jobs.owner_id
        )
        s.add(jj)
        s.commit()
        case = s.exec(select(RatingCase).where(RatingCase.task_id == task.id)).first()
        assert case is not None
        prompts = case_prompts(s, config=config, task=task, case=case)
        ok = Verdict(True, scores={"factuality": 7}, detail={"single": {"explanation": "fine"}})
        assert store(s, job=jj, config=config, task=task, case=case, prompts=prompts, verdict=ok) is not None
        [assignment] = s.exec(
            select(RatingAssignment).where(RatingAssignment.rater_id == config.user_id)
        ).all()
        assert assignment.slot is None and assignment.status == "submitted"
        s.add(JudgeResult(judge_job_id=jj.id or 0, case_id=case.id or 0, outcome="failed"))
        with pytest.raises(IntegrityError):
            s.commit()


def test_sqlite_schema_and_a_judge_rating(engine, settings):
    _check(engine, settings)


def test_sqlite_downgrade_and_upgrade_again(settings):
    cfg = Config(REPO_ALEMBIC)
    cfg.attributes["url"] = settings.sqlalchemy_url
    command.downgrade(cfg, "0045")
    assert not TABLES & set(inspect(get_engine(settings)).get_table_names())
    command.upgrade(cfg, "head")
    assert TABLES <= set(inspect(get_engine(settings)).get_table_names())


@pytest.mark.postgres
def test_postgres_schema_and_a_judge_rating(pg):
    engine, settings = pg
    _check(engine, settings)


def _dimensions_column(engine, url: str) -> None:  # noqa: ANN001
    """A rubric judge, then down to 0046 (the column goes) and up again: the row is an AlignBench judge."""
    owner = make_jobs(engine, n=1).owner_id
    config = endpoint_config(engine, "http://127.0.0.1:9/v1", owner, dimensions="rubric")
    with Session(engine) as s:
        assert s.get_one(JudgeConfig, config.id).dimensions == "rubric"
    engine.dispose()
    cfg = Config(REPO_ALEMBIC)
    cfg.attributes["url"] = url
    command.downgrade(cfg, "0046")
    assert "dimensions" not in {c["name"] for c in inspect(engine).get_columns("judgeconfig")}
    command.upgrade(cfg, "head")
    engine.dispose()
    with engine.connect() as c:
        stored = c.execute(
            text("SELECT dimensions FROM judgeconfig WHERE id = :id"), {"id": config.id}
        ).scalar()
    assert stored == "alignbench"


def test_sqlite_0047_fills_the_dimensions_of_existing_judges(judging, settings):
    _dimensions_column(get_engine(settings), settings.sqlalchemy_url)


@pytest.mark.postgres
def test_postgres_0047_fills_the_dimensions_of_existing_judges(pg):
    engine, settings = pg
    _dimensions_column(engine, settings.sqlalchemy_url)
