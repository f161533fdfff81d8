"""The logged-in user's own account: who am I, and changing one's password (page and JSON)."""

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from app import accounts
from app.api.deps import Rater, SessionDep, SettingsDep
from app.core.i18n import translate
from app.core.security import SESSION_COOKIE, make_session
from app.models import UserPublic
from app.schemas.accounts import PasswordChange
from app.web import flash_key, lang_of, render

router = APIRouter()


def _keep_logged_in(response, settings, user) -> None:  # noqa: ANN001
    # The password stamp in the session changed: reissue this browser's cookie, so only
    # the *other* sessions end.
    response.set_cookie(
        SESSION_COOKIE,
        make_session(settings.secret_key, user.id, user.password_hash, user.session_epoch),
        max_age=settings.session_max_age,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )


@router.get("/account")
def account_page(request: Request, user: Rater, ok: str = "", err: str = ""):
    return render(
        request,
        "pages/users_account.html",
        {"user": user, "nav": "account", "ok": flash_key(ok), "err": flash_key(err)},
    )


@router.post("/account/password")
def change_password_form(
    session: SessionDep,
    settings: SettingsDep,
    user: Rater,
    current_password: Annotated[str, Form(max_length=300)],
    new_password: Annotated[str, Form(max_length=300)],
):
    try:
        accounts.change_own_password(session, user=user, current=current_password, new=new_password)
    except accounts.AccountError as exc:
        return RedirectResponse(f"/account?err={exc.key}", status_code=303)
    response = RedirectResponse("/account?ok=account.password_changed", status_code=303)
    _keep_logged_in(response, settings, user)
    return response


@router.get("/api/me", response_model=UserPublic)
def me(user: Rater):
    """The account the token or session belongs to."""
    return user


@router.post("/api/me/password", status_code=204)
def change_password_api(request: Request, session: SessionDep, user: Rater, body: PasswordChange):
    """Change your own password; other sessions end."""
    try:
        accounts.change_own_password(session, user=user, current=body.current_password, new=body.new_password)
    except accounts.AccountError as exc:
        raise HTTPException(status_code=exc.status_code, detail=translate(exc.key, lang_of(request))) from exc
