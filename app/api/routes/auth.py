"""Login, logout and the language switch.

Login is the one unsafe form without a CSRF token (there is no session yet to bind
one to); a cross-site post to it is refused by `same_origin` instead, which stops
login CSRF. Logout and the language switch carry the token like every other form.
"""

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlmodel import Session, select

from app import login_throttle
from app.api.deps import Anyone, SessionDep, SettingsDep
from app.core.i18n import LANGS
from app.core.security import SESSION_COOKIE, hash_password, make_session, same_origin, verify_password
from app.models import User
from app.web import home_for, render

router = APIRouter()
_DUMMY_HASH = hash_password("sftlab timing equaliser")


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: an open redirect would turn the login page into a phishing tool."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return default


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    user = session.exec(select(User).where(User.username == username.strip())).first()
    # Hash even for an unknown name, so response time does not reveal which usernames exist.
    ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
    if user is None or not user.is_active or not ok:
        return None
    return user


@router.get("/login")
def login_page(request: Request, user: Anyone, next: str | None = None):
    return render(request, "pages/login.html", {"next": safe_next(next, ""), "user": None})


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
    client = login_throttle.client_of(request.client.host if request.client else None)
    # Checked before the password, so a throttled guesser learns nothing; but only this client
    # is refused: the account's owner, elsewhere, still logs in.
    if login_throttle.refused_for(session, client=client, username=username):
        return render(
            request,
            "pages/login.html",
            {"next": safe_next(next, ""), "error": "login.throttled", "username": username, "user": None},
            status_code=429,
        )
    user = authenticate(session, username=username, password=password)
    if user is None:
        login_throttle.record_failure(session, client=client, username=username)
        return render(
            request,
            "pages/login.html",
            {"next": safe_next(next, ""), "error": "login.failed", "username": username, "user": None},
            status_code=401,
        )
    login_throttle.record_success(session, client=client, username=username)
    response = RedirectResponse(safe_next(next, home_for(user)), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        make_session(settings.secret_key, user.id, user.password_hash, user.session_epoch),  # type: ignore[arg-type]
        max_age=settings.session_max_age,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    return response


@router.post("/logout")
def logout(session: SessionDep, user: Anyone):
    if user is not None:
        # Ends this cookie everywhere it was copied to (and the account's other logins): the
        # cookie alone is stateless and would otherwise stay valid until it expires.
        user.session_epoch += 1
        session.add(user)
        session.commit()
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
        response.set_cookie(
            "lang", lang, max_age=365 * 24 * 3600, samesite="lax", secure=settings.cookie_secure
        )
    return response
