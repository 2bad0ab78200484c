"""Webhook delivery (retries, attempt rows, failure reason) and replay, against a real HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest
from skyvern.client.types import RunWebhookReplayResponse
from sqlalchemy import select

from app.db.engine import session_scope
from app.db.models import Run, WebhookAttempt
from app.runs.lifecycle import RunStatus
from app.webhooks import delivery as webhooks
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
    run_id = api.create(webhook_url=webhook_url)["run_id"]
    api.set_run(run_id, status=RunStatus.completed.value, output={"greeting": "hi"})
    return run_id


def _verify(api: Api, body: bytes, signature: str) -> None:
    assert signature == hmac.new(api.api_key.encode(), body, hashlib.sha256).hexdigest()


def test_delivery_retries_5xx_then_succeeds(api: Api, receiver: Receiver) -> None:
    receiver.statuses = [500, 503, 200]
    run_id = _finished_run(api, receiver.url)
    api.add_artifact(run_id, "screenshot_final", b"\xff\xd8", "image/jpeg")
    webhooks.deliver(api.settings, run_id)
    hooks = receiver.wait_for(3)
    assert len(hooks) == 3 and len({h.body for h in hooks}) == 1
    _verify(api, hooks[-1].body, hooks[-1].headers["x-skyvern-signature"])
    assert hooks[-1].headers["x-skyvern-timestamp"].isdigit()
    payload = json.loads(hooks[-1].body)
    assert payload["run_id"] == payload["task_id"] == run_id
    assert payload["status"] == "completed" and payload["output"] == payload["extracted_information"]
    assert payload["screenshot_url"].startswith("http://testserver/v1/artifacts/")
    assert b": " not in hooks[-1].body  # compact JSON
    assert [(a.attempt, a.status_code) for a in _attempts(api, run_id)] == [(1, 500), (2, 503), (3, 200)]
    webhooks.deliver(api.settings, run_id)  # a redelivered task sends nothing twice
    assert len(receiver.received) == 3
    with session_scope(api.settings.database_url) as s:
        run = s.get(Run, run_id)
        assert run is not None and run.webhook_failure_reason is None
    shown = api.client.get(f"/v1/runs/{run_id}/webhook_attempts", headers=api.headers()).json()
    assert [attempt["status_code"] for attempt in shown] == [500, 503, 200]


def test_delivery_stops_on_4xx_and_records_why(api: Api, receiver: Receiver) -> None:
    receiver.statuses = [400]
    run_id = _finished_run(api, receiver.url)
    webhooks.deliver(api.settings, run_id)
    assert len(receiver.received) == 1
    assert [a.status_code for a in _attempts(api, run_id)] == [400]
    with session_scope(api.settings.database_url) as s:
        run = s.get(Run, run_id)
        assert run is not None and "HTTP 400" in (run.webhook_failure_reason or "")


def test_delivery_gives_up_after_max_attempts_on_network_errors(api: Api) -> None:
    run_id = _finished_run(api, "http://127.0.0.1:9/unreachable")
    webhooks.deliver(api.settings.model_copy(update={"webhook_max_attempts": 2}), run_id)
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
