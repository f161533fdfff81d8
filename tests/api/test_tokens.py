"""Personal API tokens: shown once, stored hashed, listed by prefix, revocable, and enough to script the API."""

import re

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core.security import hash_api_token
from app.models import ApiToken, Role


def test_create_token_on_the_page_shows_it_once_with_a_copy_button(researcher, engine):
    response = researcher.post("/tokens", data={"name": "laptop"})
    assert response.status_code == 201
    token = re.search(r'<code id="new-token">(sft_[^<]+)</code>', response.text).group(1)
    assert 'data-copy="#new-token"' in response.text
    assert f"export TOKEN={token}" in response.text  # the curl example is ready to paste
    with Session(engine) as session:
        row = session.exec(select(ApiToken)).one()
        assert row.token_hash == hash_api_token(token) and token not in (row.prefix, row.token_hash)
    listing = researcher.get("/tokens").text
    assert token not in listing and row.prefix in listing and "laptop" in listing and "never" in listing


def test_tokens_page_documents_curl_upload_and_lists_endpoints(researcher):
    page = researcher.get("/tokens").text
    assert 'curl -H "Authorization: Bearer $TOKEN" -F file=@pclue.jsonl http://testserver/api/uploads' in page
    assert "/api/tokens" in page and "/api/me" in page


def test_bearer_token_authenticates_without_cookie_or_csrf(researcher, settings):
    token = researcher.post("/api/tokens", json={"name": "ci"}).json()["token"]
    from app.main import app

    with TestClient(app) as script:
        headers = {"Authorization": f"Bearer {token}"}
        me = script.get("/api/me", headers=headers)
        assert me.status_code == 200 and me.json()["username"] == researcher.user.username
        # Unsafe methods need no CSRF token with a bearer token: it is not an ambient credential.
        created = script.post("/api/tokens", json={"name": "second"}, headers=headers)
        assert created.status_code == 201
        assert script.get("/api/me", headers={"Authorization": "Bearer sft_wrong"}).status_code == 401
        assert script.get("/api/users", headers=headers).status_code == 403  # still only a researcher
    listed = researcher.get("/api/tokens").json()
    ci = next(t for t in listed if t["name"] == "ci")
    assert ci["last_used_at"] is not None and "token" not in ci and ci["prefix"].startswith("sft_")


def test_revoked_token_stops_working(researcher):
    created = researcher.post("/api/tokens", json={"name": "old"}).json()
    from app.main import app

    with TestClient(app) as script:
        headers = {"Authorization": f"Bearer {created['token']}"}
        assert script.get("/api/me", headers=headers).status_code == 200
        assert researcher.delete(f"/api/tokens/{created['id']}").status_code == 204
        assert script.get("/api/me", headers=headers).status_code == 401
    assert researcher.get("/api/tokens").json() == []


def test_revoke_through_the_page(researcher):
    created = researcher.post("/api/tokens", json={"name": "old"}).json()
    response = researcher.post(f"/tokens/{created['id']}/revoke", follow_redirects=False)
    assert response.headers["location"] == "/tokens?ok=tokens.revoked"
    assert "Token revoked." in researcher.get(response.headers["location"]).text


def test_cannot_see_or_revoke_someone_elses_token(client_as):
    alice = client_as(Role.researcher, "alice")
    bob = client_as(Role.researcher, "bob")
    created = alice.post("/api/tokens", json={"name": "mine"}).json()
    assert bob.get("/api/tokens").json() == []
    assert bob.delete(f"/api/tokens/{created['id']}").status_code == 404
    assert bob.post(f"/tokens/{created['id']}/revoke", follow_redirects=False).headers["location"] == (
        "/tokens?err=tokens.not_found"
    )
    assert len(alice.get("/api/tokens").json()) == 1


def test_token_of_a_deactivated_user_stops_working(client_as):
    alice = client_as(Role.researcher, "alice")
    admin = client_as(Role.admin, "boss")
    token = alice.post("/api/tokens", json={"name": "x"}).json()["token"]
    admin.post(f"/users/{alice.user.id}/active", data={"active": "false"})
    from app.main import app

    with TestClient(app) as script:
        assert script.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_token_name_is_required(researcher):
    assert researcher.post("/api/tokens", json={"name": ""}).status_code == 422
    response = researcher.post("/tokens", data={"name": "   "}, follow_redirects=False)
    assert response.headers["location"] == "/tokens?err=tokens.bad_name"


def test_openapi_schema_lists_the_api(client):
    schema = client.get("/api/openapi.json").json()
    for path in ("/api/me", "/api/tokens", "/api/tokens/{token_id}", "/api/users"):
        assert path in schema["paths"], path


def test_me_and_password_change_over_the_api(client_as):
    rater = client_as(Role.rater, "rita")
    me = rater.get("/api/me").json()
    assert me["username"] == "rita" and me["role"] == "rater" and "password_hash" not in me
    bad = rater.post("/api/me/password", json={"current_password": "nope", "new_password": "long enough"})
    assert bad.status_code == 400 and bad.json()["detail"] == "The current password is wrong."


def test_a_token_can_expire_and_the_page_shows_when(researcher, engine):
    from datetime import timedelta

    from app.models import utcnow

    created = researcher.post("/api/tokens", json={"name": "week", "expires_in_days": 7}).json()
    assert created["expires_at"] is not None
    assert researcher.post("/api/tokens", json={"name": "x", "expires_in_days": -1}).status_code == 422
    page = researcher.post("/tokens", data={"name": "paged", "expires_in_days": "30"})
    assert page.status_code == 201 and "Expires" in page.text
    expiry = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%d")
    assert expiry in researcher.get("/tokens").text
    from app.main import app

    with TestClient(app) as script:
        headers = {"Authorization": f"Bearer {created['token']}"}
        assert script.get("/api/me", headers=headers).status_code == 200
        with Session(engine) as session:
            row = session.get(ApiToken, created["id"])
            row.expires_at = utcnow() - timedelta(seconds=1)
            session.add(row)
            session.commit()
        refused = script.get("/api/me", headers=headers)
        assert refused.status_code == 401 and "expired" in refused.json()["detail"]


def test_password_reset_and_change_revoke_api_tokens(client_as):
    from app.main import app
    from tests.conftest import PASSWORD

    alice = client_as(Role.researcher, "alice")
    admin = client_as(Role.admin, "boss")
    first = alice.post("/api/tokens", json={"name": "a"}).json()["token"]
    with TestClient(app) as script:
        headers = {"Authorization": f"Bearer {first}"}
        assert script.get("/api/me", headers=headers).status_code == 200
        assert (
            admin.patch(f"/api/users/{alice.user.id}", json={"password": "reset pass 123"}).status_code == 200
        )
        assert script.get("/api/me", headers=headers).status_code == 401
    # The form reset does the same.
    alice = client_as(Role.researcher, "alice2")
    second = alice.post("/api/tokens", json={"name": "b"}).json()["token"]
    assert (
        admin.post(f"/users/{alice.user.id}/password", data={"password": "reset pass 123"}).status_code == 200
    )
    # And so does changing one's own password.
    carol = client_as(Role.rater, "carol")
    third = carol.post("/api/tokens", json={"name": "c"}).json()["token"]
    changed = carol.post(
        "/api/me/password", json={"current_password": PASSWORD, "new_password": "new password 123"}
    )
    assert changed.status_code == 204
    with TestClient(app) as script:
        for token in (second, third):
            assert script.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
