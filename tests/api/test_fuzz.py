"""Every operation of the OpenAPI schema, fuzzed by schemathesis as a researcher and as a rater, never answers 5xx."""

import json
import shutil
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema
from sqlalchemy import update
from sqlmodel import Session, col

from app import accounts
from app.api.deps import ROLE_RANK
from app.core.config import get_settings
from app.core.db import get_engine
from app.main import app
from app.models import ApiToken, Job, JobKind, JobStatus, Role, User
from tests.conftest import PASSWORD, _env
from tests.runs.conftest import PCLUE, import_pclue
from tests.runs.fake_runs import make_run, synthetic_events

# Bounded for `make test` on a small machine: a fixed seed and derandomized Hypothesis make every run
# send the same requests, so a failure here is reproducible and CI never flakes on a new example.
FUZZ_CONFIG = {
    "seed": 20261126,
    "generation": {"max-examples": 6, "deterministic": True, "database": "none"},
    "phases": {"stateful": {"enabled": False}},
    "warnings": False,
}
# The fuzzer's own tokens sit far above the ids it tries, so DELETE /api/tokens/{id} never logs it out.
TOKEN_IDS = {Role.researcher: 900_001, Role.rater: 900_002, Role.admin: 900_003}
FUZZ_ROLES = (Role.researcher, Role.rater)


def _hold_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing long starts: training runs stay queued; imports and index builds of the tiny data run at
    once, as tests/conftest.py runs them; a short job a request waits for (estimate, sample rendering)
    fails at once, as when no worker serves the interactive queue, so the request answers without
    waiting out its timeout."""
    from worker.runner import execute

    def send(job, **_) -> str:  # noqa: ANN001, ANN003
        if job.kind in (JobKind.import_, JobKind.indexing):
            execute(job.id)
        elif job.queue == get_settings().interactive_queue:
            with Session(get_engine()) as session:
                session.execute(
                    update(Job)
                    .where(col(Job.id) == job.id)
                    .values(status=JobStatus.failed, error="no worker in the fuzz test")
                )
                session.commit()
        return f"held-{job.id}"

    monkeypatch.setattr("app.jobs.queue.send", send)


def _token(session: Session, user: User, token_id: int) -> str:
    row, token = accounts.create_token(session, user=user, name="fuzz")
    session.execute(update(ApiToken).where(col(ApiToken.id) == row.id).values(id=token_id))
    session.commit()
    return token


@pytest.fixture(scope="module")
def fuzz_tokens(tmp_path_factory, template_db) -> Iterator[dict[Role, str]]:
    """One database for the whole walk (a fresh one per operation would cost more than the fuzzing):
    a user of each role with a token, and real rows behind id 1, which the fuzzing phase sends (dataset 1
    and its version 1 and samples, run 1 with events, upload 1 of pCLUE records not yet imported)."""
    from app.cli import create_user

    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    data_dir.mkdir()
    shutil.copy(template_db, data_dir / "sftlab.db")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _env(data_dir, f"sqlite:///{data_dir / 'sftlab.db'}").items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        _hold_jobs(mp)
        users = {
            role: create_user(username=f"fuzz_{role.value}", password=PASSWORD, role=role)
            for role in TOKEN_IDS
        }
        researcher = users[Role.researcher]
        dataset = import_pclue(researcher.id)
        with Session(get_engine()) as session:
            make_run(
                session,
                researcher.id,
                run_dir=get_settings().runs_dir / "fuzz",
                events=synthetic_events(6),
                datasets=[(dataset.dataset_id, dataset.version, "train")],
            )
            tokens = {role: _token(session, user, TOKEN_IDS[role]) for role, user in users.items()}
        with TestClient(app) as client:
            upload = client.post(
                "/api/uploads",
                files={"file": (PCLUE.name, PCLUE.read_bytes())},
                headers={"Authorization": f"Bearer {tokens[Role.researcher]}"},
            )
        assert upload.status_code == 201 and upload.json()["upload_id"] == 1, upload.text
        yield tokens
        get_settings.cache_clear()


def _schema() -> BaseSchema:
    """The schema /api/openapi.json serves, called in-process through the ASGI app. Read from the app object
    rather than fetched with from_asgi: fetching at collection would start the app's lifespan under the
    collecting process's settings, before any test database exists."""
    schema = schemathesis.openapi.from_dict(app.openapi(), config=SchemathesisConfig.from_dict(FUZZ_CONFIG))
    schema.app = app

    @schema.hook
    def map_path_parameters(context, path_parameters: dict | None) -> dict | None:  # noqa: ANN001
        # Random integers would almost never name a seeded row, so every route with an id would only
        # ever test its 404: the fuzzing phase sends 1 instead (dataset 1, its version 1, run 1, job 1,
        # sample 1), so its random queries and bodies reach the code behind the lookup.
        # Only the fuzzing phase goes through this hook: the coverage phase still sends its huge,
        # negative and non-integer ids.
        if not path_parameters:
            return path_parameters
        return {key: 1 if type(value) is int else value for key, value in path_parameters.items()}

    return schema


schema = _schema()


@pytest.mark.slow
@schema.parametrize()
def test_no_operation_answers_a_server_error(case, fuzz_tokens):
    for role in FUZZ_ROLES:
        token = fuzz_tokens[role]
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error])


@pytest.mark.parametrize(
    ("method", "path", "needs"),
    [
        ("POST", "/api/tokens", Role.rater),
        ("POST", "/api/users", Role.admin),
        ("PATCH", "/api/users/1", Role.admin),
        ("POST", "/api/me/password", Role.rater),
    ],
)
def test_json_sent_as_text_plain_is_the_callers_error(method, path, needs, fuzz_tokens):
    body = json.dumps({"name": "x", "username": "zed", "password": "a password 1", "role": "rater"})
    with TestClient(app) as client:
        for role, token in fuzz_tokens.items():
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}
            response = client.request(method, path, content=body, headers=headers)
            allowed = ROLE_RANK[role] >= ROLE_RANK[needs]
            assert response.status_code in ((415, 422) if allowed else (403,)), (role, response.text)


def test_the_id_the_fuzzing_phase_sends_names_real_rows(fuzz_tokens):
    """Were the seeding to shift an id, the fuzzing would quietly test nothing but 404s."""
    headers = {"Authorization": f"Bearer {fuzz_tokens[Role.researcher]}"}
    paths = [
        "/api/datasets/1",
        "/api/datasets/1/versions/1",
        "/api/datasets/1/versions/1/samples",
        "/api/samples/1",
        "/api/runs/1",
        "/api/runs/1/series",
        "/api/jobs/1",
        "/api/uploads/1",
    ]
    with TestClient(app) as client:
        for path in paths:
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.text)
