"""Judging fixtures: short job intervals, two sampling jobs on 8 prompts (tests/rating/conftest), a human
rater, the fake judge server, and helpers to make a judge configuration and a rating task."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session

from app.core.config import Settings, get_settings
from app.judging.configs import create_config, parse_config
from app.models import JudgeConfig, Role
from tests.judging.fake_judge import KEY, FakeJudge, Server
from tests.rating.conftest import Jobs, make_jobs, new_task
from tests.worker.conftest import FAST

N = 8


@pytest.fixture
def judging(settings, monkeypatch) -> Settings:
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def fake_judge() -> Iterator[Server]:
    with Server(FakeJudge()) as server:
        yield server


@pytest.fixture
def pairs(judging, engine) -> Jobs:
    return make_jobs(engine, n=N)


def endpoint_config(engine, url: str, owner_id: int, **extra) -> JudgeConfig:  # noqa: ANN001
    body = {"name": "GPT judge", "kind": "endpoint", "base_url": url, "model": "judge-1", "key": KEY, **extra}
    with Session(engine) as session:
        config = create_config(session, req=parse_config(body), owner_id=owner_id, settings=get_settings())
        session.expunge(config)
        return config


def rating_task(engine, jobs: Jobs, make_user, mode: str = "pairwise"):  # noqa: ANN001
    human = make_user(Role.rater, f"human-{mode}")
    return new_task(engine, jobs, [human.id], mode=mode, overlap=1), human
