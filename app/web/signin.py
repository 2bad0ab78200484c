"""Signing in with an API key, signing out, and the front door."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.accounts.service import active_api_key
from app.api.deps import SessionDep
from app.platform.security import normalize_api_key
from app.web import auth
from app.web.auth import FormViewerDep
from app.web.render import page

router = APIRouter(include_in_schema=False)

INVALID_KEY = "That API key is not valid (it may have been revoked). Check it and try again."


def _safe_next(next_path: str | None) -> str:
    """Only a path on this site: never an absolute or scheme-relative URL (an open redirect)."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path:
        return "/runs"
    return next_path


def _signin_page(request: Request, next_path: str, error: str | None = None,
                 status_code: int = 200) -> Response:
    token = auth.new_signin_token()
    response = page(request, "signin.html", None, status_code=status_code, next_path=next_path,
                    error=error, signin_token=token)
    auth.remember_signin_token(request, response, token)
    return response


@router.get("/")
async def front_door(request: Request) -> Response:
    signed_in = await auth.viewer_identity(request) is not None
    return RedirectResponse("/runs" if signed_in else "/signin", status_code=303)


@router.get("/signin")
async def signin_form(request: Request, next: str | None = None) -> Response:
    return _signin_page(request, _safe_next(next))


@router.post("/signin")
def signin(request: Request, session: SessionDep, api_key: Annotated[str, Form()] = "",
           csrf_token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/runs") -> Response:
    next_path = _safe_next(next)
    if not auth.signin_token_ok(request, csrf_token):
        return _signin_page(request, next_path, "The sign-in form expired; please sign in again.", 403)
    key = normalize_api_key(api_key)
    row = active_api_key(session, key)
    if row is None:
        return _signin_page(request, next_path, INVALID_KEY, 401)
    response = RedirectResponse(next_path, status_code=303)
    auth.start_session(request, response, key, row)
    return response


@router.post("/signout")
async def signout(viewer: FormViewerDep) -> Response:
    response = RedirectResponse("/signin", status_code=303)
    auth.end_session(response)
    return response
