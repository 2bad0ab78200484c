"""Sending run webhooks: one attempt of an outbox delivery (app.webhooks.outbox; the deliverer thread
that calls it: app.webhooks.deliverer), the retry policy, replay, and the pause notice (the payload:
app.webhooks.payload).

The body is compact JSON and the signature is the hex HMAC-SHA256 of exactly those bytes, keyed with
the API key the run was created with (kept encrypted on the run). Every attempt carries its delivery's
id (`x-wayfarer-delivery-id`, the same on every retry: delivery is at least once, so a receiver drops
duplicates by it) and is stored.
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import certifi
import httpx
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt, wait_exponential

from app.artifacts.links import ArtifactLinks
from app.artifacts.store import make_store
from app.db.engine import session_scope
from app.db.models import Run, WebhookAttempt
from app.platform.observability import record_webhook_attempt
from app.platform.public_url import public_base_url
from app.platform.security import decrypt, sign_hex
from app.platform.settings import Settings
from app.platform.url_policy import UrlDenied, parse_policy, resolve_allowed
from app.runs import ids
from app.webhooks import outbox
from app.webhooks.outbox import Claim
from app.webhooks.payload import build_payload, pause_notice

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429})
RESPONSE_BODY_LIMIT = 2048
MAX_BACKOFF_SECONDS = 3600
DELIVERY_ID_HEADER = "x-wayfarer-delivery-id"


class ReplayRefused(Exception):
    """The replay cannot be attempted (no target URL, no signing key); the API answers 400."""


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int
    response_body: str | None
    error: str | None
    refused: bool = False  # WAYFARER_URL_POLICY denied the target: nothing was sent

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        if self.status_code is None:
            return not self.refused  # else a network error or timeout
        return self.status_code in RETRY_STATUSES or self.status_code >= 500


def _headers(key: str, body: bytes, delivery_id: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "x-skyvern-signature": sign_hex(key, body),
               "x-skyvern-timestamp": str(int(time.time()))}
    if delivery_id is not None:
        headers[DELIVERY_ID_HEADER] = delivery_id
    return headers


@cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verification (certifi's CA bundle), loaded once: loading it takes tens of ms,
    hundreds under load, and each attempt would otherwise pay for it."""
    return ssl.create_default_context(cafile=certifi.where())


def _post(settings: Settings, url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
    started = time.monotonic()
    try:
        target = resolve_allowed(url, parse_policy(settings.url_policy))
    except UrlDenied as exc:
        return AttemptResult(None, 0, None, f"Not sent: {exc}", refused=True)
    try:
        with httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False,
                          verify=_tls_context()) as client:
            response = client.post(target.request_url, content=body, headers={**headers, **target.headers},
                                   extensions=target.extensions)
    except httpx.HTTPError as exc:
        return AttemptResult(None, int((time.monotonic() - started) * 1000), None, _describe(exc))
    latency = int((time.monotonic() - started) * 1000)
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return AttemptResult(response.status_code, latency, response.text[:RESPONSE_BODY_LIMIT], error)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _attempt_row(run_id: str, attempt: int, url: str, result: AttemptResult, *, replay: bool,
                 delivery_id: str) -> WebhookAttempt:
    record_webhook_attempt(result.status_code)
    return WebhookAttempt(id=ids.new_id(ids.WEBHOOK_ATTEMPT), run_id=run_id, attempt=attempt, url=url,
                          status_code=result.status_code, latency_ms=result.latency_ms, error=result.error,
                          replay=replay, delivery_id=delivery_id)


def _prepare(settings: Settings, run_id: str, signing_key: str | None,
             ) -> tuple[Run, bytes, str | None] | None:
    """The run, its payload and the key to sign it with; None when the run does not exist."""
    links = ArtifactLinks(settings, make_store(settings), public_base_url(settings))
    with session_scope(settings.database_url) as s:
        run = s.get(Run, run_id)
        if run is None:
            return None
        key = signing_key or (decrypt(settings.resolved_secret_key(), run.webhook_key_encrypted)
                              if run.webhook_key_encrypted else None)
        return run, build_payload(settings, run, s, links), key


def _last_result(state: RetryCallState) -> AttemptResult:
    assert state.outcome is not None
    result: AttemptResult = state.outcome.result()
    return result


def retry_delay(settings: Settings, attempt: int, result: AttemptResult) -> float | None:
    """Seconds before the next attempt after attempt number `attempt`, or None: delivered or given up.
    Network errors, 408/425/429, 5xx and internal errors are retried, the delay doubling from
    WAYFARER_WEBHOOK_BACKOFF_SECONDS, up to WAYFARER_WEBHOOK_MAX_ATTEMPTS attempts."""
    if result.delivered or not result.retryable or attempt >= max(1, settings.webhook_max_attempts):
        return None
    return float(min(settings.webhook_backoff_seconds * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))


