"""Per-organization quotas (queued and running runs) and the per-run LLM token cap, so one
organization or one run cannot exhaust the server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.engine import session_scope
from app.db.models import Organization, Run
from app.platform.settings import Settings
from app.runs.lifecycle import HELD, RunStatus

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
