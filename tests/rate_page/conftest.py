"""Fixtures of the rater page tests: a rater on a seeded pairwise task, another rater who is not on it."""

import pytest
from sqlmodel import Session

from app.models import Role
from tests.rate_page.factory import SECRETS, seed_task


@pytest.fixture
def setup(engine, client_as):
    rater = client_as(Role.rater, "rita")
    other = client_as(Role.rater, "otto")
    with Session(engine) as s:
        task = seed_task(s, owner=rater.user.id, raters=[rater.user.id], n=4)
        key = task.task_key
    return rater, other, key


def assert_blind(text: str) -> None:
    """No model reference, directory or run id of the seeded jobs appears in `text`."""
    for secret in SECRETS:
        assert secret not in text, secret
