"""A schedule made through the official SDK starts a real workflow run at its slot: a real API, a Celery
worker on Redis and PostgreSQL, Chromium on the test pages, the fake LLM. The slot comes from an injected
clock (this process fires it with the same scheduler code the servers run), not from waiting for it;
the run's webhook goes out as any run's."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from pathlib import Path

from skyvern import Skyvern

from app.dispatch import CeleryDispatcher
from app.platform.security import sign_hex
from app.platform.settings import Settings
from app.workflows.scheduler import fire_due
from tests.e2e.flows import FORM_PATH, GREETING, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.spec import assert_matches_spec
from tests.support.stack import Stack
from tests.support.webhook_receiver import Receiver


def test_a_schedule_fires_a_real_run_end_to_end(celery_stack: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                receiver: Receiver, token: str, tmp_path: Path) -> None:
    fake_llm.script(token, form_script("Ada"))
    definition = {"title": f"Nightly guest book {token}", "webhook_callback_url": receiver.url,
                  "workflow_definition": {
                      "parameters": [{"key": "name", "workflow_parameter_type": "string"}],
                      "blocks": [{"block_type": "navigation", "label": "sign", "url": sites.url(FORM_PATH),
                                  "navigation_goal": f"Sign the guest book as {{{{ name }}}} ({token})"}]}}

    async def make_schedule() -> tuple[str, str]:
        skyvern = Skyvern(base_url=celery_stack.base_url, api_key=celery_stack.api_key)
        workflow = await skyvern.create_workflow(json_definition=definition)  # type: ignore[arg-type]
        made = await skyvern.schedules.create(workflow.workflow_permanent_id, cron_expression="0 5 * * *",
                                              timezone="UTC", parameters={"name": "Ada"})
        assert made.next_runs
        return workflow.workflow_permanent_id, made.schedule.workflow_schedule_id

    wpid, schedule_id = asyncio.run(make_schedule())
    with celery_stack.client() as client:
        [item] = client.get("/v1/schedules", params={"search": token}).json()["schedules"]
    slot = item["next_run"]

    env = celery_stack.env  # this process fires as one more scheduler of the deployment would
    settings = Settings(data_dir=tmp_path, database_url=env["WAYFARER_DATABASE_URL"],
                        redis_url=env["WAYFARER_REDIS_URL"], secret_key=env["WAYFARER_SECRET_KEY"])
    at = datetime.fromisoformat(slot).replace(tzinfo=None) + timedelta(seconds=1)
    [fired] = [f for f in fire_due(settings, CeleryDispatcher(settings), at) if f.schedule_id == schedule_id]
    assert fired.run_id is not None and fired.run_id.startswith("wr_")

    run = celery_stack.wait_final(fired.run_id, timeout=180)
    assert run["status"] == "completed", run.get("failure_reason")
    assert_matches_spec("WorkflowRunResponse", run)
    assert run["output"]["sign"] == GREETING
    assert run["run_request"]["parameters"] == {"name": "Ada"}

    async def listed() -> list[tuple[str, str | None]]:
        skyvern = Skyvern(base_url=celery_stack.base_url, api_key=celery_stack.api_key)
        return [(r.workflow_run_id, r.trigger_type) for r in await skyvern.get_workflow_runs_by_id(wpid)]

    assert asyncio.run(listed()) == [(fired.run_id, "scheduled")]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            json.loads(hook.body).get("run_id") == fired.run_id for hook in receiver.received):
        time.sleep(0.1)
    [hook] = [h for h in receiver.received if json.loads(h.body).get("run_id") == fired.run_id]
    assert json.loads(hook.body)["status"] == "completed"
    signature = {name.lower(): value for name, value in hook.headers.items()}["x-skyvern-signature"]
    assert signature == sign_hex(celery_stack.api_key, hook.body)  # the key that saved the schedule
