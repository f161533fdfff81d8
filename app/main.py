"""The FastAPI application: routers, static files, and error pages.

Errors are rendered as pages for browsers and JSON under /api, and an
unexpected exception is logged and shown as a plain 500 page rather than a trace.
"""

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.api.deps import NotAuthenticated
from app.api.main import router
from app.web import ROOT, render, wants_html

log = logging.getLogger("sftlab")


def _error_page(request: Request, status_code: int, message: str):
    if wants_html(request) and not request.headers.get("hx-request"):
        return render(request, "pages/error.html", {"status_code": status_code, "message": message,
                                                    "user": getattr(request.state, "user", None)},
                      status_code=status_code)
    return JSONResponse({"detail": message}, status_code=status_code)


def create_app() -> FastAPI:
    app = FastAPI(title="sftlab", version="0.1.0", openapi_url="/api/openapi.json", docs_url="/api/docs",
                  redoc_url=None)
    app.mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static")
    app.include_router(router)

    @app.exception_handler(NotAuthenticated)
    async def _unauthenticated(request: Request, exc: NotAuthenticated):
        if wants_html(request):
            if request.headers.get("hx-request"):
                return JSONResponse({"detail": "Log in first."}, status_code=401, headers={"HX-Redirect": "/login"})
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return JSONResponse({"detail": "Not authenticated."}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        return _error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        if wants_html(request):
            fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
            return _error_page(request, 422, f"Invalid input: {fields}")
        return JSONResponse({"detail": exc.errors()}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error_page(request, 500, "Internal error; it has been logged.")

    return app


app = create_app()
