"""Webhook delivery (the outbox row written with the final status, retries, attempt rows, failure
reason, internal errors) and replay, against a real HTTP receiver. `_deliver` does in the test's thread
what a process's deliverer thread does."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from skyvern.client.types import RunWebhookReplayResponse
from sqlalchemy import select

from app.db.engine import session_scope
from app.db.models import Run, WebhookAttempt, WebhookDelivery
from app.platform.settings import Settings
from app.runs import lifecycle
from app.runs.lifecycle import RunStatus
from app.webhooks import outbox
from app.webhooks.delivery import DELIVERY_ID_HEADER, send_claimed
from tests.integration.api.conftest import Api
from tests.support.webhook_receiver import Receiver, webhook_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as rec:
        yield rec


def _attempts(api: Api, run_id: str) -> list[WebhookAttempt]:
    with session_scope(api.settings.database_url) as s:
        return list(s.scalars(select(WebhookAttempt).where(WebhookAttempt.run_id == run_id)
                              .order_by(WebhookAttempt.attempt)).all())


def _finished_run(api: Api, webhook_url: str) -> str:
    """A run ended as its runner ends it: claimed, then finished through the state machine."""
    run_id = api.create(webhook_url=webhook_url)["run_id"]
    with session_scope(api.settings.database_url) as s:
        assert lifecycle.claim(s, run_id, "test-worker")
        assert lifecycle.finish(s, run_id, RunStatus.completed, output={"greeting": "hi"})
    return run_id


def _delivery(api: Api, run_id: str) -> WebhookDelivery | None:
    with session_scope(api.settings.database_url) as s:
        row = s.scalar(select(WebhookDelivery).where(WebhookDelivery.run_id == run_id))
        if row is not None:
            s.expunge(row)
        return row


def _deliver(api: Api, run_id: str, settings: Settings | None = None) -> None:
    """Send due deliveries (as a deliverer would) until this run's is delivered or given up."""
    settings = settings or api.settings
    deadline = time.monotonic() + 20
    while (row := _delivery(api, run_id)) is not None and row.status == outbox.PENDING:
        assert time.monotonic() < deadline, "the delivery stayed pending"
        with session_scope(settings.database_url) as s:
            claims = outbox.claim_due(s, 10, timedelta(seconds=60))
        for claim in claims:
            send_claimed(settings, claim)
        time.sleep(0.01)


def _verify(api: Api, body: bytes, signature: str) -> None:
    assert signature == hmac.new(api.api_key.encode(), body, hashlib.sha256).hexdigest()


def test_delivery_retries_5xx_then_succeeds(api: Api, receiver: Receiver) -> None:
    receiver.statuses = [500, 503, 200]
    run_id = _finished_run(api, receiver.url)
    api.add_artifact(run_id, "screenshot_final", b"\xff\xd8", "image/jpeg")
    _deliver(api, run_id)
    hooks = receiver.wait_for(3)
    assert len(hooks) == 3  # each attempt builds the payload afresh (its signed links too)
    assert len({(json.loads(h.body)["run_id"], json.loads(h.body)["status"]) for h in hooks}) == 1
    _verify(api, hooks[-1].body, hooks[-1].headers["x-skyvern-signature"])
    assert hooks[-1].headers["x-skyvern-timestamp"].isdigit()
    payload = json.loads(hooks[-1].body)
    assert payload["run_id"] == payload["task_id"] == run_id
    assert payload["status"] == "completed" and payload["output"] == payload["extracted_information"]
    assert payload["screenshot_url"].startswith("http://testserver/v1/artifacts/")
    assert b": " not in hooks[-1].body  # compact JSON
    assert [(a.attempt, a.status_code) for a in _attempts(api, run_id)] == [(1, 500), (2, 503), (3, 200)]
    delivery = _delivery(api, run_id)
    assert delivery is not None and delivery.status == outbox.DELIVERED and delivery.attempts == 3
    assert {h.headers[DELIVERY_ID_HEADER] for h in hooks} == {delivery.id}  # one id on every retry
    assert {a.delivery_id for a in _attempts(api, run_id)} == {delivery.id}
    _deliver(api, run_id)  # nothing is due any more: nothing is sent twice
    assert len(receiver.received) == 3
    with session_scope(api.settings.database_url) as s:
        run = s.get(Run, run_id)
        assert run is not None and run.webhook_failure_reason is None
    shown = api.client.get(f"/v1/runs/{run_id}/webhook_attempts", headers=api.headers()).json()
    assert [attempt["status_code"] for attempt in shown] == [500, 503, 200]


def test_delivery_stops_on_4xx_and_records_why(api: Api, receiver: Receiver) -> None:
    receiver.statuses = [400]
    run_id = _finished_run(api, receiver.url)
    _deliver(api, run_id)
    assert len(receiver.received) == 1
    assert [a.status_code for a in _attempts(api, run_id)] == [400]
    with session_scope(api.settings.database_url) as s:
        run = s.get(Run, run_id)
        assert run is not None and "HTTP 400" in (run.webhook_failure_reason or "")


def test_delivery_gives_up_after_max_attempts_on_network_errors(api: Api) -> None:
    run_id = _finished_run(api, "http://127.0.0.1:9/unreachable")
    _deliver(api, run_id, api.settings.model_copy(update={"webhook_max_attempts": 2}))
    attempts = _attempts(api, run_id)
    assert [a.status_code for a in attempts] == [None, None] and attempts[0].error
    with session_scope(api.settings.database_url) as s:
        run = s.get(Run, run_id)
        assert run is not None and "after 2 attempts" in (run.webhook_failure_reason or "")


