"""Template rendering shared by every page route.

Pages and JSON can share a route: `render` returns the fragment named
`partial` when the request comes from HTMX, the full page otherwise.
"""

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from app.core.config import get_settings
from app.core.i18n import pick_lang, translate
from app.core.security import csrf_token

ROOT = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(ROOT / "templates"))


def lang_of(request: Request) -> str:
    return pick_lang(request.cookies.get("lang"), request.headers.get("accept-language"))


def render(request: Request, page: str, context: dict[str, Any] | None = None, *, partial: str | None = None,
           status_code: int = 200):
    settings = get_settings()
    lang = lang_of(request)
    session = getattr(request.state, "session", None)
    ctx = {
        "request": request,
        "lang": lang,
        "t": lambda key: translate(key, lang),
        "csrf_token": csrf_token(settings.secret_key, session) if session else "",
        "user": context.get("user") if context else None,
    }
    ctx.update(context or {})
    name = partial if partial and request.headers.get("hx-request") else page
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/")