def _send(settings: Settings, claim: Claim) -> AttemptResult:
    prepared = _prepare(settings, claim.run_id, None)
    if prepared is None:
        return AttemptResult(None, 0, None, "Not sent: the run no longer exists.", refused=True)
    _run, body, key = prepared
    if key is None:
        return AttemptResult(None, 0, None, "Not sent: the run has no signing key.", refused=True)
    return _post(settings, claim.url, body, _headers(key, body, claim.delivery_id))


def send_claimed(settings: Settings, claim: Claim) -> AttemptResult:
    """One attempt of an outbox delivery the caller claimed: send it, record the attempt and settle the
    delivery (delivered, due again later, or given up) in one transaction. A failure inside Wayfarer
    (e.g. a signing key this process cannot decrypt) is an attempt like any other, with its reason."""
    try:
        result = _send(settings, claim)
    except Exception as exc:
        log.exception("webhook delivery %s of run %s failed inside Wayfarer", claim.delivery_id, claim.run_id)
        result = AttemptResult(None, 0, None, f"Not sent: internal error ({_describe(exc)}).")
    with session_scope(settings.database_url) as s:
        s.add(_attempt_row(claim.run_id, claim.attempt, claim.url, result, replay=False,
                           delivery_id=claim.delivery_id))
        if not outbox.settle(s, claim, delivered=result.delivered,
                             retry_in=retry_delay(settings, claim.attempt, result), error=result.error):
            log.info("webhook delivery %s was taken over by another deliverer", claim.delivery_id)
    if not result.delivered:
        log.warning("run %s: webhook attempt %d to %s failed: %s", claim.run_id, claim.attempt, claim.url,
                    result.error)
    return result


def replay(settings: Settings, run_id: str, webhook_url: str | None,
           signing_key: str | None = None) -> dict[str, Any]:
    """Send the run's payload once, synchronously, to webhook_url or the run's own URL, as a new delivery
    (its own id); returns the RunWebhookReplayResponse fields. Delivery failures are reported in `error`,
    not raised. Accepted at the run's own URL, it also settles a delivery still owed."""
    prepared = _prepare(settings, run_id, signing_key)
    if prepared is None:
        raise LookupError(run_id)
    run, body, key = prepared
    target = webhook_url or run.webhook_url
    if not target:
        raise ReplayRefused("No webhook URL configured for the run.")
    if key is None:
        raise ReplayRefused("Organization does not have a valid API key configured.")
    delivery_id = ids.new_id(ids.WEBHOOK_DELIVERY)
    headers = _headers(key, body, delivery_id)
    result = _post(settings, target, body, headers)
    with session_scope(settings.database_url) as s:
        s.add(_attempt_row(run_id, 1, target, result, replay=True, delivery_id=delivery_id))
        if result.delivered and target == run.webhook_url:
            outbox.delivered_by_replay(s, run_id)
    return {"run_id": run.id, "run_type": run.run_type, "default_webhook_url": run.webhook_url,
            "target_webhook_url": target, "payload": body.decode(), "headers": headers,
            "status_code": result.status_code, "latency_ms": result.latency_ms,
            "response_body": result.response_body, "error": result.error}


PAUSE_NOTICE_ATTEMPTS = 3


def notify_paused(settings: Settings, run_id: str, reason: str) -> None:
    """Tell WAYFARER_PAUSE_NOTICE_URL that a run waits for a person: run id, reason, page link, signed
    like the run's webhook (x-skyvern-signature with the key the run was created with). A few quick
    retries; the run's own webhook_url is for the final result only."""
    url = settings.pause_notice_url
    if not url:
        return
    with session_scope(settings.database_url) as s:
        run = s.get(Run, run_id)
        if run is None or not run.webhook_key_encrypted:
            return
        key = decrypt(settings.resolved_secret_key(), run.webhook_key_encrypted)
        body = pause_notice(settings, run, reason)
    retrying = Retrying(stop=stop_after_attempt(PAUSE_NOTICE_ATTEMPTS), wait=wait_exponential(max=10),
                        retry=retry_if_result(lambda r: not r.delivered and r.retryable),
                        retry_error_callback=_last_result)
    result: AttemptResult = retrying(lambda: _post(settings, url, body, _headers(key, body)))
    if not result.delivered:
        log.warning("pause notice for run %s to %s failed: %s", run_id, url, result.error)