def test_retry_webhook_replays_once_synchronously(api: Api, receiver: Receiver) -> None:
    run_id = _finished_run(api, receiver.url)
    # the SDK posts no body but a JSON content type
    response = api.client.post(f"/v1/runs/{run_id}/retry_webhook",
                               headers={**api.headers(), "content-type": "application/json"})
    assert response.status_code == 200, response.text
    replay = RunWebhookReplayResponse.model_validate(response.json())
    assert replay.status_code == 200 and replay.target_webhook_url == receiver.url
    (hook,) = receiver.wait_for(1)
    assert hook.body == replay.payload.encode()
    _verify(api, hook.body, replay.headers["x-skyvern-signature"])
    assert _attempts(api, run_id)[0].replay

    with webhook_receiver() as other:
        moved = api.client.post(f"/v1/runs/{run_id}/retry_webhook", json={"webhook_url": other.url},
                                headers=api.headers()).json()
        assert moved["target_webhook_url"] == other.url and len(other.wait_for(1)) == 1
    failing = api.client.post(f"/v1/runs/{run_id}/retry_webhook", json={"webhook_url": "http://127.0.0.1:9/"},
                              headers=api.headers()).json()
    assert failing["status_code"] is None and failing["error"]
    no_url = api.create()["run_id"]
    refused = api.client.post(f"/v1/runs/{no_url}/retry_webhook", headers=api.headers())
    assert refused.status_code == 400 and refused.json()["detail"] == "No webhook URL configured for the run."


def test_unhandled_errors_are_a_generic_500(api: Api) -> None:
    def boom(run_id: str) -> None:
        raise RuntimeError(f"secret detail {api.api_key}")

    api.client.app.add_api_route("/v1/test-boom/{run_id}", boom)  # type: ignore[attr-defined]
    response = api.client.get("/v1/test-boom/tsk_1")
    assert response.status_code == 500 and response.json() == {"detail": "Internal server error"}
    assert api.api_key not in response.text


def test_the_final_status_and_its_delivery_are_written_in_one_transaction(
    api: Api, receiver: Receiver
) -> None:
    run_id = api.create(webhook_url=receiver.url)["run_id"]
    with pytest.raises(RuntimeError), session_scope(api.settings.database_url) as s:
        assert lifecycle.finish(s, run_id, RunStatus.failed, failure_reason="x")
        assert s.scalar(select(WebhookDelivery.id).where(WebhookDelivery.run_id == run_id))
        raise RuntimeError("the process dies before the commit")
    assert _delivery(api, run_id) is None  # neither the status nor the delivery was kept
    with session_scope(api.settings.database_url) as s:
        assert s.get(Run, run_id).status == RunStatus.queued.value  # type: ignore[union-attr]
    # a cancel ends the run in the API: the delivery is owed all the same, and only once
    assert api.client.post(f"/v1/runs/{run_id}/cancel", headers=api.headers()).status_code == 200
    first = _delivery(api, run_id)
    assert first is not None and first.status == outbox.PENDING and first.url == receiver.url
    with session_scope(api.settings.database_url) as s:
        assert not lifecycle.finish(s, run_id, RunStatus.failed)
        assert outbox.add(s, run_id) == first.id
        assert len(s.scalars(select(WebhookDelivery).where(WebhookDelivery.run_id == run_id)).all()) == 1
    _deliver(api, run_id)
    assert json.loads(receiver.wait_for(1)[0].body)["status"] == "canceled"
    silent = api.create()["run_id"]  # no webhook_url: nothing owed
    assert api.client.post(f"/v1/runs/{silent}/cancel", headers=api.headers()).status_code == 200
    assert _delivery(api, silent) is None


def test_a_failure_inside_wayfarer_is_a_recorded_attempt_with_its_reason(
    api: Api, receiver: Receiver
) -> None:
    run_id = api.create(webhook_url=receiver.url)["run_id"]
    api.set_run(run_id, webhook_key_encrypted="made with another secret key")
    with session_scope(api.settings.database_url) as s:
        assert lifecycle.finish(s, run_id, RunStatus.failed, failure_reason="x")
    _deliver(api, run_id, api.settings.model_copy(update={"webhook_max_attempts": 2}))
    attempts = _attempts(api, run_id)
    assert len(attempts) == 2 and receiver.received == []
    assert all(a.status_code is None and "internal error (InvalidToken)" in (a.error or "") for a in attempts)
    delivery = _delivery(api, run_id)
    assert delivery is not None and delivery.status == outbox.FAILED
    with session_scope(api.settings.database_url) as s:
        reason = s.scalar(select(Run.webhook_failure_reason).where(Run.id == run_id)) or ""
    assert "internal error (InvalidToken)" in reason and "after 2 attempts" in reason


def test_a_replay_accepted_at_the_runs_own_url_settles_the_delivery_still_owed(
    api: Api, receiver: Receiver
) -> None:
    receiver.statuses = [503]
    run_id = _finished_run(api, receiver.url)
    with session_scope(api.settings.database_url) as s:
        (claim,) = [c for c in outbox.claim_due(s, 50, timedelta(seconds=60)) if c.run_id == run_id]
    assert send_claimed(api.settings, claim).status_code == 503
    owed = _delivery(api, run_id)
    assert owed is not None and owed.status == outbox.PENDING and owed.attempts == 1
    replay = api.client.post(f"/v1/runs/{run_id}/retry_webhook", headers=api.headers()).json()
    assert replay["status_code"] == 200
    settled = _delivery(api, run_id)
    assert settled is not None and settled.status == outbox.DELIVERED
    first, again = receiver.wait_for(2)
    assert first.headers[DELIVERY_ID_HEADER] == owed.id
    assert again.headers[DELIVERY_ID_HEADER] == replay["headers"][DELIVERY_ID_HEADER] != owed.id
    assert [a.replay for a in _attempts(api, run_id)] == [False, True]
