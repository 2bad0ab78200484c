"""Who is looking at the viewer: an API key exchanged once for a session cookie, and CSRF tokens.

The session cookie is a Fernet token (encrypted and authenticated under a key derived from
WAYFARER_SECRET_KEY for this purpose only, timestamped) holding the API key, its id and the session's
CSRF token. It is HttpOnly, SameSite=Strict, Secure over https, and refused after
WAYFARER_WEB_SESSION_SECONDS. Every request checks the key again, so revoking a key signs its viewers
out too (within WAYFARER_API_KEY_CACHE_SECONDS).

Forms that change state carry the session's CSRF token (`csrf_token` field). The sign-in form, before
any session exists, is protected by a double submit: a random token both in a SameSite=Strict cookie
and in the form, which a cross-site page can neither read nor send.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Annotated

from cryptography.fernet import InvalidToken
from fastapi import Depends, Form, Request, Response
from starlette.requests import HTTPConnection

from app.accounts.service import key_organization
from app.db.models import ApiKey
from app.platform.security import decrypt, encrypt
from app.platform.settings import Settings

SESSION_COOKIE = "wayfarer_session"
SIGNIN_COOKIE = "wayfarer_signin"
_PURPOSE = "web-session"
SIGNIN_TOKEN_SECONDS = 3600


@dataclass(frozen=True)
class Viewer:
    """A signed-in viewer. `api_key` is the key itself: runs the viewer starts are created (and their
    webhooks signed) as that key, exactly as through the API. Never show or log it."""

    organization_id: str
    api_key_id: str
    api_key: str = field(repr=False)
    csrf_token: str = field(repr=False)


class SignInRequired(Exception):
    """A page was asked for without a valid session: answered with a redirect to /signin."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


async def viewer_identity(connection: HTTPConnection) -> Viewer | None:
    """The viewer behind a Request or a WebSocket handshake, or None when not signed in.

    This is the one way to learn who is looking: it reads the `wayfarer_session` cookie, refuses it when
    forged, made for another purpose or older than WAYFARER_WEB_SESSION_SECONDS, and checks that its API
    key is still active. The result names the organization (`organization_id`: show only its data; an
    id of another organization must answer exactly like a missing one) and the key (`api_key_id`, safe
    to record, e.g. who took control). A WebSocket endpoint calls it before accepting the handshake.
    The cookie is SameSite=Strict, so a cross-site page cannot open a socket with it either.
    """
    token = connection.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    settings: Settings = connection.app.state.settings
    try:
        data = json.loads(decrypt(settings.resolved_secret_key(), token, _PURPOSE,
                                  ttl_seconds=settings.web_session_seconds))
        key, key_id, csrf = str(data["key"]), str(data["key_id"]), str(data["csrf"])
    except (InvalidToken, ValueError, KeyError, TypeError):
        return None
    organization_id = await key_organization(settings.database_url, key, settings.api_key_cache_seconds)
    if organization_id is None:
        return None
    return Viewer(organization_id, key_id, key, csrf)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def start_session(request: Request, response: Response, key: str, row: ApiKey) -> None:
    """Sign the browser in as `key` (already verified: `row` is its active ApiKey row)."""
    settings: Settings = request.app.state.settings
    payload = json.dumps({"key": key, "key_id": row.id, "csrf": secrets.token_urlsafe(24)})
    response.set_cookie(SESSION_COOKIE, encrypt(settings.resolved_secret_key(), payload, _PURPOSE),
                        max_age=settings.web_session_seconds, path="/", httponly=True, samesite="strict",
                        secure=_secure(request))
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def new_signin_token() -> str:
    return secrets.token_urlsafe(24)


def remember_signin_token(request: Request, response: Response, token: str) -> None:
    """The sign-in form carries `token`; this cookie holds it too, and the POST must bring back both."""
    response.set_cookie(SIGNIN_COOKIE, token, max_age=SIGNIN_TOKEN_SECONDS, path="/signin", httponly=True,
                        samesite="strict", secure=_secure(request))


def signin_token_ok(request: Request, form_token: str) -> bool:
    cookie = request.cookies.get(SIGNIN_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), form_token.encode())


async def require_viewer(request: Request) -> Viewer:
    """Dependency of every page: the viewer, or a redirect to the sign-in page (via SignInRequired)."""
    viewer = await viewer_identity(request)
    if viewer is None:
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return viewer


ViewerDep = Annotated[Viewer, Depends(require_viewer)]

class FormRefused(Exception):
    """A state-changing form without the session's CSRF token: answered 403 with a page saying so."""


async def require_form_viewer(viewer: ViewerDep, csrf_token: Annotated[str, Form()] = "") -> Viewer:
    """Dependency of every form that changes state: the viewer, whose CSRF token the form must carry."""
    if not csrf_token or not hmac.compare_digest(csrf_token.encode(), viewer.csrf_token.encode()):
        raise FormRefused()
    return viewer


FormViewerDep = Annotated[Viewer, Depends(require_form_viewer)]
