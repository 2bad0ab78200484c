"""`wayfarer run` and `wayfarer runs`: a client of the HTTP API (any server; no database access)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from app.cli.common import DEFAULT_PORT, CommandFailed, add_command, fail, note, print_table

FINAL_STATUSES = {"completed", "failed", "terminated", "timed_out", "canceled"}
STATUSES = ("created", "queued", "running", "paused", *sorted(FINAL_STATUSES))


def add_commands(commands: Any) -> None:
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--base-url", help="server address (env WAYFARER_BASE_URL)",
                        default=os.environ.get("WAYFARER_BASE_URL", f"http://127.0.0.1:{DEFAULT_PORT}"))
    server.add_argument("--api-key", help="API key sent as x-api-key (default: env WAYFARER_API_KEY)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print the API's JSON answer")

    run = add_command(commands, "run", "submit a task through the HTTP API", parents=[server])
    run.add_argument("prompt", help="what the agent is to do")
    run.add_argument("--url", required=True, help="the page the browser starts on")
    run.add_argument("--schema", type=Path, help="JSON file: the data extraction schema for the output")
    run.add_argument("--max-steps", type=int,
                     help="step limit (unset: the server's WAYFARER_DEFAULT_MAX_STEPS)")
    run.add_argument("--webhook-url", help="the server POSTs the finished run here, signed")
    run.add_argument("--wait", action="store_true",
                     help="show progress until the run ends, print its output; Ctrl-C offers to cancel it")
    run.add_argument("--poll-interval", type=float, default=1.0, help=argparse.SUPPRESS)
    run.set_defaults(handler=_run)

    runs = add_command(commands, "runs", "list, show and cancel runs; list their artifacts")
    actions = runs.add_subparsers(required=True, metavar="ACTION")
    listing = add_command(actions, "list", "the newest runs first", parents=[server, as_json])
    listing.add_argument("--status", action="append", choices=STATUSES, help="only runs in this status "
                         "(repeat for several)")
    listing.add_argument("--limit", type=int, default=20, help="how many runs, at most 100")
    listing.add_argument("--page", type=int, default=1, help="page of --limit runs")
    listing.set_defaults(handler=_runs_list)
    for name, description, handler in (
            ("get", "one run: status, output, failure reason, links", _runs_get),
            ("cancel", "cancel a run that has not ended", _runs_cancel),
            ("artifacts", "a run's screenshots, recording, downloads and LLM records, with links",
             _artifacts)):
        action = add_command(actions, name, description, parents=[server, as_json])
        action.add_argument("run_id", help="the run's id (tsk_…, wr_…)")
        action.set_defaults(handler=handler)
        if name == "artifacts":
            action.add_argument("--type", dest="artifact_type", action="append",
                                help="only artifacts of this type, e.g. recording (repeat for several)")


class _Api:
    def __init__(self, args: argparse.Namespace) -> None:
        self.base_url = args.base_url
        self.api_key = args.api_key or os.environ.get("WAYFARER_API_KEY")
        headers = {"x-api-key": self.api_key} if self.api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def __enter__(self) -> _Api:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CommandFailed(f"cannot reach the server at {self.base_url} ({exc}): is `wayfarer serve` "
                                "running there? Set --base-url or WAYFARER_BASE_URL.") from None
        if response.status_code == 403:
            given = "refused the API key" if self.api_key else "needs an API key and none was given"
            raise CommandFailed(f"the server at {self.base_url} {given} (403). Pass a valid key with "
                                "--api-key or WAYFARER_API_KEY (`wayfarer keys create` on the server makes "
                                "one).")
        if response.is_error:
            raise CommandFailed(f"{method} {path} → {response.status_code}: {_detail(response)}")
        return response.json() if response.content else None


def _detail(response: httpx.Response) -> str:
    """The answer's `detail`; a validation error's list as `field: message` (e.g. `url: must be ...`)."""
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text
    if isinstance(detail, list) and all(isinstance(item, dict) and "msg" in item for item in detail):
        return "; ".join(".".join(str(part) for part in item.get("loc", ())[1:]) + ": "
                         + str(item["msg"]).removeprefix("Value error, ") for item in detail)
    return str(detail)


def _run(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"prompt": args.prompt, "url": args.url}
    if args.schema:
        try:
            request["data_extraction_schema"] = json.loads(args.schema.read_text())
        except (OSError, ValueError) as exc:
            return fail(f"--schema {args.schema}: {exc}")
    if args.max_steps is not None:
        request["max_steps"] = args.max_steps
    if args.webhook_url:
        request["webhook_url"] = args.webhook_url
    with _Api(args) as api:
        created = api.call("POST", "/v1/run/tasks", json=request)
        if not args.wait:
            print(json.dumps(created, indent=2))
            return 0
        run_id = str(created["run_id"])
        note(f"run {run_id} {created['status']}")
        try:
            run = _follow(api, run_id, args.poll_interval)
        except KeyboardInterrupt:
            return _interrupted(api, run_id, args.poll_interval)
    return _report(run)


def _report(run: dict[str, Any]) -> int:
    """The output on stdout; on stderr the run's totals as the last line (after the reason it failed)."""
    print(json.dumps(run.get("output"), indent=2))
    if run["status"] != "completed":
        reason = run.get("failure_reason") or "no reason given"
        code = fail(f"run {run['run_id']} ended {run['status']}: {reason}")
    else:
        code = 0
    note(f"run {run['run_id']} {run['status']} · {_totals(run)}")
    return code


