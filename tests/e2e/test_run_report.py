"""What a run reports (issue 17 items 1 and 5), through the official SDK and a real webhook receiver:
the planner's summary, LLM calls, tokens and the estimated cost on get_run and the webhook, and the
fields Skyvern documents for webhooks (task_id, summary, prompt, url, organization_id, workflow_run_id,
proxy_location, webhook_callback_url), signed as always."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from skyvern import Skyvern

from app.platform.security import sign_hex
from tests.e2e.flows import FORM_PATH, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.spec import assert_matches_spec
from tests.support.stack import Stack, running_stack
from tests.support.webhook_receiver import Receiver

PRICE = {"prompt": 0.15, "completion": 0.6}  # US dollars per million tokens


@pytest.fixture(scope="module")
def priced(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("priced")
    with running_stack(tmp, llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_LLM_PRICES": json.dumps({"fake-model": PRICE})}) as stack:
        yield stack


def _run_and_hook(stack: Stack, receiver: Receiver, prompt: str, url: str) -> tuple[Any, dict[str, Any]]:
    async def scenario() -> Any:
        skyvern = Skyvern(base_url=stack.base_url, api_key=stack.api_key)
        done = await skyvern.run_task(prompt=prompt, url=url, webhook_url=receiver.url,
                                      wait_for_completion=True, timeout=120)
        return await skyvern.get_run(done.run_id)

    run = asyncio.run(scenario())
    hooks = [h for h in receiver.wait_for(1) if json.loads(h.body)["run_id"] == run.run_id]
    (hook,) = hooks
    assert hook.headers["x-skyvern-signature"] == sign_hex(stack.api_key, hook.body)
    return run, json.loads(hook.body)


def test_a_completed_run_reports_its_summary_tokens_and_cost(
    priced: Stack, fake_llm: FakeLLM, sites: SiteServer, receiver: Receiver, token: str
) -> None:
    fake_llm.script(token, form_script())
    prompt = f"Sign the guest book as Ada ({token})"
    run, payload = _run_and_hook(priced, receiver, prompt, sites.url(FORM_PATH))
    assert run.status == "completed"
    assert run.summary == "Signed."  # the SDK keeps the extensions as extra attributes
    assert run.llm_call_count == 2 and run.input_token_count > 0 and run.output_token_count > 0
    expected = (run.input_token_count * PRICE["prompt"] + run.output_token_count * PRICE["completion"]) / 1e6
    assert run.total_cost == pytest.approx(expected)
    with priced.client() as client:
        assert_matches_spec("TaskRunResponse", client.get(f"/v1/runs/{run.run_id}").json())
        timeline = client.get(f"/v1/runs/{run.run_id}/timeline").json()
    thoughts = [child["thought"] for entry in timeline for child in entry["children"]
                if child["type"] == "thought" and child["thought"]["input_token_count"]]
    assert len(thoughts) == 2  # each step's cost, as Skyvern names it, adding up to the run's
    assert sum(t["input_token_count"] for t in thoughts) == run.input_token_count
    assert sum(t["thought_cost"] for t in thoughts) == pytest.approx(expected)

    assert payload["task_id"] == payload["run_id"] == run.run_id
    assert payload["summary"] == "Signed." and payload["prompt"] == prompt
    assert payload["url"] == sites.url(FORM_PATH) and payload["organization_id"].startswith("o_")
    assert payload["workflow_run_id"] is None and payload["proxy_location"] is None
    assert payload["webhook_callback_url"] == receiver.url
    assert (payload["llm_call_count"], payload["input_token_count"], payload["output_token_count"]) == (
        run.llm_call_count, run.input_token_count, run.output_token_count)
    assert payload["total_cost"] == pytest.approx(expected)


def test_a_terminated_run_reports_the_reason_as_its_summary_and_an_unpriced_model_no_cost(
    embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, receiver: Receiver, token: str
) -> None:
    fake_llm.script(token, [[{"name": "terminate", "args": {"reason": "The guest book is closed."}}]])
    run, payload = _run_and_hook(embedded, receiver, f"Sign ({token})", sites.url(FORM_PATH))
    assert run.status == "terminated" and run.summary == payload["summary"] == "The guest book is closed."
    assert run.llm_call_count == 1 and run.input_token_count > 0
    assert run.total_cost is None and payload["total_cost"] is None  # no price for the model: tokens only
