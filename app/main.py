"""The FastAPI application: routers, static files, security headers and error pages.

Errors are rendered as pages for browsers and JSON under /api, and an
unexpected exception is logged and shown as a plain 500 page rather than a trace.
"""

import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message

from app.api.body_limit import BODY_TOO_LARGE, BodyLimit
from app.api.deps import NotAuthenticated, user_from_cookie
from app.api.main import router
from app.core.config import get_settings
from app.core.i18n import translate
from app.jobs.interactive import Busy
from app.web import ROOT, lang_of, render, wants_html

log = logging.getLogger("sftlab")

# Frameworks' stock English details that the catalogue translates on error pages.
_KNOWN_DETAILS = {
    "Not Found": "error.not_found",
    "Missing or invalid CSRF token.": "error.csrf",
    "Internal error; it has been logged.": "error.internal",
}


def _jsonable_errors(errors: Sequence[Any]) -> Any:
    """Validation errors as JSON: a body sent as text/plain reaches the model as raw bytes, and an
    error's context may hold an exception object; either made the stock answer a 500."""
    return jsonable_encoder(
        errors,
        custom_encoder={bytes: lambda raw: raw.decode("utf-8", "replace"), BaseException: str},
    )


_NEEDS_ROLE = re.compile(r"This needs the (\w+) role\.")  # raised by deps.require

# Scripts stay unrestricted because some pages carry inline scripts (the sample browser, the run
# diff, a run's sample); what is set still stops framing (clickjacking), plugin content and forms
# posting elsewhere.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'",
}


def _error_page(request: Request, status_code: int, message: str, headers: dict | None = None):
    if wants_html(request) and not request.headers.get("hx-request"):
        lang = lang_of(request)
        key = _KNOWN_DETAILS.get(message)
        shown = translate(key, lang) if key else message
        role = _NEEDS_ROLE.fullmatch(message)
        if role:
            shown = translate("error.needs_role", lang).format(role=translate(f"role.{role.group(1)}", lang))
        too_large = BODY_TOO_LARGE.fullmatch(message)
        if too_large:
            shown = translate("upload.body_too_large", lang).format(limit=too_large.group(1))
        user = getattr(request.state, "user", None)
        if user is None and status_code == 404:
            try:
                user = user_from_cookie(request)
            except Exception:  # noqa: BLE001  (an error page must render even if the database is down)
                user = None
        page = render(
            request,
            "pages/error.html",
            {"status_code": status_code, "message": shown, "user": user},
            status_code=status_code,
        )
        page.headers.update(headers or {})
        return page
    return JSONResponse({"detail": message}, status_code=status_code, headers=headers)


async def _walk_routes(app: FastAPI) -> None:
    """Ask for a path no route answers, so that every route's dependencies are analysed now.

    FastAPI analyses a route the first time a request walks past it, which costs a fresh process
    ~250 ms (on 2 cores) on its first request; here, the process pays it before it serves anyone.
    """
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/-/no-such-route", "raw_path": b"/-/no-such-route",
        "query_string": b"", "root_path": "", "headers": [(b"accept", b"application/json")],
        "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0),
    }  # fmt: skip

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    await app(scope, receive, send)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Routes analysed before the first request, and the reaper thread: a job whose worker died becomes
    lost even when no worker is left to notice, and a queued job whose message the broker lost is sent
    again."""
    from app.jobs.reap import start_reaper

    await _walk_routes(app)
    stop = start_reaper(get_settings())
    try:
        yield
    finally:
        if stop is not None:
            stop()


def create_app() -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="sftlab",
        version="0.1.0",
        description="JSON API of sftlab. Authenticate with `Authorization: Bearer <token>` "
        "(create one on the API tokens page) or with the browser session (then unsafe "
        "methods need the X-CSRF-Token header).",
        openapi_url="/api/openapi.json",
        # Swagger UI and ReDoc load from a CDN, which sftlab never does: the API tokens page
        # lists the endpoints instead, and /api/openapi.json feeds any local client generator.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static")
    app.include_router(router)

    # Inside the security-headers middleware: that one reads the body in a task group of its own, which
    # would wrap BodyTooLarge in an ExceptionGroup (a 400 from FastAPI instead of the 413).
    app.add_middleware(BodyLimit)

    @app.middleware("http")
    async def _security_headers(request: Request, call_next):  # noqa: ANN001
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @app.exception_handler(NotAuthenticated)
    async def _unauthenticated(request: Request, exc: NotAuthenticated):
        if wants_html(request):
            if request.headers.get("hx-request"):
                return JSONResponse(
                    {"detail": "Log in first."}, status_code=401, headers={"HX-Redirect": "/login"}
                )
            target = "/login"
            if request.method == "GET":  # after login, only a GET can be repeated
                path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target += "?next=" + quote(path, safe="/")
            return RedirectResponse(target, status_code=303)
        return JSONResponse(
            {"detail": "Not authenticated."}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    # The handlers that may render an error page are plain `def`, which Starlette runs in its thread
    # pool: a 404 page looks up the logged-in user in the database for its header.
    @app.exception_handler(Busy)
    def _busy(request: Request, exc: Busy):
        """Too many short jobs (estimates, sample renderings) wait already: try again shortly."""
        return _error_page(request, 429, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(StarletteHTTPException)
    def _http_error(request: Request, exc: HTTPException):
        return _error_page(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError):
        if wants_html(request):
            fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
            return _error_page(request, 422, f"{translate('error.invalid', lang_of(request))}: {fields}")
        return JSONResponse({"detail": _jsonable_errors(exc.errors())}, status_code=422)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DBAPIError)
    def _out_of_range(request: Request, exc: Exception):
        """A value the database cannot store (page=10**30, a NUL in text on PostgreSQL): the caller's error."""
        text = str(exc)
        if isinstance(exc, OverflowError) and "too large to convert" in text:
            return _error_page(request, 400, "A number in the request is out of range.")
        if isinstance(exc, DBAPIError) and "out of range" in text:
            return _error_page(request, 400, "A number in the request is out of range.")
        if isinstance(exc, DBAPIError) and "NUL (0x00)" in text:  # PostgreSQL text never holds NUL
            return _error_page(request, 400, "Text in the request contains a NUL character.")
        return _unexpected(request, exc)

    @app.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error_page(request, 500, "Internal error; it has been logged.")

    return app


app = create_app()
