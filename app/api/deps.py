"""Dependencies every route lists: settings, database session, the current user, role guards, CSRF.

Each route declares exactly one access level through `require(role)` or
`public()`; the route-walk test reads `route_access` off every route and checks
each role against it, so a route without a declared level fails the suite.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlmodel import Session, select

from app.core.config import Settings, get_settings
from app.core.db import get_engine
from app.core.security import SESSION_COOKIE, check_csrf, hash_api_token, read_session, session_matches
from app.models import ApiToken, Role, User, utcnow

ROLE_RANK = {Role.rater: 1, Role.researcher: 2, Role.admin: 3}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def settings_dep() -> Settings:
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings_dep)]


def session_dep(settings: SettingsDep) -> Iterator[Session]:
    with Session(get_engine(settings)) as session:
        yield session


SessionDep = Annotated[Session, Depends(session_dep)]


class NotAuthenticated(Exception):
    """Raised instead of a 401 so pages can redirect to the login form while the API answers JSON."""


def _aware(moment: datetime) -> datetime:
    # SQLite hands datetimes back naive; they were stored in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _bearer_user(request: Request, session: Session) -> User | None:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return None
    token = session.exec(
        select(ApiToken).where(ApiToken.token_hash == hash_api_token(auth[7:].strip()))
    ).first()
    if token is None:
        raise HTTPException(status_code=401, detail="Invalid API token.")
    now = utcnow()
    if token.expires_at is not None and _aware(token.expires_at) <= now:
        raise HTTPException(status_code=401, detail="This API token has expired; create a new one.")
    last = _aware(token.last_used_at) if token.last_used_at is not None else None
    # "Last used" to the minute is enough; writing on every call would contend with imports on SQLite.
    if last is None or now - last > timedelta(seconds=60):
        token.last_used_at = now
        session.add(token)
        session.commit()
    request.state.via_token = True
    user = session.get(User, token.user_id)
    if user is None:
        raise HTTPException(status_code=401, detail="Invalid API token.")
    return user


async def current_user_optional(request: Request, session: SessionDep, settings: SettingsDep) -> User | None:
    request.state.via_token = False
    user = _bearer_user(request, session)  # a bearer header, valid or not, is never mixed with the cookie
    if user is None:
        data = read_session(
            settings.secret_key, request.cookies.get(SESSION_COOKIE), settings.session_max_age
        )
        if data is None:
            return None
        user = session.get(User, data["uid"])
        # A password change or reset ends older logins of that account.
        if user is None or not session_matches(
            settings.secret_key, data, user.password_hash, user.session_epoch
        ):
            return None
        request.state.session = data
    if not user.is_active:
        return None
    request.state.user = user  # error pages show the header of the logged-in user
    if request.method in UNSAFE_METHODS and not request.state.via_token:
        await _enforce_csrf(request, settings)
    return user


async def _enforce_csrf(request: Request, settings: Settings) -> None:
    token = request.headers.get("x-csrf-token")
    ctype = request.headers.get("content-type", "")
    if token is None and ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        token = value if isinstance(value, str) else None
    if not check_csrf(settings.secret_key, request.state.session, token):
        raise HTTPException(status_code=403, detail="Missing or invalid CSRF token.")


OptionalUser = Annotated[User | None, Depends(current_user_optional)]


def user_from_cookie(request: Request) -> User | None:
    """The logged-in user for pages rendered outside any route (404 of an unknown URL), so they keep the header."""
    settings = get_settings()
    data = read_session(settings.secret_key, request.cookies.get(SESSION_COOKIE), settings.session_max_age)
    if data is None:
        return None
    with Session(get_engine(settings)) as session:
        user = session.get(User, data["uid"])
        if (
            user is None
            or not user.is_active
            or not session_matches(settings.secret_key, data, user.password_hash, user.session_epoch)
        ):
            return None
        session.expunge(user)
    request.state.session = data
    return user


def require(role: Role):
    """A guard admitting `role` and every role above it (admin > researcher > rater)."""

    def guard(user: OptionalUser) -> User:
        if user is None:
            raise NotAuthenticated()
        if ROLE_RANK[user.role] < ROLE_RANK[role]:
            raise HTTPException(status_code=403, detail=f"This needs the {role.value} role.")
        return user

    guard.route_access = role.value  # type: ignore[attr-defined]
    return Depends(guard)


def public():
    """A guard for routes anyone may call (login, health); it still resolves the user if there is one."""

    def guard(user: OptionalUser) -> User | None:
        return user

    guard.route_access = "public"  # type: ignore[attr-defined]
    return Depends(guard)


def route_access_levels(route) -> list[str]:  # noqa: ANN001
    """Every access level declared anywhere in a route's dependency tree (the route walk wants exactly one)."""
    found: list[str] = []
    stack = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        level = getattr(dependant.call, "route_access", None)
        if level is not None:
            found.append(level)
        stack.extend(dependant.dependencies)
    return found


Admin = Annotated[User, require(Role.admin)]
Researcher = Annotated[User, require(Role.researcher)]
Rater = Annotated[User, require(Role.rater)]
Anyone = Annotated[User | None, public()]
