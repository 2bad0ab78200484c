"""Honest limits and rewrites (issue 17 item 4), through the official SDK and plain HTTP: a url whose
https:// was assumed says so in the failure reason and `errors`; a prompt or goal over
WAYFARER_MAX_PROMPT_CHARS is a 422 naming the field; artifact URIs name the store, not the server's
files."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from skyvern import Skyvern
from skyvern.client.errors import UnprocessableEntityError

from tests.e2e.flows import FORM_PATH, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.spec import assert_matches_spec
from tests.support.stack import Stack, running_stack

MAX_PROMPT_CHARS = 2000


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("capped")
    with running_stack(tmp, llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_MAX_PROMPT_CHARS": str(MAX_PROMPT_CHARS)}) as stack:
        yield stack


def test_a_url_without_a_scheme_says_https_was_assumed_when_the_run_fails(
    capped: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    fake_llm.script(token, form_script())
    bare = sites.url(FORM_PATH).removeprefix("http://")  # the test site speaks plain HTTP

    async def scenario() -> Any:
        skyvern = Skyvern(base_url=capped.base_url, api_key=capped.api_key)
        done = await skyvern.run_task(prompt=f"Sign ({token})", url=bare, wait_for_completion=True,
                                      timeout=120)
        return await skyvern.get_run(done.run_id)

    run = asyncio.run(scenario())
    assert run.status == "failed"
    note = (f"The url {bare!r} has no scheme, so https://{bare} was used (https:// is assumed, as Skyvern "
            "does); if the site serves plain HTTP, send the url with http://.")
    assert run.failure_reason.startswith(f"The start page https://{bare} could not be opened")
    assert run.failure_reason.endswith(note)
    assert {"error_code": "URL_SCHEME_ASSUMED", "reasoning": note, "error_type": "WARNING"} in run.errors


def test_prompts_and_goals_over_the_cap_are_refused_naming_the_field(
    capped: Stack, sites: SiteServer
) -> None:
    huge = "Sign the guest book. " * (MAX_PROMPT_CHARS // 10)

    async def scenario() -> None:
        skyvern = Skyvern(base_url=capped.base_url, api_key=capped.api_key)
        with pytest.raises(UnprocessableEntityError) as refused:
            await skyvern.run_task(prompt=huge, url=sites.url(FORM_PATH))
        assert refused.value.body["detail"] == (
            f"prompt is {len(huge):,} characters long; this server accepts at most {MAX_PROMPT_CHARS:,} "
            "(WAYFARER_MAX_PROMPT_CHARS).")

    asyncio.run(scenario())
    with capped.client() as client:
        legacy = client.post("/api/v1/tasks", json={"url": sites.url(FORM_PATH), "navigation_goal": "Sign.",
                                                    "data_extraction_goal": huge})
        assert legacy.status_code == 422 and legacy.json()["detail"].startswith("data_extraction_goal is ")
        fits = client.post("/v1/run/tasks", json={"prompt": huge[:MAX_PROMPT_CHARS],
                                                  "url": sites.url(FORM_PATH)})
        assert fits.status_code == 200, fits.text
        client.post(f"/v1/runs/{fits.json()['run_id']}/cancel")


def test_artifact_uris_name_the_store_not_the_servers_files(
    capped: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    fake_llm.script(token, form_script())

    async def scenario() -> list[Any]:
        skyvern = Skyvern(base_url=capped.base_url, api_key=capped.api_key)
        done = await skyvern.run_task(prompt=f"Sign ({token})", url=sites.url(FORM_PATH),
                                      wait_for_completion=True, timeout=120)
        assert done.status == "completed"
        return list(await skyvern.get_run_artifacts(done.run_id))

    artifacts = asyncio.run(scenario())
    assert artifacts and all(a.uri.startswith("local://o_") for a in artifacts)
    data_dir = capped.env["WAYFARER_DATA_DIR"]
    assert not any(data_dir in a.uri or "file:" in a.uri for a in artifacts)
    with capped.client() as client:
        run_id = artifacts[0].run_id
        assert_matches_spec("Artifact", client.get(f"/v1/runs/{run_id}/artifacts").json())
