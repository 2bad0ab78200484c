"""`wayfarer run`, `wayfarer runs` and `wayfarer keys` against a real `wayfarer serve` (embedded), real
Chromium, fake LLM; and README's SDK example, run as pasted."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.platform.settings import Settings
from tests.e2e.flows import FORM_PATH, GREETING, form_script, stall_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack, running_stack
from tests.support.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.browser

WAYFARER = str(Path(sys.executable).with_name("wayfarer"))
SCHEMA = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}
PRICE = {"prompt": 2.5, "completion": 10.0}  # US dollars per million tokens




@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("cli"), llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_LLM_PRICES": json.dumps({"fake-model": PRICE})}) as running:
        yield running


def _client_env(stack: Stack, api_key: str | None = None) -> dict[str, str]:
    return {**stack.env, "WAYFARER_BASE_URL": stack.base_url, "WAYFARER_API_KEY": api_key or stack.api_key}


def wayfarer(stack: Stack, *args: str, api_key: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WAYFARER, *args], env=_client_env(stack, api_key), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, cwd=stack.log_dir)


def _token() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


def test_run_wait_shows_progress_and_prints_the_output(stack: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                        tmp_path: Path) -> None:
    token = _token()
    signed, report = form_script()
    fake_llm.script(token, [signed, [{"name": "wait", "args": {"seconds": 1}}], report])  # a poll sees it
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    result = wayfarer(stack, "run", f"Sign the guest book as Ada ({token})", "--url", sites.url(FORM_PATH),
                      "--schema", str(schema), "--max-steps", "5", "--wait", "--poll-interval", "0.2")
    assert result.returncode == 0, result.stderr + stack.logs()
    assert json.loads(result.stdout) == GREETING
    progress = result.stderr.splitlines()
    assert progress[0].startswith("run tsk_")
    assert progress[-2].startswith("completed · step ")
    assert any("· click" in line or "· input_text" in line for line in progress), progress

    run_id = progress[0].split()[1]
    with stack.client() as client:
        run = client.get(f"/v1/runs/{run_id}").json()
    assert run["run_request"]["data_extraction_schema"] == SCHEMA
    assert run["run_request"]["max_steps"] == 5
    # the last line: what the run cost, as get_run reports it
    prompt, completion = run["input_token_count"], run["output_token_count"]
    assert run["llm_call_count"] == 3 and prompt > 0 and completion > 0
    cost = (prompt * PRICE["prompt"] + completion * PRICE["completion"]) / 1e6
    assert run["total_cost"] == pytest.approx(cost)
    assert progress[-1] == (f"run {run_id} completed · 3 steps · 3 LLM calls · {prompt:,} prompt + "
                            f"{completion:,} completion tokens · ${run['total_cost']:.4f}")


def test_run_that_does_not_complete_exits_non_zero(stack: Stack, fake_llm: FakeLLM,
                                                   sites: SiteServer) -> None:
    token = _token()
    fake_llm.script(token, [[{"name": "terminate", "args": {"reason": "the form is closed"}}]])
    result = wayfarer(stack, "run", f"Sign the guest book ({token})", "--url", sites.url(FORM_PATH), "--wait",
                      "--poll-interval", "0.2")
    assert result.returncode == 1, result.stderr
    ended, totals = result.stderr.splitlines()[-2:]
    assert "terminated" in ended and "the form is closed" in ended
    assert " terminated · 1 step · 1 LLM call · " in totals and totals.endswith(tuple("0123456789"))


def test_a_refused_request_names_the_field_in_words(stack: Stack, sites: SiteServer) -> None:
    refused = wayfarer(stack, "run", "Sign", "--url", "ftp://example.com", "--max-steps", "0")
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("wayfarer: POST /v1/run/tasks → 422: url: must be an http:// or "
                                      "https:// URL; max_steps: Input should be greater than or equal to 1")


def test_run_without_wait_prints_the_created_run(stack: Stack, sites: SiteServer) -> None:
    result = wayfarer(stack, "run", f"Look around ({_token()})", "--url", sites.url(FORM_PATH))
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["run_id"].startswith("tsk_")
    assert created["status"] in {"created", "queued", "running"}
    stack.wait_final(created["run_id"])


def test_a_wrong_or_missing_key_names_where_the_key_goes(stack: Stack, sites: SiteServer) -> None:
    for command in (["run", "x", "--url", sites.url(FORM_PATH)], ["runs", "list"]):
        result = wayfarer(stack, *command, api_key="wf_not_a_key")
        assert result.returncode == 1
        assert "refused the API key (403)" in result.stderr
        assert "--api-key" in result.stderr and "WAYFARER_API_KEY" in result.stderr
        assert "wf_not_a_key" not in result.stderr
    keyless = {k: v for k, v in stack.env.items() if k != "WAYFARER_API_KEY"}
    result = subprocess.run([WAYFARER, "runs", "list", "--base-url", stack.base_url], env=keyless,
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "needs an API key and none was given" in result.stderr


def test_runs_list_get_cancel_and_artifacts(stack: Stack, fake_llm: FakeLLM, sites: SiteServer) -> None:
    token = _token()
    fake_llm.script(token, form_script())
    with webhook_receiver() as receiver:
        done = wayfarer(stack, "run", f"Sign ({token})", "--url", sites.url(FORM_PATH), "--wait",
                        "--webhook-url", receiver.url, "--poll-interval", "0.2")
        assert done.returncode == 0, done.stderr
        run_id = done.stderr.splitlines()[0].split()[1]
        (hook,) = receiver.wait_for(1)
        assert json.loads(hook.body)["run_id"] == run_id  # --webhook-url reached the server

    listed = json.loads(wayfarer(stack, "runs", "list", "--json", "--limit", "100").stdout)
    assert run_id in [r["run_id"] for r in listed]
    table = wayfarer(stack, "runs", "list", "--status", "completed").stdout.splitlines()
    assert table[0].split() == ["RUN", "STATUS", "CREATED", "TITLE"]
    assert any(line.startswith(f"{run_id}  completed") for line in table), table

    shown = wayfarer(stack, "runs", "get", run_id)
    assert shown.returncode == 0, shown.stderr
    assert f"run:       {run_id}" in shown.stdout and "status:    completed" in shown.stdout
    assert "summary:   Signed." in shown.stdout and "totals:    2 steps · 2 LLM calls · " in shown.stdout
    assert json.dumps(GREETING["greeting"]) in shown.stdout
    assert json.loads(wayfarer(stack, "runs", "get", run_id, "--json").stdout)["output"] == GREETING

    artifacts = json.loads(wayfarer(stack, "runs", "artifacts", run_id, "--json").stdout)
    assert {"recording", "llm_request"} <= {a["artifact_type"] for a in artifacts}
    recordings = wayfarer(stack, "runs", "artifacts", run_id, "--type", "recording").stdout.splitlines()
    assert recordings[0].split() == ["ARTIFACT", "TYPE", "BYTES", "LINK"] and len(recordings) == 2
    assert httpx.get(recordings[1].split()[-1], timeout=10).status_code == 200  # a link that works

    again = wayfarer(stack, "runs", "cancel", run_id)
    assert again.returncode == 1 and "400" in again.stderr and "completed" in again.stderr
    stalled = _token()
    fake_llm.script(stalled, stall_script())
    created = json.loads(wayfarer(stack, "run", f"Stall ({stalled})", "--url", sites.url(FORM_PATH)).stdout)
    canceled = wayfarer(stack, "runs", "cancel", created["run_id"], "--json")
    assert canceled.returncode == 0, canceled.stderr
    assert json.loads(canceled.stdout)["status"] == "canceled"
    missing = wayfarer(stack, "runs", "get", "tsk_404")
    assert missing.returncode == 1 and "404" in missing.stderr and "Traceback" not in missing.stderr


def test_runs_list_finds_paused_runs_and_stops_quietly_when_the_reader_goes(
        stack: Stack, fake_llm: FakeLLM, sites: SiteServer) -> None:
    token = _token()
    fake_llm.script(token, stall_script())
    created = wayfarer(stack, "run", f"Stall ({token})", "--url", sites.url(FORM_PATH))
    run_id = json.loads(created.stdout)["run_id"]
    with stack.client() as client:
        assert client.post(f"/v1/runs/{run_id}/pause", json={"reason": "checking"}).status_code == 200
        deadline = time.monotonic() + 60
        while _status(stack, run_id) != "paused":
            assert time.monotonic() < deadline, "the run did not pause"
            time.sleep(0.2)
        paused = wayfarer(stack, "runs", "list", "--status", "paused")
        assert paused.returncode == 0, paused.stderr
        assert any(line.startswith(f"{run_id}  paused") for line in paused.stdout.splitlines()), paused.stdout

        # `wayfarer runs list --json | head -1`: the reader is gone before the answer is written
        proc = subprocess.Popen([WAYFARER, "runs", "list", "--json"], env=_client_env(stack),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        errors = proc.stderr.read().decode()
        assert proc.wait(timeout=60) != 0 and "Traceback" not in errors and "Exception" not in errors, errors
        assert client.post(f"/v1/runs/{run_id}/cancel").status_code == 200


def _wait_until_running(proc: subprocess.Popen[str]) -> str:
    """The run id, once the CLI's progress shows the run running (a step is under way)."""
    assert proc.stderr is not None
    run_id = proc.stderr.readline().split()[1]
    while not proc.stderr.readline().startswith("running"):
        assert proc.poll() is None, "the CLI ended early"
    return run_id


