"""Login, logout, sessions and CSRF behave as a browser and a script expect, and refuse what an attacker would try."""

import re

from sqlmodel import select

from app.core.security import SESSION_COOKIE, make_session, read_session, same_origin
from app.models import Role
from tests.conftest import PASSWORD


def _csrf(page_text: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]*)"', page_text)
    assert match
    return match.group(1)


def test_login_wrong_password_is_rejected(client, make_user):
    make_user(Role.researcher, "alice")
    response = client.post("/login", data={"username": "alice", "password": "nope"})
    assert response.status_code == 401
    assert "Wrong username or password" in response.text
    assert SESSION_COOKIE not in response.cookies


def test_repeated_wrong_passwords_slow_down_that_client_only(client, make_user, settings):
    """An attacker hammering `alice` is refused, with a growing wait; alice, from another
    address, still logs in; and the wait ends (no permanent lock)."""
    from datetime import timedelta

    from fastapi.testclient import TestClient
    from sqlmodel import Session

    from app import login_throttle
    from app.core.db import get_engine
    from app.main import app
    from app.models import LoginFailure

    make_user(Role.researcher, "alice")
    with TestClient(app, client=("203.0.113.9", 4000)) as attacker:
        for _ in range(login_throttle.FREE_FAILURES):
            assert attacker.post("/login", data={"username": "alice", "password": "nope"}).status_code == 401
        refused = attacker.post("/login", data={"username": "Alice ", "password": PASSWORD})
        assert refused.status_code == 429 and "Too many wrong passwords" in refused.text
        # The owner, elsewhere, is not locked out.
        with TestClient(app, client=("198.51.100.7", 5000)) as owner:
            ok = owner.post(
                "/login", data={"username": "alice", "password": PASSWORD}, follow_redirects=False
            )
            assert ok.status_code == 303
        # Time passes (the row is shared through the database, so every process sees it).
        with Session(get_engine(settings)) as session:
            row = session.exec(select(LoginFailure)).one()
            assert row.key == "203.0.113.9|alice" and row.failures == login_throttle.FREE_FAILURES
            row.blocked_until = row.blocked_until - timedelta(hours=1)
            session.add(row)
            session.commit()
        ok = attacker.post("/login", data={"username": "alice", "password": PASSWORD}, follow_redirects=False)
        assert ok.status_code == 303
    with Session(get_engine(settings)) as session:
        assert session.exec(select(LoginFailure)).all() == []  # a success forgets the failures


def test_login_backoff_doubles_and_is_capped(settings):
    from datetime import timedelta

    from sqlmodel import Session

    from app import login_throttle
    from app.core.db import get_engine
    from app.models import LoginFailure, utcnow

    assert login_throttle.wait_for(login_throttle.FREE_FAILURES - 1) == timedelta(0)
    waits = [login_throttle.wait_for(login_throttle.FREE_FAILURES + i) for i in range(4)]
    assert waits == [timedelta(seconds=s) for s in (1, 2, 4, 8)]
    assert login_throttle.wait_for(10_000) == login_throttle.MAX_WAIT
    now = utcnow()
    with Session(get_engine(settings)) as session:
        for _ in range(50):
            login_throttle.record_failure(session, client="c", username="admin", now=now)
        wait = login_throttle.refused_for(session, client="c", username="admin", now=now)
        assert wait == login_throttle.MAX_WAIT.total_seconds()
        later = now + login_throttle.MAX_WAIT + timedelta(seconds=1)
        assert login_throttle.refused_for(session, client="c", username="admin", now=later) == 0
        assert login_throttle.refused_for(session, client="other", username="admin", now=now) == 0
        # One IPv6 /64 is one client: stepping through its addresses does not reset the count.
        assert login_throttle.client_of("2001:db8::1") == login_throttle.client_of("2001:db8::ffff:2")
        assert login_throttle.client_of("2001:db8::1") != login_throttle.client_of("2001:db8:0:1::1")
        assert login_throttle.client_of("::ffff:203.0.113.9") == "203.0.113.9"
        assert login_throttle.client_of(None) == "unknown"
        # A day later the key is forgotten, and removed with the next failure anywhere.
        much_later = now + login_throttle.FORGET_AFTER + timedelta(minutes=1)
        login_throttle.record_failure(session, client="d", username="bob", now=much_later)
        assert [r.key for r in session.exec(select(LoginFailure))] == ["d|bob"]


