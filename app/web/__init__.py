"""The viewer (issue 14): server-rendered pages under `/`, signed in with an API key.

Templates in `templates/`, the few CSS/JS files in `static/` (served at /static), all shipped in the
package. Routes only call services (app/runs, app/sessions, app/webhooks); who is looking comes from
`app.web.auth.viewer_identity`.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from app.web import new_task, runs, sessions, signin
from app.web.render import STATIC_DIR

router = APIRouter(include_in_schema=False)
for module in (signin, new_task, runs, sessions):  # new_task first: /runs/new is not a run id
    router.include_router(module.router)


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)
