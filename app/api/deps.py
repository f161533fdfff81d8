"""Dependencies every route lists: settings, database session, the current user, role guards, CSRF.

Each route declares exactly one access level through `require(role)` or
`public()`; the route-walk test reads `route_access` off every route and checks
each role against it, so a route without a declared level fails the suite.
"""

import asyncio
import weakref
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

import anyio
from fastapi import Depends, HTTPException, Request
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from app.core.config import Settings, get_settings
from app.core.db import get_engine, read_engine
from app.core.security import SESSION_COOKIE, check_csrf, hash_api_token, read_session, session_matches
from app.models import ApiToken, Role, User, utcnow

ROLE_RANK = {Role.rater: 1, Role.researcher: 2, Role.admin: 3}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


async def settings_dep() -> Settings:
    # async: a cached object, not worth a hop through the thread pool on every request
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings_dep)]

_slots: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.Semaphore]" = weakref.WeakKeyDictionary()


def _request_slots(settings: Settings) -> anyio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        _slots[loop] = anyio.Semaphore(settings.db_pool_size)
    return _slots[loop]


async def session_dep(request: Request, settings: SettingsDep) -> AsyncIterator[Session]:
    """The request's session; at most `db_pool_size` requests hold one at a time, the others wait here.

    A request holds its connection from its first query until the session closes, and between its
    dependencies and its route it waits for a thread of the pool. Were more requests to hold sessions
    than the engine has connections, threads would block on a checkout while the requests holding the
    connections wait for a thread: everything stops until the pool's timeout. Waiting for a slot here,
    on the event loop and before any connection is taken, keeps checkouts immediate. Creating the
    Session does no I/O; closing it (a rollback) runs in a thread. A request that cannot write (GET,
    HEAD) gets an autocommit connection on PostgreSQL (`app.core.db.read_engine`).
    """
    async with _request_slots(settings):
        reads_only = request.method in ("GET", "HEAD")
        session = Session(read_engine(settings) if reads_only else get_engine(settings))
        try:
            yield session
        finally:
            await run_in_threadpool(session.close)


SessionDep = Annotated[Session, Depends(session_dep)]
# For routes whose response outlives the route function (a stream): the session and its request slot
# end when the function returns, not when the response has been sent.
FunctionSessionDep = Annotated[Session, Depends(session_dep, scope="function")]


class NotAuthenticated(Exception):
    """Raised instead of a 401 so pages can redirect to the login form while the API answers JSON."""


def _aware(moment: datetime) -> datetime:
    # SQLite hands datetimes back naive; they were stored in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _bearer_user(request: Request, session: Session) -> User | None:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return None
    # The token with its user in one query: every API call starts here, and on PostgreSQL each
    # statement is a round trip. A token whose user is gone is as invalid as an unknown one.
    found = session.exec(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)  # type: ignore[arg-type]
        .where(ApiToken.token_hash == hash_api_token(auth[7:].strip()))
    ).first()
    if found is None:
        raise HTTPException(status_code=401, detail="Invalid API token.")
    token, user = found
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
    return user


def _resolve_user(request: Request, session: Session, settings: Settings) -> User | None:
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
    return user if user.is_active else None


async def current_user_optional(request: Request, session: SessionDep, settings: SettingsDep) -> User | None:
    # async only to read a posted form for the CSRF check; the queries run in the thread pool, since a
    # query on the event loop stops every request while it waits for the database or a connection.
    request.state.via_token = False
    user = await run_in_threadpool(_resolve_user, request, session, settings)
    if user is None:
        return None
    request.state.user = user  # error pages show the header of the logged-in user
    if request.method in UNSAFE_METHODS and not request.state.via_token:
        await _enforce_csrf(request, settings)
    return user


async def _enforce_csrf(request: Request, settings: Settings) -> None:
    """The X-CSRF-Token header, or a urlencoded form's `csrf_token` field (a form is small: app.api.body_limit
    caps it). A multipart body must carry the header: finding a field in it would mean parsing, and
    spooling, the whole body before the caller's role is even checked (pages send uploads with the
    header, static/upload.js)."""
    token = request.headers.get("x-csrf-token")
    ctype = request.headers.get("content-type", "")
    if token is None and ctype.startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        value = form.get("csrf_token")
        token = value if isinstance(value, str) else None
    if not check_csrf(settings.secret_key, request.state.session, token):
        raise HTTPException(status_code=403, detail="Missing or invalid CSRF token.")


OptionalUser = Annotated[User | None, Depends(current_user_optional)]


async def streaming_user(request: Request, session: FunctionSessionDep, settings: SettingsDep) -> User | None:
    """The current user resolved on a function-scoped session, so an open stream holds no request slot."""
    return await current_user_optional(request, session, settings)


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


def require(role: Role, *, streaming: bool = False):
    """A guard admitting `role` and every role above it (admin > researcher > rater); `streaming` for
    routes that return a stream and take `FunctionSessionDep`."""

    async def guard(  # async: no I/O, so no hop through the thread pool
        user: User | None = Depends(streaming_user if streaming else current_user_optional),
    ) -> User:
        if user is None:
            raise NotAuthenticated()
        if ROLE_RANK[user.role] < ROLE_RANK[role]:
            raise HTTPException(status_code=403, detail=f"This needs the {role.value} role.")
        return user

    guard.route_access = role.value  # type: ignore[attr-defined]
    return Depends(guard)


def public():
    """A guard for routes anyone may call (login, health); it still resolves the user if there is one."""

    async def guard(user: OptionalUser) -> User | None:
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


def no_user():
    """A public guard that never looks at the caller, so it takes no database session: /healthz."""

    async def guard() -> None:
        return None

    guard.route_access = "public"  # type: ignore[attr-defined]
    return Depends(guard)


async def posted_form(request: Request) -> FormData:
    """The posted form, read on the event loop, so that the route using it can be a plain `def`: FastAPI
    runs those in its thread pool, where their database and file work blocks no other request."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(posted_form)]

Admin = Annotated[User, require(Role.admin)]
Researcher = Annotated[User, require(Role.researcher)]
StreamingResearcher = Annotated[User, require(Role.researcher, streaming=True)]
Rater = Annotated[User, require(Role.rater)]
Anyone = Annotated[User | None, public()]
