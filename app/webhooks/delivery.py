"""Run webhooks: their signature, delivery with retries, and replay (the payload: app.webhooks.payload).

The body is compact JSON and the signature is the hex HMAC-SHA256 of exactly those bytes, keyed with
the API key the run was created with (kept encrypted on the run). Every attempt is stored.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select, update
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
from app.runs.lifecycle import FINAL
from app.webhooks.payload import build_payload, pause_notice

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429})
RESPONSE_BODY_LIMIT = 2048


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


def _headers(key: str, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "x-skyvern-signature": sign_hex(key, body),
            "x-skyvern-timestamp": str(int(time.time()))}


def _post(settings: Settings, url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
    started = time.monotonic()
    try:
        target = resolve_allowed(url, parse_policy(settings.url_policy))
    except UrlDenied as exc:
        return AttemptResult(None, 0, None, f"Not sent: {exc}", refused=True)
    try:
        with httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False) as client:
            response = client.post(target.request_url, content=body, headers={**headers, **target.headers},
                                   extensions=target.extensions)
    except httpx.HTTPError as exc:
        return AttemptResult(None, int((time.monotonic() - started) * 1000), None,
                             f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    latency = int((time.monotonic() - started) * 1000)
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return AttemptResult(response.status_code, latency, response.text[:RESPONSE_BODY_LIMIT], error)


def _record(settings: Settings, run_id: str, attempt: int, url: str, result: AttemptResult,
            replay: bool) -> None:
    record_webhook_attempt(result.status_code)
    with session_scope(settings.database_url) as s:
        s.add(WebhookAttempt(id=ids.new_id(ids.WEBHOOK_ATTEMPT), run_id=run_id, attempt=attempt, url=url,
                             status_code=result.status_code, latency_ms=result.latency_ms,
                             error=result.error, replay=replay))


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


def _already_delivered(settings: Settings, run_id: str) -> bool:
    """A redelivered task (Celery acks late) must not send the final webhook twice."""
    with session_scope(settings.database_url) as s:
        return s.scalar(select(WebhookAttempt.id).where(
            WebhookAttempt.run_id == run_id, WebhookAttempt.replay.is_(False),
            WebhookAttempt.status_code >= 200, WebhookAttempt.status_code < 300).limit(1)) is not None


def _last_result(state: RetryCallState) -> AttemptResult:
    assert state.outcome is not None
    result: AttemptResult = state.outcome.result()
    return result


def deliver(settings: Settings, run_id: str) -> None:
    """POST the final run to its webhook_url, retrying network errors, 408/425/429 and 5xx with
    exponential backoff; any other answer stops (and, if not 2xx, sets webhook_failure_reason)."""
    prepared = _prepare(settings, run_id, None)
    if prepared is None:
        log.warning("webhook for unknown run %s skipped", run_id)
        return
    run, body, key = prepared
    if not run.webhook_url or run.status not in FINAL or _already_delivered(settings, run_id):
        return
    if key is None:
        log.warning("run %s has no signing key; webhook not sent", run_id)
        return
    url = run.webhook_url
    attempts = 0

    def send_once() -> AttemptResult:
        nonlocal attempts
        attempts += 1
        result = _post(settings, url, body, _headers(key, body))
        _record(settings, run_id, attempts, url, result, replay=False)
        return result

    retrying = Retrying(
        stop=stop_after_attempt(max(1, settings.webhook_max_attempts)),
        wait=wait_exponential(multiplier=settings.webhook_backoff_seconds, max=3600),
        retry=retry_if_result(lambda r: not r.delivered and r.retryable),
        retry_error_callback=_last_result,
    )
    result: AttemptResult = retrying(send_once)
    failure = None if result.delivered else (
        f"Webhook delivery to {url} failed: {result.error}"
        + (f" after {attempts} attempts." if attempts > 1 else "."))
    with session_scope(settings.database_url) as s:
        s.execute(update(Run).where(Run.id == run_id).values(webhook_failure_reason=failure)
                  .execution_options(synchronize_session=False))
    if failure:
        log.warning("run %s: %s", run_id, failure)


def replay(settings: Settings, run_id: str, webhook_url: str | None,
           signing_key: str | None = None) -> dict[str, Any]:
    """Send the run's payload once, synchronously, to webhook_url or the run's own URL; returns the
    RunWebhookReplayResponse fields. Delivery failures are reported in `error`, not raised."""
    prepared = _prepare(settings, run_id, signing_key)
    if prepared is None:
        raise LookupError(run_id)
    run, body, key = prepared
    target = webhook_url or run.webhook_url
    if not target:
        raise ReplayRefused("No webhook URL configured for the run.")
    if key is None:
        raise ReplayRefused("Organization does not have a valid API key configured.")
    headers = _headers(key, body)
    result = _post(settings, target, body, headers)
    _record(settings, run_id, 1, target, result, replay=True)
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
