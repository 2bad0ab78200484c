"""Who may open a live socket: a short-lived signed token in the URL (`?token=`, from POST
.../live_token), an `x-api-key` header (programs), or the viewer's session cookie (the pages, from
this site only: app.web.auth.viewer_identity).

A token names its topic ("run:<id>" or "session:<id>"), the organization and the API key id it was
issued to, and when it expires (LIVE_TOKEN_SECONDS); it is an HMAC under a key derived from
WAYFARER_SECRET_KEY for this purpose only, so it is accepted for nothing else and for no other topic.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from app.accounts.service import active_api_key
from app.db.engine import session_scope
from app.platform.security import normalize_api_key, sign_hex
from app.platform.settings import Settings
from app.web.auth import viewer_identity

LIVE_TOKEN_SECONDS = 300


@dataclass(frozen=True)
class LiveViewer:
    organization_id: str
    key_id: str


def _signature(settings: Settings, payload: bytes) -> str:
    return sign_hex(f"wayfarer-live-token:{settings.resolved_secret_key()}", payload)


def issue_token(settings: Settings, topic: str, viewer: LiveViewer) -> tuple[str, int]:
    """A token for `topic` and when it expires (Unix seconds)."""
    expires = int(time.time() + LIVE_TOKEN_SECONDS)
    payload = json.dumps({"t": topic, "o": viewer.organization_id, "k": viewer.key_id, "e": expires},
                         separators=(",", ":")).encode()
    encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{encoded}.{_signature(settings, payload)}", expires


def read_token(settings: Settings, token: str, topic: str) -> LiveViewer | None:
    """The viewer a valid, unexpired token for `topic` was issued to; None otherwise."""
    encoded, _, signature = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        data = json.loads(payload)
        if not hmac.compare_digest(signature, _signature(settings, payload)):
            return None
        if data["t"] != topic or int(data["e"]) < time.time():
            return None
        return LiveViewer(str(data["o"]), str(data["k"]))
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None


async def identify(connection: HTTPConnection, topic: str) -> LiveViewer | None:
    """The viewer behind a live socket's handshake (or a request), or None."""
    settings: Settings = connection.app.state.settings
    token = connection.query_params.get("token")
    if token:
        return read_token(settings, token, topic)
    key = normalize_api_key(connection.headers.get("x-api-key") or "")
    if key:
        return await run_in_threadpool(_key_viewer, settings, key)
    if not _same_origin(connection):  # the cookie is SameSite=Strict; a foreign Origin is refused too
        return None
    viewer = await viewer_identity(connection)
    return LiveViewer(viewer.organization_id, viewer.api_key_id) if viewer is not None else None


def _same_origin(connection: HTTPConnection) -> bool:
    origin = connection.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == connection.headers.get("host")


def _key_viewer(settings: Settings, key: str) -> LiveViewer | None:
    with session_scope(settings.database_url) as s:
        row = active_api_key(s, key)
        return LiveViewer(row.organization_id, row.id) if row is not None else None