def test_login_sets_httponly_samesite_cookie_and_redirects_to_next(client, make_user):
    make_user(Role.researcher, "alice")
    response = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "next": "/runs"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/runs"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_login_never_redirects_off_site(client, make_user):
    make_user(Role.researcher, "alice")
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        client.cookies.clear()
        response = client.post(
            "/login", data={"username": "alice", "password": PASSWORD, "next": evil}, follow_redirects=False
        )
        assert response.headers["location"] == "/datasets", evil


def test_deactivated_user_cannot_log_in_and_loses_open_sessions(client, make_user, client_as):
    alice = client_as(Role.researcher, "alice")
    admin = client_as(Role.admin, "boss")
    assert admin.post(f"/users/{alice.user.id}/active", data={"active": "false"}).status_code == 200
    assert alice.get("/runs", follow_redirects=False).status_code == 303  # back to the login form
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 401


def test_cross_site_login_is_refused(client, make_user):
    """Login CSRF: a foreign page must not log the victim's browser into the attacker's account."""
    make_user(Role.researcher, "alice")
    data = {"username": "alice", "password": PASSWORD}
    cross = client.post("/login", data=data, headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert cross.status_code == 403
    foreign = client.post(
        "/login", data=data, headers={"Origin": "https://evil.example"}, follow_redirects=False
    )
    assert foreign.status_code == 403
    own = client.post(
        "/login",
        data=data,
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert own.status_code == 303


def test_same_origin_rules():
    assert same_origin(origin=None, fetch_site=None, host="h:8000")  # curl and scripts
    assert same_origin(origin="http://h:8000", fetch_site="same-origin", host="h:8000")
    assert not same_origin(origin="http://h:8000", fetch_site="same-site", host="h:8000")
    assert not same_origin(origin="http://other:8000", fetch_site=None, host="h:8000")
    assert not same_origin(origin="null", fetch_site=None, host="h:8000")


def test_pages_redirect_to_login_with_next_and_api_answers_401(client):
    response = client.get("/runs?x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/runs%3Fx%3D1"
    api = client.get("/api/me")
    assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
    htmx = client.get("/runs", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/login"


def test_logout_needs_csrf_and_ends_the_session(researcher):
    token = researcher.csrf
    researcher.csrf = ""
    assert researcher.post("/logout", follow_redirects=False).status_code == 403
    assert researcher.get("/runs").status_code == 200  # the refused logout changed nothing
    researcher.csrf = token
    response = researcher.post("/logout", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert researcher.get("/runs", follow_redirects=False).status_code == 303


def test_csrf_token_in_form_field_is_accepted_and_a_foreign_one_is_not(client_as):
    alice = client_as(Role.researcher, "alice")
    bob = client_as(Role.researcher, "bob")
    alice_token = alice.csrf
    alice.csrf = ""
    # The form field works as well as the header ...
    ok = alice.post("/tokens", data={"name": "laptop", "csrf_token": alice_token})
    assert ok.status_code == 201
    # ... but a token from another login does not.
    bob.csrf = ""
    assert bob.post("/tokens", data={"name": "x", "csrf_token": alice_token}).status_code == 403


def test_tampered_or_foreign_session_cookie_is_anonymous(client, settings, make_user):
    user = make_user(Role.admin, "root")
    good = make_session(settings.secret_key, user.id, user.password_hash)
    client.cookies.set(SESSION_COOKIE, good)
    assert client.get("/users").status_code == 200
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
    assert client.get("/users", follow_redirects=False).status_code == 303
    forged = make_session("another-secret", user.id, user.password_hash)
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, forged)
    assert client.get("/users", follow_redirects=False).status_code == 303
    assert read_session(settings.secret_key, forged, 3600) is None


def test_password_change_ends_other_sessions_but_keeps_this_one(client_as, settings):
    alice = client_as(Role.rater, "alice")
    other = make_session(settings.secret_key, alice.user.id, alice.user.password_hash)
    response = alice.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "new password 123"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/account?ok=account.password_changed"
    assert alice.get("/account").status_code == 200  # this browser got a fresh cookie
    alice.cookies.clear()
    alice.cookies.set(SESSION_COOKIE, other)
    assert alice.get("/account", follow_redirects=False).status_code == 303


def test_wrong_current_password_is_reported(client_as):
    alice = client_as(Role.rater, "alice")
    response = alice.post(
        "/account/password", data={"current_password": "nope", "new_password": "whatever123"}
    )
    assert response.status_code == 200
    assert "The current password is wrong." in response.text


def test_role_guards(client_as):
    rater = client_as(Role.rater)
    assert rater.get("/runs").status_code == 403
    assert rater.get("/rating").status_code == 200
    researcher = client_as(Role.researcher)
    assert researcher.get("/users").status_code == 403
    assert researcher.get("/runs").status_code == 200


def test_language_switch_translates_the_shell(researcher):
    page = researcher.get("/runs")
    assert "Datasets" in page.text and "数据集" not in page.text.split("<main>")[0]
    response = researcher.post(
        "/lang", data={"lang": "zh"}, headers={"referer": "http://testserver/runs"}, follow_redirects=False
    )
    assert response.headers["location"] == "/runs"
    page = researcher.get("/runs")
    assert 'lang="zh-CN"' in page.text
    header = page.text.split("<main>")[0]
    for label in ("数据集", "训练", "评测", "标注", "对比", "退出", "API 令牌"):
        assert label in header
    assert "Log out" not in header


def test_language_switch_does_not_redirect_off_site(researcher):
    response = researcher.post(
        "/lang", data={"lang": "zh"}, headers={"referer": "https://evil.example/x"}, follow_redirects=False
    )
    assert response.headers["location"] == "/"


def test_security_headers(client):
    response = client.get("/login")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def test_no_cdn_in_the_shell(researcher):
    page = researcher.get("/tokens").text
    for url in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert not url.startswith(("http://", "https://", "//")) or "testserver" in url, url
    assert researcher.get("/static/app.js").status_code == 200
    assert _csrf(page)


def test_each_role_lands_on_and_sees_only_what_it_can_open(client_as, client, make_user):
    make_user(Role.rater, "rita")
    response = client.post("/login", data={"username": "rita", "password": PASSWORD}, follow_redirects=False)
    assert response.headers["location"] == "/rating"
    header = client.get("/rating").text.split("<main>")[0]
    assert 'href="/rating"' in header and 'href="/datasets"' not in header and 'href="/runs"' not in header
    assert client.get("/", follow_redirects=False).headers["location"] == "/rating"
    admin = client_as(Role.admin, "boss")
    header = admin.get("/rating").text.split("<main>")[0]
    for href in ("/datasets", "/runs", "/evaluations", "/rating", "/compare", "/users", "/tokens"):
        assert f'href="{href}"' in header


def test_logout_ends_the_session_even_for_a_copied_cookie(client_as):
    alice = client_as(Role.researcher, "alice")
    stolen = alice.cookies.get(SESSION_COOKIE)
    assert alice.post("/logout", follow_redirects=False).status_code == 303
    from fastapi.testclient import TestClient

    from app.main import app

    with TestClient(app) as thief:
        thief.cookies.set(SESSION_COOKIE, stolen)
        assert thief.get("/runs", follow_redirects=False).status_code == 303  # to the login form
    # Logging in again works as before.
    assert (
        alice.post(
            "/login", data={"username": "alice", "password": PASSWORD}, follow_redirects=False
        ).status_code
        == 303
    )
