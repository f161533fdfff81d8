"""The rater's pages: the queue, the rating page's shell and the history (the data comes from app.rating).

The rating page is a shell that static/rate.js fills from the rater API (app/api/routes/rate.py); the
shell itself holds the task's name and mode and the page's labels, nothing that names a model.
"""

from fastapi import APIRouter, HTTPException, Request

from app.api.deps import Rater, SessionDep
from app.core.i18n import MESSAGES, translate
from app.rating.assign import rater_task
from app.rating.queue import rater_history, rater_tasks
from app.web import lang_of, render

router = APIRouter()

# Only the labels the script draws itself (live messages, side names, headings it builds).
_SCRIPT_KEYS = [key for key in MESSAGES if key.startswith("rate.")]


@router.get("/rate")
def rate_queue(request: Request, user: Rater, session: SessionDep):
    rows = rater_tasks(session, rater_id=user.id or 0)
    return render(request, "pages/rate_queue.html", {"user": user, "nav": "rating", "rows": rows})


@router.get("/rate/history")
def rate_history(request: Request, user: Rater, session: SessionDep):
    rows = rater_history(session, rater_id=user.id or 0)
    return render(request, "pages/rate_history.html", {"user": user, "nav": "rating", "rows": rows})


@router.get("/rate/{task_key}")
def rate_page(request: Request, task_key: str, user: Rater, session: SessionDep, token: str = ""):
    task = rater_task(session, task_key=task_key, rater_id=user.id or 0)
    if task is None:
        raise HTTPException(status_code=404, detail="No such rating task.")
    lang = lang_of(request)
    strings = {key: translate(key, lang) for key in _SCRIPT_KEYS}
    context = {"user": user, "nav": "rating", "task": task, "token": token[:64], "strings": strings}
    return render(request, "pages/rate.html", context)
