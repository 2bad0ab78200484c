"""Limits that keep one client or one organization from exhausting the server: request body size,
extraction-schema shape, and per-organization queued/running run counts."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.engine import session_scope
from app.db.models import Organization, Run
from app.runs.lifecycle import HELD, RunStatus
from app.settings import Settings

MAX_SCHEMA_DEPTH = 32
QUEUED_RETRY_AFTER_SECONDS = 10
ORG_SLOT_POLL_SECONDS = 1.0
_CLAIMS = threading.Lock()
T = TypeVar("T")


class OrgLimitReached(Exception):
    """The organization has as many runs waiting as it may (HTTP 429 with Retry-After)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def check_org_can_queue(session: Session, settings: Settings, organization_id: str) -> None:
    """Raise OrgLimitReached when WAYFARER_ORG_MAX_QUEUED_RUNS runs of the organization are queued."""
    limit = settings.org_max_queued_runs
    if limit is None:
        return
    queued = session.scalar(select(func.count()).select_from(Run).where(
        Run.organization_id == organization_id, Run.status == RunStatus.queued.value)) or 0
    if queued >= limit:
        raise OrgLimitReached(f"This organization already has {queued} queued run(s), its limit "
                              f"(WAYFARER_ORG_MAX_QUEUED_RUNS={limit}); retry when some have started.",
                              QUEUED_RETRY_AFTER_SECONDS)


def _claim_if_room(settings: Settings, run_id: str, claim: Callable[[], T]) -> tuple[bool, T | None]:
    """(True, claim()) unless the run's organization has WAYFARER_ORG_MAX_RUNNING_RUNS runs running.
    The organization's row stays locked (FOR UPDATE; a process lock where the database has none) from
    the count until the claim is committed, so concurrent claims of one organization take turns."""
    with _CLAIMS, session_scope(settings.database_url) as s:
        run = s.get(Run, run_id)
        if run is None or run.status != RunStatus.queued.value:
            return True, claim()  # nothing to hold back: the claim says what became of the run
        s.execute(select(Organization.id).where(Organization.id == run.organization_id).with_for_update())
        running = s.scalar(select(func.count()).select_from(Run).where(
            Run.organization_id == run.organization_id, Run.status.in_([s.value for s in HELD]))) or 0
        if running >= (settings.org_max_running_runs or 0):
            return False, None
        return True, claim()


async def claim_within_org_limit(settings: Settings, run_id: str, claim: Callable[[], T]) -> T | None:
    """Call `claim` (in a thread) once the run's organization is under WAYFARER_ORG_MAX_RUNNING_RUNS;
    until then the run stays queued and this waits."""
    if settings.org_max_running_runs is None:
        return await asyncio.to_thread(claim)
    while True:
        claimed, result = await asyncio.to_thread(_claim_if_room, settings, run_id, claim)
        if claimed:
            return result
        await asyncio.sleep(ORG_SLOT_POLL_SECONDS)


def over_token_cap(settings: Settings, tokens_used: int) -> bool:
    return settings.run_max_tokens is not None and tokens_used > settings.run_max_tokens


def json_depth(value: Any) -> int:
    """Nesting depth of decoded JSON ({} is 1, a scalar 0), computed level by level, not recursively."""
    depth = 0
    level = [value]
    while containers := [item for item in level if isinstance(item, dict | list)]:
        depth += 1
        level = [child for item in containers
                 for child in (item.values() if isinstance(item, dict) else item)]
    return depth


def check_extraction_schema(schema: Any) -> Any:
    """A data_extraction_schema no deeper than MAX_SCHEMA_DEPTH and, when it is an object, a valid JSON
    Schema. Raises ValueError with what is wrong."""
    if isinstance(schema, str):
        try:
            decoded = json.loads(schema)
        except ValueError:
            return schema  # Skyvern takes a plain-language description too
        if not isinstance(decoded, dict | list):
            return schema
        check_extraction_schema(decoded)
        return schema
    if json_depth(schema) > MAX_SCHEMA_DEPTH:
        raise ValueError(f"is nested deeper than {MAX_SCHEMA_DEPTH} levels")
    if isinstance(schema, dict):
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(part) for part in exc.path)
            raise ValueError(f"is not a valid JSON Schema: {exc.message}"
                             + (f" (at {where})" if where else "")) from None
    return schema


class RequestBodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 before the app reads it all."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        too_large = False
        rejected = False

        async def counted_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # once the body overflowed, whatever the app answers (it may turn the error into a 400) is
            # replaced by the 413
            nonlocal rejected
            if not too_large:
                await send(message)
            elif not rejected:
                rejected = True
                await self._reject(send)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            if not rejected:
                rejected = True
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"detail": f"The request body is larger than {self.max_bytes} bytes "
                                     "(WAYFARER_MAX_REQUEST_BYTES)."}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass
