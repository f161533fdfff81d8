"""User management for admins: a page with forms, and its JSON twin under /api/users."""

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from app import accounts
from app.api.deps import Admin, SessionDep
from app.core.i18n import translate
from app.models import Role, UserCreate, UserPublic
from app.schemas.accounts import UserUpdate
from app.web import flash_key, lang_of, render

router = APIRouter()


def _back(ok: str | None = None, err: str | None = None) -> RedirectResponse:
    query = f"?ok={ok}" if ok else f"?err={err}" if err else ""
    return RedirectResponse(f"/users{query}", status_code=303)


def _api_error(request: Request, exc: accounts.AccountError) -> HTTPException:
    return HTTPException(status_code=exc.status_code, detail=translate(exc.key, lang_of(request)))


@router.get("/users")
def users_page(request: Request, session: SessionDep, user: Admin, ok: str = "", err: str = ""):
    return render(
        request,
        "pages/users.html",
        {
            "user": user,
            "nav": "users",
            "users": accounts.list_users(session),
            "roles": list(Role),
            "ok": flash_key(ok),
            "err": flash_key(err),
        },
    )


@router.post("/users")
def create_user_form(
    session: SessionDep,
    _: Admin,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=300)],
    role: Annotated[Role, Form()] = Role.researcher,
):
    try:
        accounts.create_user(session, username=username, password=password, role=role)
    except accounts.AccountError as exc:
        return _back(err=exc.key)
    return _back(ok="users.created")


@router.post("/users/{user_id}/role")
def set_role_form(session: SessionDep, _: Admin, user_id: int, role: Annotated[Role, Form()]):
    try:
        accounts.set_role(session, user_id=user_id, role=role)
    except accounts.AccountError as exc:
        return _back(err=exc.key)
    return _back(ok="users.updated")


@router.post("/users/{user_id}/active")
def set_active_form(session: SessionDep, _: Admin, user_id: int, active: Annotated[bool, Form()]):
    try:
        accounts.set_active(session, user_id=user_id, active=active)
    except accounts.AccountError as exc:
        return _back(err=exc.key)
    return _back(ok="users.updated")


@router.post("/users/{user_id}/password")
def reset_password_form(
    session: SessionDep, _: Admin, user_id: int, password: Annotated[str, Form(max_length=300)]
):
    try:
        accounts.reset_password(session, user_id=user_id, password=password)
    except accounts.AccountError as exc:
        return _back(err=exc.key)
    return _back(ok="users.password_reset")


@router.get("/api/users", response_model=list[UserPublic])
def list_users_api(session: SessionDep, _: Admin):
    """All accounts (admin)."""
    return accounts.list_users(session)


@router.post("/api/users", response_model=UserPublic, status_code=201)
def create_user_api(request: Request, session: SessionDep, _: Admin, body: UserCreate):
    """Create an account with a role (admin)."""
    try:
        return accounts.create_user(session, username=body.username, password=body.password, role=body.role)
    except accounts.AccountError as exc:
        raise _api_error(request, exc) from exc


@router.patch("/api/users/{user_id}", response_model=UserPublic)
def update_user_api(request: Request, session: SessionDep, _: Admin, user_id: int, body: UserUpdate):
    """Change role, deactivate/reactivate, or reset the password; the last admin stays an active admin."""
    try:
        user = accounts.get_user(session, user_id=user_id)
        if body.role is not None:
            user = accounts.set_role(session, user_id=user_id, role=body.role)
        if body.is_active is not None:
            user = accounts.set_active(session, user_id=user_id, active=body.is_active)
        if body.password is not None:
            user = accounts.reset_password(session, user_id=user_id, password=body.password)
    except accounts.AccountError as exc:
        raise _api_error(request, exc) from exc
    return user