def _status(stack: Stack, run_id: str) -> str:
    with stack.client() as client:
        return str(client.get(f"/v1/runs/{run_id}").json()["status"])


def _interruptible() -> None:
    """In the child: Ctrl-C as at a shell. A test run started in the background (as CI may) ignores
    SIGINT, and an ignored signal stays ignored across exec, so the CLI would never see it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_without_a_terminal_says_the_run_keeps_running(stack: Stack, fake_llm: FakeLLM,
                                                               sites: SiteServer) -> None:
    token = _token()
    fake_llm.script(token, stall_script())
    proc = subprocess.Popen([WAYFARER, "run", f"Stall ({token})", "--url", sites.url(FORM_PATH), "--wait",
                             "--poll-interval", "0.2"], env=_client_env(stack), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_interruptible)
    run_id = _wait_until_running(proc)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in rest
    assert f"run {run_id} keeps running" in rest and f"wayfarer runs cancel {run_id}" in rest
    assert _status(stack, run_id) == "running"
    assert wayfarer(stack, "runs", "cancel", run_id).returncode == 0


def test_ctrl_c_at_a_terminal_asks_and_cancels(stack: Stack, fake_llm: FakeLLM, sites: SiteServer) -> None:
    token = _token()
    fake_llm.script(token, stall_script())
    terminal, their_end = pty.openpty()
    proc = subprocess.Popen([WAYFARER, "run", f"Stall ({token})", "--url", sites.url(FORM_PATH), "--wait",
                             "--poll-interval", "0.2"], env=_client_env(stack), stdin=their_end,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_interruptible)
    os.close(their_end)
    try:
        run_id = _wait_until_running(proc)
        proc.send_signal(signal.SIGINT)
        os.write(terminal, b"y\n")
        _, rest = proc.communicate(timeout=60)
    finally:
        os.close(terminal)
    assert f"cancel run {run_id}? [y/N]" in rest
    assert proc.returncode == 1 and f"run {run_id} ended canceled" in rest
    assert _status(stack, run_id) == "canceled"


def test_help_shows_defaults() -> None:
    for command, default in ((["serve"], "(default: 8000)"), (["runs", "list"], "(default: 20)"),
                             (["run"], "(default: http://127.0.0.1:8000)"),
                             (["keys", "create"], "(default: default)")):
        shown = subprocess.run([WAYFARER, *command, "--help"], capture_output=True, text=True, timeout=60,
                               env={k: v for k, v in os.environ.items() if not k.startswith("WAYFARER_")})
        assert shown.returncode == 0 and default in " ".join(shown.stdout.split()), shown.stdout


def test_the_readme_sdk_example_runs_as_pasted(stack: Stack, fake_llm: FakeLLM, sites: SiteServer) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Using the Skyvern Python SDK"):]
    example = section[section.index("```python\n") + 10:section.index("\n```", section.index("```python"))]
    example = (example.replace("http://127.0.0.1:8000", stack.base_url)
               .replace("YOUR_WAYFARER_KEY", stack.api_key)
               .replace("https://example.com/pricing", sites.url("/pricing.html")))
    prompt = "Find the price of the cheapest plan"
    assert prompt in example
    fake_llm.script(prompt, [[{"name": "complete", "args": {"output": {"price": "$9 / month"},
                                                            "summary": "Starter is the cheapest."}}]])
    result = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "completed {'price': '$9 / month'}"


def test_serve_without_any_key_says_how_to_make_one(tmp_path: Path) -> None:
    with running_stack(tmp_path, llm_base_url=None, extra_env={"WAYFARER_API_KEY": ""}) as keyless:
        log = (keyless.log_dir / "api.log").read_text()
        assert "No API key exists yet" in log and f"{WAYFARER} keys create" in log


def test_keys_made_by_the_cli_open_the_api_until_revoked(stack: Stack) -> None:
    created = wayfarer(stack, "keys", "create", "--org", "cli-team")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert httpx.get(f"{stack.base_url}/v1/runs", headers={"x-api-key": key}, timeout=10).status_code == 200

    listing = wayfarer(stack, "keys", "list").stdout.splitlines()
    (key_id,) = [line.split()[0] for line in listing if key[:12] in line]
    assert wayfarer(stack, "keys", "revoke", key_id).returncode == 0
    # the server remembers a verified key for WAYFARER_API_KEY_CACHE_SECONDS; the CLI is another process
    deadline = time.monotonic() + Settings().api_key_cache_seconds + 5
    while (status := httpx.get(f"{stack.base_url}/v1/runs", headers={"x-api-key": key},
                               timeout=10).status_code) == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == 403
