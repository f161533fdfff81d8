"""Personal API tokens: the /tokens page and /api/tokens.

A token is shown once, in the response that creates it (the page renders it
rather than redirecting, so it never lands in a URL or the history); afterwards
only its prefix and last use are listed.
"""

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel import Session

from app import accounts
from app.api.deps import Rater, SessionDep, route_access_levels
from app.core.i18n import translate
from app.models import User
from app.schemas.accounts import TokenCreate, TokenCreated, TokenPublic
from app.web import flash_key, lang_of, render

router = APIRouter()


def api_endpoints(app) -> list[dict]:  # noqa: ANN001
    """The JSON API as a table (method, path, role, summary): the docs page without a CDN."""
    from fastapi.routing import iter_route_contexts

    rows = []
    for rc in iter_route_contexts(app.routes):
        path = rc.path or ""
        if not path.startswith("/api/") or getattr(rc, "dependant", None) is None:
            continue
        doc = (rc.endpoint.__doc__ or "").strip().splitlines() if rc.endpoint else []
        levels = route_access_levels(rc)
        for method in sorted(rc.methods or ()):
            rows.append(
                {
                    "method": method,
                    "path": path,
                    "access": levels[0] if levels else "?",
                    "summary": doc[0] if doc else "",
                }
            )
    return sorted(rows, key=lambda r: (r["path"], r["method"]))


def _page(
    request: Request, session: Session, user: User, *, new_token: str = "", ok: str = "", err: str = ""
):
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        "pages/tokens.html",
        {
            "user": user,
            "nav": "tokens",
            "tokens": accounts.list_tokens(session, user=user),
            "new_token": new_token,
            "base_url": base,
            "endpoints": api_endpoints(request.app),
            "ok": flash_key(ok),
            "err": flash_key(err),
        },
        status_code=201 if new_token else 200,
    )


@router.get("/tokens")
def tokens_page(request: Request, session: SessionDep, user: Rater, ok: str = "", err: str = ""):
    return _page(request, session, user, ok=ok, err=err)


@router.post("/tokens")
def create_token_form(
    request: Request,
    session: SessionDep,
    user: Rater,
    name: Annotated[str, Form(max_length=200)],
    expires_in_days: Annotated[int, Form(ge=0, le=accounts.MAX_TOKEN_DAYS)] = 0,
):
    try:
        _, token = accounts.create_token(session, user=user, name=name, expires_in_days=expires_in_days)
    except accounts.AccountError as exc:
        return RedirectResponse(f"/tokens?err={exc.key}", status_code=303)
    return _page(request, session, user, new_token=token)


@router.post("/tokens/{token_id}/revoke")
def revoke_token_form(session: SessionDep, user: Rater, token_id: int):
    try:
        accounts.revoke_token(session, user=user, token_id=token_id)
    except accounts.AccountError as exc:
        return RedirectResponse(f"/tokens?err={exc.key}", status_code=303)
    return RedirectResponse("/tokens?ok=tokens.revoked", status_code=303)


@router.get("/api/tokens", response_model=list[TokenPublic])
def list_tokens_api(session: SessionDep, user: Rater):
    """Your tokens: name, prefix, created, last used, expiry (never the token)."""
    return accounts.list_tokens(session, user=user)


@router.post("/api/tokens", response_model=TokenCreated, status_code=201)
def create_token_api(request: Request, session: SessionDep, user: Rater, body: TokenCreate):
    """Create a token, optionally expiring in `expires_in_days`; the answer is the only time it is shown."""
    try:
        row, token = accounts.create_token(
            session, user=user, name=body.name, expires_in_days=body.expires_in_days
        )
    except accounts.AccountError as exc:
        raise HTTPException(status_code=exc.status_code, detail=translate(exc.key, lang_of(request))) from exc
    return TokenCreated(**row.model_dump(), token=token)


@router.delete("/api/tokens/{token_id}", status_code=204)
def revoke_token_api(request: Request, session: SessionDep, user: Rater, token_id: int):
    """Revoke one of your tokens."""
    try:
        accounts.revoke_token(session, user=user, token_id=token_id)
    except accounts.AccountError as exc:
        raise HTTPException(status_code=exc.status_code, detail=translate(exc.key, lang_of(request))) from exc
    return Response(status_code=204)
