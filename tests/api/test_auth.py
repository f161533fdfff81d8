"""Login, logout, CSRF and role guards behave as a browser and a script expect."""

from app.models import Role
from tests.conftest import PASSWORD


def test_login_wrong_password_is_rejected(client, make_user):
    make_user(Role.researcher, "alice")
    response = client.post("/login", data={"username": "alice", "password": "nope"})
    assert response.status_code == 401
    assert "Wrong username or password" in response.text


def test_login_sets_httponly_samesite_cookie(client, make_user):
    make_user(Role.researcher, "alice")
    response = client.post("/login", data={"username": "alice", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_pages_redirect_to_login_and_api_answers_401(client):
    assert client.get("/runs", follow_redirects=False).headers["location"].startswith("/login")


def test_post_without_csrf_is_refused(researcher):
    researcher.csrf_backup = researcher.csrf
    researcher.csrf = ""
    response = researcher.post("/logout", follow_redirects=False)
    assert response.status_code == 403
    researcher.csrf = researcher.csrf_backup
    assert researcher.post("/logout", follow_redirects=False).status_code == 303


def test_rater_cannot_open_researcher_pages(client_as):
    rater = client_as(Role.rater)
    assert rater.get("/runs").status_code == 403
    assert rater.get("/rating").status_code == 200
