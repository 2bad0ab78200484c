"""A cancel the server accepted wins over the run's own ending: 50 cancels race runs whose LLM answers at
once, through the official SDK, on the embedded server and on Celery with Redis. Before the fix most of
them ended `completed` after their cancel had answered success."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest
from skyvern import Skyvern
from skyvern.client.core.api_error import ApiError

from tests.e2e.flows import FORM_PATH
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack

RUNS = 50
AT_ONCE = 4  # runs in flight at a time: both stacks run two at once, so a few also wait queued
INSTANT = [[{"name": "complete", "args": {"output": {"done": True}, "summary": "Done at once."}}]]


@dataclass
class Raced:
    run_id: str
    token: str
    accepted: bool


async def _race_one(skyvern: Skyvern, index: int, prefix: str, url: str, slots: asyncio.Semaphore) -> Raced:
    """Create a run and cancel it: a third at once (often still queued), the others as soon as they
    leave the queue, one by one or through the bulk cancel."""
    token = f"{prefix}-r{index:02d}"
    async with slots:
        created = await skyvern.run_task(prompt=f"Answer at once ({token})", url=url)
        if index % 3:
            deadline = time.monotonic() + 60
            while (await skyvern.get_run(created.run_id)).status == "queued":
                assert time.monotonic() < deadline, f"{created.run_id} never left the queue"
                await asyncio.sleep(0.02)
        if index % 3 == 2:
            bulk = await skyvern.bulk_cancel_runs(run_ids=[created.run_id])
            accepted = bulk.cancelled == [created.run_id]
            assert accepted or bulk.failed == [created.run_id]
        else:
            try:
                await skyvern.cancel_run(created.run_id)
                accepted = True
            except ApiError as exc:  # the run had already ended: 400 naming its status
                assert exc.status_code == 400, exc.body
                accepted = False
    return Raced(created.run_id, token, accepted)


@pytest.mark.parametrize("stack_name", ["embedded", "celery_stack"])
def test_no_run_reported_cancelled_ends_otherwise(stack_name: str, request: pytest.FixtureRequest,
                                                  fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    stack: Stack = request.getfixturevalue(stack_name)
    for index in range(RUNS):
        fake_llm.script(f"{token}-r{index:02d}", INSTANT)

    async def race() -> list[Raced]:
        skyvern = Skyvern(base_url=stack.base_url, api_key=stack.api_key)
        slots = asyncio.Semaphore(AT_ONCE)
        return await asyncio.gather(*(_race_one(skyvern, index, token, sites.url(FORM_PATH), slots)
                                      for index in range(RUNS)))

    raced = asyncio.run(race())
    final = {one.run_id: stack.wait_final(one.run_id) for one in raced}
    told_canceled = [one for one in raced if one.accepted]
    wrong = {one.run_id: final[one.run_id]["status"] for one in told_canceled
             if final[one.run_id]["status"] != "canceled"}
    assert wrong == {}, f"{len(wrong)} of {len(told_canceled)} runs reported cancelled ended otherwise"
    refused = [one for one in raced if not one.accepted]
    assert all(final[one.run_id]["status"] != "canceled" for one in refused)
    # the race was run: some cancels reached runs already started, some runs were canceled still queued
    assert any(final[one.run_id]["started_at"] for one in told_canceled), told_canceled
    never_started = [one for one in told_canceled if final[one.run_id]["started_at"] is None]
    print(f"\n{stack_name}: {len(told_canceled)} cancels accepted ({len(told_canceled) - len(never_started)} "
          f"on runs already started, {len(never_started)} still queued), {len(refused)} refused: run over")
    for one in never_started:  # a queued run canceled never starts: its planner was never asked
        assert fake_llm.requests_for(one.token) == [] and final[one.run_id]["step_count"] == 0
