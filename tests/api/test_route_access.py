"""Every route declares exactly one access level, and anonymous users, raters, researchers and admins get what it allows."""

from dataclasses import dataclass

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from app.api.deps import route_access_levels
from app.core.security import SESSION_COOKIE, csrf_token, read_session
from app.models import Role
from tests.conftest import PASSWORD

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
RANK = {"public": 0, "rater": 1, "researcher": 2, "admin": 3}
ROLE_RANK = {None: 0, Role.rater: 1, Role.researcher: 2, Role.admin: 3}
# Framework routes without dependencies: the OpenAPI schema is public on purpose (a script needs it
# before it has a token) and /static serves the vendored CSS and JS.
FRAMEWORK_ROUTES = {"/api/openapi.json", "/static"}


@dataclass
class Endpoint:
    method: str
    path: str  # with path parameters filled in
    template: str
    levels: list[str]

    @property
    def level(self) -> str:
        return self.levels[0]

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")


def _fill(path: str, dependant) -> str:  # noqa: ANN001
    for param in dependant.path_params:
        value = "1" if param.field_info.annotation is int else "x"
        path = path.replace("{" + param.name + "}", value).replace("{" + param.name + ":path}", value)
    return path


def all_endpoints() -> tuple[list[Endpoint], list[str]]:
    """Every (method, route) of the app, and the paths of routes that are neither API routes nor known framework routes."""
    from app.main import app

    endpoints, unknown = [], []
    for rc in iter_route_contexts(app.routes):
        dependant = getattr(rc, "dependant", None)
        if dependant is None:
            if rc.path not in FRAMEWORK_ROUTES:
                unknown.append(str(rc.path))
            continue
        for method in sorted(rc.methods or ()):
            endpoints.append(Endpoint(method, _fill(rc.path, dependant), rc.path, route_access_levels(rc)))
    # Logging out ends the caller's session (on the server, not only in the browser): walk it last.
    endpoints.sort(key=lambda e: e.template == "/logout")
    return endpoints, unknown


@dataclass
class Identity:
    role: Role | None
    cookie: str = ""
    csrf: str = ""


@pytest.fixture
def identities(settings, make_user, client) -> dict[Role | None, Identity]:
    # User id 1 is a bystander, so "/users/1/..." and "/tokens/1" never touch the callers' own accounts.
    make_user(Role.researcher, "bystander")
    found: dict[Role | None, Identity] = {None: Identity(None)}
    for role in (Role.rater, Role.researcher, Role.admin):
        user = make_user(role)
        client.cookies.clear()
        response = client.post(
            "/login", data={"username": user.username, "password": PASSWORD}, follow_redirects=False
        )
        assert response.status_code == 303
        cookie = response.cookies[SESSION_COOKIE]
        session = read_session(settings.secret_key, cookie, settings.session_max_age)
        assert session is not None
        found[role] = Identity(role, cookie, csrf_token(settings.secret_key, session))
    client.cookies.clear()
    return found


def call(client: TestClient, who: Identity, ep: Endpoint, *, with_csrf: bool = True):
    client.cookies.clear()
    headers = {"accept": "text/html" if not ep.is_api else "application/json"}
    if who.cookie:
        client.cookies.set(SESSION_COOKIE, who.cookie)
        if with_csrf and ep.method in UNSAFE:
            headers["X-CSRF-Token"] = who.csrf
    return client.request(ep.method, ep.path, headers=headers, follow_redirects=False)


def test_every_route_declares_exactly_one_access_level():
    endpoints, unknown = all_endpoints()
    assert len(endpoints) > 20, "the walk found too few routes: is route discovery broken?"
    offenders = [f"{e.method} {e.template}: {e.levels or 'none'}" for e in endpoints if len(e.levels) != 1]
    assert not offenders, "routes without exactly one of Admin/Researcher/Rater/Anyone:\n" + "\n".join(
        offenders
    )
    assert not unknown, f"routes outside FastAPI's dependency system (cannot declare a role): {unknown}"
    assert {e.level for e in endpoints} <= set(RANK), "an access level the walk does not know"


@pytest.mark.parametrize(
    "role", [None, Role.rater, Role.researcher, Role.admin], ids=lambda r: r or "anonymous"
)
def test_each_role_gets_what_each_route_allows(role, identities, client):
    who = identities[role]
    endpoints, _ = all_endpoints()
    problems = []
    for ep in endpoints:
        response = call(client, who, ep)
        status = response.status_code
        allowed = ROLE_RANK[role] >= RANK[ep.level]
        if status >= 500:
            problems.append(f"{ep.method} {ep.path}: {status} (server error) {response.text[:200]}")
        elif allowed:
            if status in (401, 403):
                problems.append(f"{ep.method} {ep.path}: {status} for a sufficient role ({ep.level})")
        elif role is None:
            if ep.is_api and status != 401:
                problems.append(f"{ep.method} {ep.path}: anonymous API call got {status}, wanted 401")
            if not ep.is_api and not (status == 303 and response.headers["location"].startswith("/login")):
                problems.append(
                    f"{ep.method} {ep.path}: anonymous page got {status}, wanted a redirect to /login"
                )
        elif status != 403:
            problems.append(
                f"{ep.method} {ep.path}: {role.value} got {status}, wanted 403 (needs {ep.level})"
            )
    assert not problems, "\n".join(problems)


def test_unsafe_methods_without_csrf_are_refused(identities, client):
    admin = identities[Role.admin]  # sufficient for every route, so only the missing token can refuse
    endpoints, _ = all_endpoints()
    unsafe = [ep for ep in endpoints if ep.method in UNSAFE]
    assert unsafe
    problems = []
    for ep in unsafe:
        status = call(client, admin, ep, with_csrf=False).status_code
        if status != 403:
            problems.append(f"{ep.method} {ep.path}: {status} without a CSRF token")
        wrong = call(client, Identity(Role.admin, admin.cookie, "0" * 64), ep).status_code
        if wrong != 403:
            problems.append(f"{ep.method} {ep.path}: {wrong} with a wrong CSRF token")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", [Role.rater, Role.admin])
@pytest.mark.parametrize(
    "body",
    ['{"name": "x", "password": "a password 1", "username": "zed"}', b'{"name": "\xff\xfe"}'],
    ids=["json-as-text", "not-utf8"],
)
def test_json_sent_as_text_plain_never_answers_a_server_error(role, body, identities, client):
    """A JSON body sent as text/plain (or undecodable bytes) to every API route that takes a body
    must be the caller's error (415 or 422), never a 500."""
    who = identities[role]
    endpoints, _ = all_endpoints()
    problems = []
    for ep in endpoints:
        if not ep.is_api or ep.method not in {"POST", "PUT", "PATCH"}:
            continue
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, who.cookie)
        headers = {"content-type": "text/plain", "accept": "application/json", "X-CSRF-Token": who.csrf}
        response = client.request(ep.method, ep.path, content=body, headers=headers, follow_redirects=False)
        if response.status_code >= 500:
            problems.append(f"{ep.method} {ep.path}: {response.status_code} {response.text[:200]}")
    assert not problems, "\n".join(problems)
