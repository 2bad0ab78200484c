"""run_with "code" on a workflow through the official SDK: the first run's agent block records a script
in which the typed parameter value is a reference (`{{ name }}`), and a run with another value replays
it with no LLM call (the fake server's request count) and types the new value."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from skyvern import Skyvern
from skyvern.client.core.api_error import ApiError

from tests.fakes.fake_llm import FakeLLM, last_user_text
from tests.integration.agent.test_replay import ORDER, ORDER_SCRIPT
from tests.sites.server import SiteServer
from tests.support.spec import assert_matches_spec
from tests.support.stack import Stack


def order_workflow(token: str, sites: SiteServer, **settings: Any) -> dict[str, Any]:
    """An order block, then a validation block (its own fake-LLM marker: `check-` + the token reversed)."""
    return {"title": f"Daily order {token}", **settings, "workflow_definition": {
        "parameters": [{"key": "name", "workflow_parameter_type": "string"}],
        "blocks": [{"block_type": "navigation", "label": "order", "url": sites.url(ORDER),
                    "navigation_goal": "Order a large insured parcel for {{ name }} (" + token + ")"},
                   {"block_type": "validation", "label": "check",
                    "complete_criterion": f"the page thanks {{{{ name }}}} (check-{token[::-1]})"}]}}


def replay_marks(entries: list[dict[str, Any]]) -> set[Any]:
    """The replay marks of every plan thought in a timeline (blocks nest their steps)."""
    marks = set()
    for entry in entries:
        thought = entry.get("thought") or {}
        if thought.get("thought_type") == "plan":
            marks.add((thought.get("output") or {}).get("replay"))
        marks |= replay_marks(entry.get("children") or [])
    return marks


def test_a_workflow_replays_its_block_with_another_parameter_value(embedded: Stack, fake_llm: FakeLLM,
                                                                   sites: SiteServer, token: str) -> None:
    fake_llm.script(token, ORDER_SCRIPT)  # the model types "Ada", the first run's parameter
    check = f"check-{token[::-1]}"
    verdict = {"name": "complete", "args": {"output": {"ok": True}, "summary": "Thanked."}}
    fake_llm.script(check, [[verdict], [verdict]])
    skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)

    async def run(wpid: str, name: str) -> Any:
        done = await skyvern.run_workflow(wpid, parameters={"name": name}, wait_for_completion=True,
                                          timeout=180)
        assert done.status == "completed", done.failure_reason
        assert done.output is not None and done.output["order"] == {"greeting": f"Thanks, {name}!"}
        assert sites.submissions[-1] == {"name": name, "size": "Large", "insured": "yes"}
        return done

    async def scenario() -> tuple[str, str]:
        with pytest.raises(ApiError) as unknown:
            await skyvern.create_workflow(json_definition=order_workflow(  # type: ignore[arg-type]
                token, sites, cache_key="{{ region }}"))
        assert unknown.value.status_code == 400 and "cache_key" in str(unknown.value.body)
        workflow = await skyvern.create_workflow(json_definition=order_workflow(  # type: ignore[arg-type]
            token, sites, run_with="code", cache_key="daily"))
        assert workflow.run_with == "code"

        first = await run(workflow.workflow_permanent_id, "Ada")
        recorded = first.script_run
        assert recorded is not None and recorded.script_id and not recorded.ai_fallback_triggered
        calls = len(fake_llm.requests_for(token))
        assert calls == 2

        second = await run(workflow.workflow_permanent_id, "Grace")
        assert len(fake_llm.requests_for(token)) == calls  # the replay asked the model nothing
        assert len(fake_llm.requests_for(check)) == 2  # a validation judges the page anew each run
        assert second.script_run is not None and second.script_run.script_id == recorded.script_id
        return second.run_id, str(recorded.script_id)

    run_id, script_id = asyncio.run(scenario())
    with embedded.client() as client:
        shown = client.get(f"/v1/runs/{run_id}").json()
        assert_matches_spec("WorkflowRunResponse", shown)
        assert (shown["run_with"], shown["ai_fallback"]) == ("code", True)
        raw = shown["script_run"]
        assert (raw["steps_replayed"], raw["steps_healed"], raw["llm_calls"]) == (4, 0, 0)
        assert [block["label"] for block in raw["blocks"]] == ["order"]  # validation is not scripted
        timeline = client.get(f"/v1/runs/{run_id}/timeline").json()
        assert replay_marks(timeline[:1]) == {"replayed"}  # the order block; the validation asked
        assert replay_marks(timeline[1:]) == {None}
        assert timeline[0]["block"]["script_run"]["steps_replayed"] == 4  # WorkflowRunBlock.script_run
        files = {f["path"]: f["content"] for f in client.get(f"/v1/scripts/{script_id}").json()["files"]}
    script = json.loads(files["script.json"])
    assert script["steps"][0]["args"]["text"] == "{{ name }}"
    assert script["output"] == {"greeting": "Thanks, {{ name }}!"}
    assert "Ada" not in files["script.json"] and "Grace" not in files["script.json"]


def test_a_loop_block_replays_its_first_iteration_with_each_next_value(
        embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    """Inside a loop the value typed comes from `current_value`: the first iteration records it as a
    reference, and the next iterations of the same run replay the script with their own value."""
    fake_llm.script(token, ORDER_SCRIPT)
    order = {"block_type": "navigation", "label": "order", "url": sites.url(ORDER),
             "navigation_goal": "Order a large insured parcel for {{ current_value }} (" + token + ")"}
    definition = {"title": f"Orders {token}", "workflow_definition": {
        "parameters": [{"key": "names", "workflow_parameter_type": "json"}],
        "blocks": [{"block_type": "for_loop", "label": "each", "loop_over_parameter_key": "names",
                    "loop_blocks": [order]}]}}

    async def scenario() -> Any:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        workflow = await skyvern.create_workflow(json_definition=definition)  # type: ignore[arg-type]
        return await skyvern.run_workflow(workflow.workflow_permanent_id,
                                          parameters={"names": ["Ada", "Lin"]}, run_with="code",
                                          wait_for_completion=True, timeout=180)

    done = asyncio.run(scenario())
    assert done.status == "completed", done.failure_reason
    assert done.output is not None and done.output["each"] == [
        {"order": {"greeting": "Thanks, Ada!"}}, {"order": {"greeting": "Thanks, Lin!"}}]
    assert [s["name"] for s in sites.submissions[-2:]] == ["Ada", "Lin"]
    assert len(fake_llm.requests_for(token)) == 2  # the first iteration's only
    with embedded.client() as client:
        raw = client.get(f"/v1/runs/{done.run_id}").json()["script_run"]
    assert [(b["steps_replayed"], b["llm_calls"]) for b in raw["blocks"]] == [(0, 2), (4, 0)]
    assert raw["blocks"][0]["script_id"] == raw["blocks"][1]["script_id"] == raw["script_id"]


def picked_order_workflow(token: str, pick: str, sites: SiteServer, whom: str,
                          **settings: Any) -> dict[str, Any]:
    """A text_prompt block `pick` (the fake's script `pick`) names the customer; an order block orders
    `whom` (a template)."""
    return {"title": f"Picked order {token}", "run_with": "code", **settings, "workflow_definition": {
        "parameters": [],
        "blocks": [{"block_type": "text_prompt", "label": "pick", "prompt": f"Who is next? ({pick})",
                    "json_schema": {"type": "object", "properties": {"name": {"type": "string"}}}},
                   {"block_type": "navigation", "label": "order", "url": sites.url(ORDER),
                    "navigation_goal": f"Order a large insured parcel {whom} ({token})"}]}}


def test_a_block_that_types_an_earlier_blocks_output_replays_with_this_runs_output(
        embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    """A text_prompt block (asked anew every run) names the customer, and the order block types that name:
    the recorded script holds a reference to the output, so the second run types the second answer."""
    pick = f"pick-{token[::-1]}"
    fake_llm.script(pick, [{"content": json.dumps({"name": name})} for name in ("Ada", "Grace")])
    fake_llm.script(token, ORDER_SCRIPT)  # the model types "Ada", the first run's answer
    definition = picked_order_workflow(token, pick, sites, "for {{ pick_output.name }}")

    async def scenario() -> tuple[Any, Any]:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        workflow = await skyvern.create_workflow(json_definition=definition)  # type: ignore[arg-type]
        runs = []
        for name in ("Ada", "Grace"):
            done = await skyvern.run_workflow(workflow.workflow_permanent_id, wait_for_completion=True,
                                              timeout=180)
            assert done.status == "completed", done.failure_reason
            assert done.output is not None and done.output["order"] == {"greeting": f"Thanks, {name}!"}
            assert sites.submissions[-1] == {"name": name, "size": "Large", "insured": "yes"}
            runs.append(done)
        return runs[0], runs[1]

    first, second = asyncio.run(scenario())
    assert len(fake_llm.requests_for(token)) == 2  # the recording's; the replay asked nothing
    assert len(fake_llm.requests_for(pick)) == 2
    assert second.script_run is not None and second.script_run.script_id == first.script_run.script_id
    with embedded.client() as client:
        raw = client.get(f"/v1/runs/{second.run_id}").json()["script_run"]
        assert (raw["steps_replayed"], raw["steps_healed"], raw["llm_calls"]) == (4, 0, 0)
        files = {f["path"]: f["content"]
                 for f in client.get(f"/v1/scripts/{raw['script_id']}").json()["files"]}
    script = json.loads(files["script.json"])
    assert script["steps"][0]["args"]["text"] == "{{ pick_output.name }}"
    assert script["output"] == {"greeting": "Thanks, {{ pick_output.name }}!"}
    assert "Ada" not in files["script.json"] and "pick_output_name" in files["main.py"]


def test_a_reference_this_runs_output_lacks_is_healed_and_never_typed(
        embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    """The second run's text_prompt answers another shape, so `{{ pick_output.name }}` has no value: the
    step is a miss healed by one call (the final output by another), the reference text is never typed,
    and the script keeps its reference, so a third run with a name replays it with no call."""
    pick = f"pick-{token[::-1]}"
    answers = ({"name": "Ada"}, {"customer": "Grace"}, {"name": "Lin"})
    fake_llm.script(pick, [{"content": json.dumps(answer)} for answer in answers])
    fake_llm.script(token, [*ORDER_SCRIPT,  # the recording; then the heal of the second run
                            [{"name": "input_text", "args": {"ref": {"role": "textbox", "name": "Name"},
                                                              "text": "Grace"}}],
                            [{"name": "complete", "args": {"output": {"greeting": "Thanks, Grace!"}}}]])

    async def scenario() -> list[Any]:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        workflow = await skyvern.create_workflow(json_definition=picked_order_workflow(  # type: ignore[arg-type]
            token, pick, sites, "for the customer {{ pick_output }} names"))
        return [await skyvern.run_workflow(workflow.workflow_permanent_id, wait_for_completion=True,
                                           timeout=180) for _ in answers]

    runs = asyncio.run(scenario())
    assert [run.status for run in runs] == ["completed"] * 3, [run.failure_reason for run in runs]
    assert [s["name"] for s in sites.submissions[-3:]] == ["Ada", "Grace", "Lin"]
    assert runs[1].output is not None and runs[1].output["order"] == {"greeting": "Thanks, Grace!"}
    requests = fake_llm.requests_for(token)
    assert len(requests) == 4  # two recording, two healing; the third run asked nothing
    assert "{{ pick_output.name }}, which this run has no value for" in last_user_text(requests[2])
    with embedded.client() as client:
        healed, third = (client.get(f"/v1/runs/{run.run_id}").json()["script_run"] for run in runs[1:])
    assert (healed["steps_replayed"], healed["steps_healed"], healed["llm_calls"]) == (3, 2, 2)
    assert (third["steps_replayed"], third["steps_healed"], third["llm_calls"]) == (4, 0, 0)
    recorded = runs[0].script_run
    assert recorded is not None  # no new version: the heal was for the second run's data only
    assert healed["script_revision_id"] == third["script_revision_id"] == recorded.script_revision_id


def test_without_ai_fallback_a_reference_to_a_null_output_fails_naming_it(
        embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    pick = f"pick-{token[::-1]}"
    fake_llm.script(pick, [{"content": json.dumps({"name": "Ada"})}, {"content": "null"}])
    fake_llm.script(token, ORDER_SCRIPT)

    async def scenario() -> list[Any]:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        workflow = await skyvern.create_workflow(json_definition=picked_order_workflow(  # type: ignore[arg-type]
            token, pick, sites, "for the customer {{ pick_output }} names", ai_fallback=False))
        return [await skyvern.run_workflow(workflow.workflow_permanent_id, wait_for_completion=True,
                                           timeout=180) for _ in range(2)]

    submitted = len(sites.submissions)
    first, second = asyncio.run(scenario())
    assert first.status == "completed" and second.status == "failed"
    assert second.failure_reason is not None
    assert ("Replay stopped at script step 1 (input_text textbox 'Name'): it refers to "
            "{{ pick_output.name }}, which this run has no value for") in second.failure_reason
    assert "ai_fallback is off" in second.failure_reason
    assert len(sites.submissions) == submitted + 1  # the first run's; the second typed and sent nothing
    assert len(fake_llm.requests_for(token)) == 2
