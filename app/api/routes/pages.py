"""Home, health, and the sections whose issues have not landed yet."""

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from app.api.deps import Anyone, Rater, Researcher, no_user
from app.models import Role
from app.web import home_for, render

router = APIRouter()


@router.get("/")
def home(user: Anyone):
    return RedirectResponse(home_for(user), status_code=303)


@router.get("/healthz")
async def health(_: Annotated[None, no_user()]) -> dict:
    # No session, no thread: it answers while every database connection and thread is busy, and shows
    # whether the event loop itself is free.
    return {"ok": True}


def _placeholder(request: Request, user, nav: str):  # noqa: ANN001
    return render(request, "pages/placeholder.html", {"user": user, "nav": nav})


@router.get("/evaluations")
def evaluations(request: Request, user: Researcher):
    return _placeholder(request, user, "evaluations")


@router.get("/rating")
def rating(user: Rater):
    """The navigation's rating item: a rater's queue, or a researcher's rating tasks."""
    return RedirectResponse("/rate" if user.role == Role.rater else "/rating/tasks", status_code=303)


@router.get("/compare")
def compare(request: Request, user: Researcher):
    return _placeholder(request, user, "compare")
