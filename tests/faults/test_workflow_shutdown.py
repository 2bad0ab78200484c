"""SIGTERM to an embedded server running a workflow: a task run would be handed back and run again, but
a workflow run past its first block ends `failed` naming the block, so no block (a send_email, an
http_request) ever runs twice."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.db.engine import session_scope
from app.db.models import Run, WorkflowRunBlock
from tests.e2e.flows import FORM_PATH
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack, running_stack

GRACE_SECONDS = 2


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("workflow-shutdown"), llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)}) as stack:
        yield stack


def test_a_workflow_run_is_not_handed_back_but_fails_naming_its_block(
        embedded_server: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    stack = embedded_server
    fake_llm.script(token, [[{"name": "wait", "args": {"seconds": 1}}]] * 60)
    blocks = [{"block_type": "goto_url", "label": "open", "url": sites.url(FORM_PATH)},
              {"block_type": "navigation", "label": "linger", "navigation_goal": f"Wait ({token})"}]
    definition: dict[str, Any] = {"title": f"Shutdown {token}",
                                  "workflow_definition": {"parameters": [], "blocks": blocks}}
    with stack.client() as client:
        wpid = client.post("/v1/agents", json=definition).json()["workflow_permanent_id"]
        run_id = client.post("/v1/run/agents", json={"agent_id": wpid}).json()["run_id"]
        deadline = time.monotonic() + 120
        while client.get(f"/v1/runs/{run_id}").json()["step_count"] < 1:
            assert time.monotonic() < deadline, stack.logs()
            time.sleep(0.2)
    proc = stack.processes.pop("api")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=GRACE_SECONDS + 30) == 0, stack.logs()

    database_url = f"sqlite:///{stack.env['WAYFARER_DATA_DIR']}/wayfarer.db"
    with session_scope(database_url) as s:
        run = s.get(Run, run_id)
        assert run is not None and run.status == "failed", stack.logs()
        assert run.failure_reason is not None
        assert "shut down during block 'linger'" in run.failure_reason
        assert "not restarted" in run.failure_reason
        statuses = {row.label: row.status for row in s.query(WorkflowRunBlock).filter_by(run_id=run_id)}
    assert statuses == {"open": "completed", "linger": "canceled"}
