"""Login, logout and the language switch.

Login is the one unsafe form without a CSRF token (there is no session yet to bind
one to); a cross-site post to it is refused by `same_origin` instead, which stops
login CSRF. Logout and the language switch carry the token like every other form.
"""

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlmodel import Session, select

from app.api.deps import Anyone, SessionDep, SettingsDep
from app.core.i18n import LANGS
from app.core.security import SESSION_COOKIE, make_session, same_origin, verify_password
from app.models import User
from app.web import render

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would turn the login page into a phishing tool."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return "/datasets"


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    user = session.exec(select(User).where(User.username == username.strip())).first()
    if user is None or not user.is_active or not verify_password(password, user.password_hash):
        return None
    return user


@router.get("/login")
def login_page(request: Request, user: Anyone, next: str | None = None):
    return render(request, "pages/login.html", {"next": safe_next(next), "user": None})


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _: Anyone,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str | None, Form()] = None,
):
    if not same_origin(
        origin=request.headers.get("origin"),
        fetch_site=request.headers.get("sec-fetch-site"),
        host=request.headers.get("host"),
    ):
        raise HTTPException(status_code=403, detail="Cross-site login refused.")
    user = authenticate(session, username=username, password=password)
    if user is None:
        return render(
            request,
            "pages/login.html",
            {"next": safe_next(next), "error": True, "username": username, "user": None},
            status_code=401,
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        make_session(settings.secret_key, user.id, user.password_hash),  # type: ignore[arg-type]
        max_age=settings.session_max_age,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    return response


@router.post("/logout")
def logout(_: Anyone):
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/lang")
def set_lang(request: Request, settings: SettingsDep, _: Anyone, lang: Annotated[str, Form()]):
    back = request.headers.get("referer") or "/"
    host = request.headers.get("host", "")
    # Go back to the page the switch was pressed on, but never to another site.
    if "://" in back:
        rest = back.split("://", 1)[1]
        back = "/" + rest.split("/", 1)[1] if rest.split("/", 1)[0] == host and "/" in rest else "/"
    response = RedirectResponse(safe_next(back), status_code=303)
    if lang in LANGS:
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax", secure=settings.cookie_secure)
    return response
