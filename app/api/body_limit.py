"""A cap on every request body, counted while it streams, so a body without Content-Length is capped too.

Starlette reads a form, a JSON body or a multipart body whole before a route sees it; without a cap an
authenticated user (a rater included) could make the server hold or spool any amount. The upload route
takes up to `upload_max_bytes` (plus room for multipart headers) and streams it to disk itself; every
other route takes `max_body_bytes`. Past the limit, reading the body raises BodyTooLarge, an HTTP 413
that the app's error handlers answer as a page or JSON.

FastAPI's own `max_body_size` fixes its limits when the app is built and answers only "Content Too
Large"; this one reads the settings on each request and says what the limit is.
"""

import re

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import get_settings
from app.datasets.uploads import MULTIPART_OVERHEAD, human_bytes

UPLOAD_ROUTE = ("POST", "/api/uploads")
# Error pages find the limit in the message to translate it.
BODY_TOO_LARGE = re.compile(r"The request body is larger than the limit of (.+)\.")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the limit of {human_bytes(limit)}.")


def body_limit(method: str, path: str) -> int:
    settings = get_settings()
    if (method, path) == UPLOAD_ROUTE:
        return settings.upload_max_bytes + MULTIPART_OVERHEAD
    return settings.max_body_bytes


class BodyLimit:
    """ASGI middleware: wraps `receive` with a byte counter (and refuses a larger Content-Length at once)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["method"], scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        received = 0

        async def limited() -> Message:
            nonlocal received
            if declared.isdigit() and int(declared) > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)
