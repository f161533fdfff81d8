"""Admins create users, change roles, deactivate and reset passwords, and can never remove the last admin."""

import pytest
from sqlmodel import Session

from app import accounts
from app.models import Role, User
from tests.conftest import PASSWORD, login


def test_admin_creates_a_user_who_can_log_in(client_as, client):
    admin = client_as(Role.admin, "boss")
    response = admin.post(
        "/users",
        data={"username": "张三", "password": "long enough", "role": "rater"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/users?ok=users.created"
    page = admin.get(response.headers["location"])
    assert "张三" in page.text and "User created." in page.text
    assert (
        client.post(
            "/login", data={"username": "张三", "password": "long enough"}, follow_redirects=False
        ).status_code
        == 303
    )
    assert client.get("/runs").status_code == 403  # a rater
    assert client.get("/rating").status_code == 200


@pytest.mark.parametrize(
    ("username", "password", "key"),
    [
        ("x", "long enough", "account.bad_username"),
        ("has space", "long enough", "account.bad_username"),
        ("bob", "short", "account.password_short"),
        ("boss", "long enough", "account.username_taken"),
    ],
)
def test_bad_new_users_are_refused_with_a_reason(client_as, username, password, key):
    admin = client_as(Role.admin, "boss")
    response = admin.post(
        "/users",
        data={"username": username, "password": password, "role": "researcher"},
        follow_redirects=False,
    )
    assert response.headers["location"] == f"/users?err={key}"
    assert admin.get(response.headers["location"]).status_code == 200


def test_change_role_takes_effect_on_the_next_request(client_as):
    admin = client_as(Role.admin, "boss")
    alice = client_as(Role.researcher, "alice")
    assert alice.get("/runs").status_code == 200
    admin.post(f"/users/{alice.user.id}/role", data={"role": "rater"})
    assert alice.get("/runs").status_code == 403


def test_last_admin_cannot_be_demoted_or_deactivated(client_as, engine):
    admin = client_as(Role.admin, "boss")
    me = admin.user.id
    for url, data in (
        (f"/users/{me}/role", {"role": "researcher"}),
        (f"/users/{me}/active", {"active": "false"}),
    ):
        response = admin.post(url, data=data, follow_redirects=False)
        assert response.headers["location"] == "/users?err=account.last_admin"
    assert "last active admin" in admin.get("/users?err=account.last_admin").text
    with Session(engine) as session:
        user = session.get(User, me)
        assert user.role == Role.admin and user.is_active


def test_a_second_admin_makes_demotion_possible(client_as, engine):
    boss = client_as(Role.admin, "boss")
    client_as(Role.admin, "deputy")
    assert (
        boss.post(f"/users/{boss.user.id}/role", data={"role": "researcher"}, follow_redirects=False).headers[
            "location"
        ]
        == "/users?ok=users.updated"
    )
    with Session(engine) as session:
        # Now deputy is the last admin: the rule protects them.
        deputy = session.exec(accounts.select(User).where(User.username == "deputy")).one()
        with pytest.raises(accounts.AccountError) as err:
            accounts.set_active(session, user_id=deputy.id, active=False)
        assert err.value.key == "account.last_admin"


def test_deactivated_admin_does_not_count_as_the_remaining_admin(settings, engine, make_user):
    a = make_user(Role.admin, "a")
    b = make_user(Role.admin, "b")
    with Session(engine) as session:
        accounts.set_active(session, user_id=b.id, active=False)
        with pytest.raises(accounts.AccountError):
            accounts.set_role(session, user_id=a.id, role=Role.rater)


def test_reset_password_ends_the_users_sessions(client_as, client):
    admin = client_as(Role.admin, "boss")
    alice = client_as(Role.researcher, "alice")
    response = admin.post(
        f"/users/{alice.user.id}/password", data={"password": "fresh password"}, follow_redirects=False
    )
    assert response.headers["location"] == "/users?ok=users.password_reset"
    assert alice.get("/runs", follow_redirects=False).status_code == 303
    assert client.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 401
    assert login(client, "alice", "fresh password")


def test_reactivate(client_as, client):
    admin = client_as(Role.admin, "boss")
    alice = client_as(Role.researcher, "alice")
    admin.post(f"/users/{alice.user.id}/active", data={"active": "false"})
    assert "deactivated" in admin.get("/users").text
    admin.post(f"/users/{alice.user.id}/active", data={"active": "true"})
    assert login(client, "alice")


def test_unknown_user_is_reported(client_as):
    admin = client_as(Role.admin, "boss")
    response = admin.post("/users/999/role", data={"role": "rater"}, follow_redirects=False)
    assert response.headers["location"] == "/users?err=account.no_such_user"
    assert admin.patch("/api/users/999", json={"role": "rater"}).status_code == 404


def test_users_json_api(client_as):
    admin = client_as(Role.admin, "boss")
    created = admin.post("/api/users", json={"username": "carol", "password": "long enough", "role": "rater"})
    assert created.status_code == 201
    body = created.json()
    assert body["username"] == "carol" and body["role"] == "rater" and "password_hash" not in body
    assert admin.post("/api/users", json={"username": "carol", "password": "long enough"}).status_code == 409
    assert admin.post("/api/users", json={"username": "dave", "password": "short"}).status_code == 422
    patched = admin.patch(f"/api/users/{body['id']}", json={"role": "researcher", "is_active": False})
    assert patched.json()["role"] == "researcher" and patched.json()["is_active"] is False
    names = [u["username"] for u in admin.get("/api/users").json()]
    assert names == ["boss", "carol"]
    last = admin.patch(f"/api/users/{admin.user.id}", json={"role": "rater"})
    assert last.status_code == 409 and "last active admin" in last.json()["detail"]


def test_flash_messages_only_come_from_the_catalogue(client_as):
    admin = client_as(Role.admin, "boss")
    page = admin.get("/users?err=<script>alert(1)</script>&ok=hello")
    assert "<script>alert(1)" not in page.text and "hello" not in page.text.split("<main>")[1]


def test_user_pages_render_in_chinese(client_as):
    admin = client_as(Role.admin, "boss")
    admin.cookies.set("lang", "zh")
    page = admin.get("/users").text
    for label in ("新建用户", "停用", "重置密码", "管理员"):
        assert label in page
