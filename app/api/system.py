"""Version and health endpoints (no API key)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import SettingsDep
from app.db.engine import session_scope
from app.platform.readiness import readiness

router = APIRouter(tags=["System"])


def package_version() -> str:
    try:
        return version("wayfarer")
    except PackageNotFoundError:
        return "0.0.0"


@router.get("/v1/version")
def get_version() -> dict[str, str]:
    return {"version": package_version()}


@router.get("/api/v1/heartbeat")
def heartbeat() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/healthz", response_model=None)
def healthz(settings: SettingsDep) -> dict[str, str] | JSONResponse:
    """Alive, and the database answers (liveness; /readyz also covers the queue)."""
    try:
        with session_scope(settings.database_url) as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return {"status": "ok", "version": package_version()}


@router.get("/readyz", response_model=None)
def readyz(settings: SettingsDep) -> dict[str, str] | JSONResponse:
    """Ready to take runs: the database and the queue (Redis, when set) answer; 503 names what does not."""
    problems = readiness(settings)
    body = {name: problem or "ok" for name, problem in problems.items()}
    if any(problems.values()):
        return JSONResponse({"status": "unavailable", **body}, status_code=503)
    return {"status": "ready", **body}
