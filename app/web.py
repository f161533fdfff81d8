"""Template rendering shared by every page route.

Pages and JSON can share a route: `render` returns the fragment named
`partial` when the request comes from HTMX, the full page otherwise.
"""

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from app.core.config import get_settings
from app.core.i18n import MESSAGES, pick_lang, translate
from app.core.security import csrf_token

ROOT = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(ROOT / "templates"))

# The sections reachable with "g <key>", and the least role that may open them; base.html draws the
# navigation and the shortcut list from it, showing each user only what their role opens.
NAV = [
    ("datasets", "/datasets", "d", "researcher"),
    ("runs", "/runs", "r", "researcher"),
    ("jobs", "/jobs", "j", "researcher"),
    ("sampling", "/sampling", "s", "researcher"),
    ("evaluations", "/evaluations", "e", "researcher"),
    ("rating", "/rating", "a", "rater"),
    ("compare", "/compare", "c", "researcher"),
]
_RANK = {"rater": 1, "researcher": 2, "admin": 3}


def nav_for(user: Any) -> list[tuple[str, str, str]]:
    if user is None:
        return []
    rank = _RANK.get(str(getattr(user, "role", "")), 0)
    return [(key, href, letter) for key, href, letter, least in NAV if rank >= _RANK[least]]


def home_for(user: Any) -> str:
    """Where a user lands after login: the first section their role opens."""
    items = nav_for(user)
    return items[0][1] if items else "/login"


def lang_of(request: Request) -> str:
    return pick_lang(request.cookies.get("lang"), request.headers.get("accept-language"))


def flash_key(key: str | None) -> str:
    """A message key passed back in a redirect (?ok=... / ?err=...), kept only if the catalogue has it,
    so a crafted link cannot put arbitrary text on a page."""
    return key if key and key in MESSAGES else ""


def render(
    request: Request,
    page: str,
    context: dict[str, Any] | None = None,
    *,
    partial: str | None = None,
    status_code: int = 200,
):
    settings = get_settings()
    lang = lang_of(request)
    login = getattr(request.state, "session", None)  # the signed cookie's data
    ctx = {
        "request": request,
        "lang": lang,
        "t": lambda key: translate(key, lang),
        "csrf_token": csrf_token(settings.secret_key, login) if login else "",
        "user": getattr(request.state, "user", None),
        "nav": "",
    }
    ctx.update(context or {})
    ctx["nav_items"] = nav_for(ctx.get("user"))
    name = partial if partial and request.headers.get("hx-request") else page
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    # Pages differ by cookie (user, language): never serve one user's page from a shared cache.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Vary", "Cookie")
    return response


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/")
