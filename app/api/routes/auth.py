"""Login, logout and the language switch."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlmodel import select

from app.api.deps import Anyone, SessionDep, SettingsDep
from app.core.security import SESSION_COOKIE, make_session, verify_password
from app.models import User
from app.web import render

router = APIRouter()


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would turn the login page into a phishing tool.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/datasets"


def authenticate(session, *, username: str, password: str) -> User | None:  # noqa: ANN001
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or not user.is_active or not verify_password(password, user.password_hash):
        return None
    return user


@router.get("/login")
def login_page(request: Request, user: Anyone, next: str | None = None):
    return render(request, "pages/login.html", {"next": _safe_next(next), "user": None})


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _: Anyone,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,
):
    user = authenticate(session, username=username, password=password)
    if user is None:
        return render(
            request, "pages/login.html", {"next": _safe_next(next), "error": True, "username": username},
            status_code=401,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE, make_session(settings.secret_key, user.id), max_age=settings.session_max_age,
        httponly=True, samesite="lax", secure=settings.cookie_secure,
    )
    return response


@router.post("/logout")
def logout(_: Anyone):
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/lang")
def set_lang(request: Request, _: Anyone, lang: Annotated[str, Form()]):
    response = RedirectResponse(request.headers.get("referer") or "/", status_code=303)
    if lang in ("en", "zh"):
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax")
    return response