def _totals(run: dict[str, Any]) -> str:
    """Steps, LLM calls, tokens and the estimated cost (when the model has a price)."""
    steps = run.get("step_count") or 0
    calls = run.get("llm_call_count") or 0
    line = (f"{steps} step{'' if steps == 1 else 's'} · {calls} LLM call{'' if calls == 1 else 's'} · "
            f"{run.get('input_token_count') or 0:,} prompt + {run.get('output_token_count') or 0:,} "
            "completion tokens")
    cost = run.get("total_cost")
    return line + (f" · ${cost:.4f}" if cost is not None else " · cost unknown (no price for the model)")


def _interrupted(api: _Api, run_id: str, poll_interval: float) -> int:
    """Ctrl-C while waiting: the run goes on on the server unless the user says to cancel it."""
    keeps = f"run {run_id} keeps running on the server: `wayfarer runs get {run_id}` shows it"
    if not sys.stdin.isatty():
        note(f"\n{keeps}; `wayfarer runs cancel {run_id}` cancels it.")
        return 130
    sys.stderr.write(f"\ncancel run {run_id}? [y/N] ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        note(f"{keeps}.")
        return 130
    api.call("POST", f"/v1/runs/{run_id}/cancel")
    return _report(_follow(api, run_id, poll_interval))


def _follow(api: _Api, run_id: str, poll_interval: float) -> dict[str, Any]:
    """Poll the run until it ends, printing a line to stderr whenever its progress changes."""
    shown = ""
    while True:
        run: dict[str, Any] = api.call("GET", f"/v1/runs/{run_id}")
        line = f"{run['status']} · step {run.get('step_count') or 0}"
        action = _last_action(api, run_id)
        if action:
            line += f" · {action}"
        if line != shown:
            note(line)
            shown = line
        if run["status"] in FINAL_STATUSES:
            return run
        time.sleep(poll_interval)


def _last_action(api: _Api, run_id: str) -> str | None:
    """The newest action in the run's timeline (the actions of its task block), as one line."""
    try:
        timeline = api.call("GET", f"/v1/runs/{run_id}/timeline")
    except CommandFailed:
        return None
    actions = [action for entry in timeline if entry.get("type") == "block"
               for action in (entry.get("block") or {}).get("actions") or []]
    if not actions:
        return None
    action = actions[-1]
    note_text = action.get("reasoning") or action.get("description") or ""
    line = f"{action['action_type']}{' (failed)' if action.get('status') == 'failed' else ''}"
    return f"{line}: {_shorten(note_text)}" if note_text else line


def _shorten(text: str, limit: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _runs_list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"page": args.page, "page_size": args.limit}
    if args.status:
        params["status"] = args.status
    with _Api(args) as api:
        runs = api.call("GET", "/v1/runs", params=params)
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    print_table(("RUN", "STATUS", "CREATED", "TITLE"),
                [(r["run_id"], r["status"], _when(r.get("created_at")), _shorten(r.get("title") or "", 60))
                 for r in runs])
    return 0


def _runs_get(args: argparse.Namespace) -> int:
    with _Api(args) as api:
        run = api.call("GET", f"/v1/runs/{args.run_id}")
    _show_run(run, args.json)
    return 0


def _runs_cancel(args: argparse.Namespace) -> int:
    with _Api(args) as api:
        api.call("POST", f"/v1/runs/{args.run_id}/cancel")
        run = api.call("GET", f"/v1/runs/{args.run_id}")
    _show_run(run, args.json)
    return 0


def _show_run(run: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(run, indent=2))
        return
    request = run.get("run_request") or {}
    fields = [("run", run["run_id"]), ("status", run["status"]), ("created", _when(run.get("created_at"))),
              ("finished", _when(run.get("finished_at"))), ("steps", run.get("step_count")),
              ("url", request.get("url")), ("prompt", _shorten(request.get("prompt") or "")),
              ("failure", run.get("failure_reason")), ("summary", run.get("summary")),
              ("totals", _totals(run)), ("recording", run.get("recording_url")),
              ("app", run.get("app_url"))]
    for name, value in fields:
        if value not in (None, ""):
            print(f"{name + ':':<11}{value}")
    if run.get("output") is not None:
        print(f"output:\n{json.dumps(run['output'], indent=2)}")


def _artifacts(args: argparse.Namespace) -> int:
    params = {"artifact_type": args.artifact_type} if args.artifact_type else {}
    with _Api(args) as api:
        artifacts = api.call("GET", f"/v1/runs/{args.run_id}/artifacts", params=params)
    if args.json:
        print(json.dumps(artifacts, indent=2))
        return 0
    print_table(("ARTIFACT", "TYPE", "BYTES", "LINK"),
                [(a["artifact_id"], a["artifact_type"], a.get("file_size") or "", a.get("signed_url") or "")
                 for a in artifacts])
    return 0


def _when(moment: str | None) -> str:
    return (moment or "").replace("T", " ")[:19]
