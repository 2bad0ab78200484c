"""An explained 404 for Skyvern operations this server does not provide.

A request no route answers (the router's own 404, or 405 for a path known under another method) that is
one of the operations of Skyvern's OpenAPI document (`app/schemas/skyvern_operations.json`) gets a
`detail` naming the operation, instead of a bare "Not Found" that reads like a wrong base URL. Never
501: Skyvern's TypeScript client retries 5xx answers. Whether an operation is provided is decided per
request from the app's own routes, so a route added later (in any router) simply answers instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

# older SDK releases call the agents operations by their former name (skyvern-api-notes: aliases)
_OLD_NAMES = (("/v1/run/workflows", "/v1/run/agents"), ("/v1/workflows", "/v1/agents"))


@dataclass(frozen=True)
class SkyvernOperation:
    method: str
    path: str  # the spec's template, e.g. /v1/runs/{workflow_run_id}/tags
    name: str  # the SDKs' method name (else the spec's operationId)
    summary: str

    @property
    def literal_segments(self) -> int:
        return sum(1 for part in self.path.split("/") if part and not part.startswith("{"))


@cache
def _operations() -> list[tuple[re.Pattern[str], SkyvernOperation]]:
    rows = json.loads(files("app.schemas").joinpath("skyvern_operations.json").read_text())
    table = [SkyvernOperation(*row) for row in rows]
    return [(re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", op.path) + "$"), op) for op in table]


def find_operation(method: str, path: str) -> SkyvernOperation | None:
    """The spec's operation for this method and path (the most specific template), if any."""
    for old, new in _OLD_NAMES:
        if path == old or path.startswith(old + "/"):
            path = new + path[len(old):]
            break
    found = [op for pattern, op in _operations() if op.method == method and pattern.match(path.rstrip("/"))]
    return max(found, key=lambda op: op.literal_segments) if found else None


def _answered_by_a_route(request: Request) -> bool:
    """A route took the request (and raised its own 404): not an operation missing here."""
    return any(route.matches(request.scope)[0] == Match.FULL for route in request.app.router.routes)


def not_provided_detail(op: SkyvernOperation) -> str:
    return (f"This server (Wayfarer) does not provide Skyvern's {op.name} operation "
            f"({op.method} {op.path}: {op.summary}). It implements part of Skyvern's API: "
            "GET /openapi.json lists what it provides.")


async def explain_not_found(request: Request, exc: Exception) -> Response:
    """The app's HTTPException handler: FastAPI's own answer, except for Skyvern operations not here."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (404, 405) and not _answered_by_a_route(request):
        op = find_operation(request.method, request.url.path)
        if op is not None:
            return JSONResponse({"detail": not_provided_detail(op)}, status_code=404)
    return await http_exception_handler(request, exc)
