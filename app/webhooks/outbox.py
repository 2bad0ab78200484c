"""The webhook outbox: every run that ends with a `webhook_url` gets exactly one delivery row, written in
the transaction that ended it, so no process can die between the final status and the promise to send.

`add(session, run_id)` is the one entry point for whatever ends a run (app/runs/lifecycle.py calls it
on every final transition; nothing else needs to remember the webhook). Deliverers in any process
(app/webhooks/deliverer.py) `claim_due` rows under a lease, send, and `settle` them; a sender that dies
mid-send loses its lease and another process sends again with the same delivery id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from app.db.models import Run, WebhookDelivery, utcnow
from app.runs import ids

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True)
class Claim:
    """A delivery this deliverer holds for one attempt (number `attempt`)."""

    delivery_id: str
    run_id: str
    url: str
    attempt: int
    token: str


def add(session: Session, run_id: str) -> str | None:
    """Record the run's webhook as owed, in the caller's transaction; returns the delivery id (None when
    the run has no webhook_url). Idempotent: a run has at most one delivery."""
    url = session.scalar(select(Run.webhook_url).where(Run.id == run_id))
    if not url:
        return None
    existing = session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.run_id == run_id))
    if existing is not None:
        return existing
    delivery = WebhookDelivery(id=ids.new_id(ids.WEBHOOK_DELIVERY), run_id=run_id, url=url, status=PENDING,
                               attempts=0, next_attempt_at=utcnow())
    session.add(delivery)
    session.flush()
    return delivery.id


def _claimable(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now))


def claim_due(session: Session, limit: int, lease: timedelta) -> list[Claim]:
    """Take up to `limit` due deliveries (compare-and-set: one deliverer per delivery at a time)."""
    if limit <= 0:
        return []
    now = utcnow()
    rows = session.execute(select(WebhookDelivery.id, WebhookDelivery.run_id, WebhookDelivery.url,
                                  WebhookDelivery.attempts)
                           .where(*_claimable(now)).order_by(WebhookDelivery.next_attempt_at)
                           .limit(limit)).all()
    claims = []
    for delivery_id, run_id, url, attempts in rows:
        token = uuid.uuid4().hex
        taken = session.execute(update(WebhookDelivery)
                                .where(WebhookDelivery.id == delivery_id, *_claimable(now))
                                .values(claim_token=token, claimed_until=now + lease)
                                .execution_options(synchronize_session=False))
        if taken.rowcount:  # type: ignore[attr-defined]
            claims.append(Claim(delivery_id, run_id, url, attempts + 1, token))
    return claims


def settle(session: Session, claim: Claim, *, delivered: bool, retry_in: float | None,
           error: str | None) -> bool:
    """The claimed attempt's result: delivered, retried in `retry_in` seconds, or given up (retry_in
    None). Sets the run's webhook_failure_reason when given up, clears it when delivered. False when
    the lease had lapsed and another deliverer took the delivery over."""
    now = utcnow()
    values: dict[str, Any]
    if delivered:
        values = {"status": DELIVERED, "finished_at": now, "last_error": None}
    elif retry_in is not None:
        values = {"status": PENDING, "next_attempt_at": now + timedelta(seconds=retry_in),
                  "last_error": error}
    else:
        values = {"status": FAILED, "finished_at": now, "last_error": error}
    settled = session.execute(update(WebhookDelivery)
                              .where(WebhookDelivery.id == claim.delivery_id,
                                     WebhookDelivery.claim_token == claim.token)
                              .values(attempts=claim.attempt, claim_token=None, claimed_until=None,
                                      modified_at=now, **values)
                              .execution_options(synchronize_session=False))
    if not settled.rowcount:  # type: ignore[attr-defined]
        return False
    if delivered or retry_in is None:
        after = f" after {claim.attempt} attempts." if claim.attempt > 1 else "."
        reason = None if delivered else f"Webhook delivery to {claim.url} failed: {error}{after}"
        session.execute(update(Run).where(Run.id == claim.run_id).values(webhook_failure_reason=reason)
                        .execution_options(synchronize_session=False))
    return True


def delivered_by_replay(session: Session, run_id: str) -> None:
    """A replay to the run's own URL was accepted: a delivery still owed (and not being sent right now)
    is done, and the run no longer shows a webhook failure."""
    now = utcnow()
    session.execute(update(WebhookDelivery)
                    .where(WebhookDelivery.run_id == run_id, WebhookDelivery.status.in_([PENDING, FAILED]),
                           or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now))
                    .values(status=DELIVERED, finished_at=now, claim_token=None, claimed_until=None,
                            modified_at=now)
                    .execution_options(synchronize_session=False))
    session.execute(update(Run).where(Run.id == run_id).values(webhook_failure_reason=None)
                    .execution_options(synchronize_session=False))
