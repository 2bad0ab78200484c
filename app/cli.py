"""The `wayfarer` command: run the server or a worker, manage the schema and API keys, submit runs."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.service import (
    DEFAULT_ORGANIZATION,
    create_api_key,
    create_organization,
    list_api_keys,
    revoke_api_key,
)
from app.db.engine import session_scope
from app.db.migrate import upgrade
from app.db.models import Organization
from app.platform.observability import configure_logging, serve_worker_metrics
from app.platform.settings import get_settings

FINAL_STATUSES = {"completed", "failed", "terminated", "timed_out", "canceled"}
DEFAULT_PORT = 8000


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wayfarer", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP API server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser("worker", help="run a Celery worker (needs WAYFARER_REDIS_URL)")
    worker.add_argument("--concurrency", type=int,
                        help="parallel runs (default: WAYFARER_MAX_CONCURRENT_RUNS)")
    worker.set_defaults(handler=_worker)

    migrate = commands.add_parser("migrate", help="upgrade the database to the newest schema")
    migrate.set_defaults(handler=_migrate)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(required=True, metavar="ACTION")
    create = keys.add_parser("create", help="create an API key and print it (shown only once)")
    create.add_argument("--org", default=DEFAULT_ORGANIZATION, help="organization name (created if new)")
    create.set_defaults(handler=_keys_create)
    keys.add_parser("list", help="list API keys").set_defaults(handler=_keys_list)
    revoke = keys.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_keys_revoke)

    commands.add_parser("version", help="print the version").set_defaults(handler=_version)

    run = commands.add_parser("run", help="submit a task through the HTTP API")
    run.add_argument("prompt")
    run.add_argument("--url", required=True, help="the page the browser starts on")
    run.add_argument("--schema", type=Path, help="JSON file: the data extraction schema for the output")
    run.add_argument("--max-steps", type=int)
    run.add_argument("--wait", action="store_true", help="show progress until the run ends, print its output")
    run.add_argument("--base-url", default=os.environ.get("WAYFARER_BASE_URL", f"http://127.0.0.1:{DEFAULT_PORT}"),
                     help="server address (env WAYFARER_BASE_URL)")
    run.add_argument("--api-key", default=os.environ.get("WAYFARER_API_KEY"), help="(env WAYFARER_API_KEY)")
    run.add_argument("--poll-interval", type=float, default=1.0, help=argparse.SUPPRESS)
    run.set_defaults(handler=_run)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    configure_logging(settings)
    # uvicorn stops gracefully on SIGTERM (requests in flight finish, then the lifespan hands back the
    # embedded runs) and then raises the signal again to die of it; ignoring that second one makes a
    # graceful stop exit 0. uvicorn installs its own handlers while it serves.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level=settings.log_level.lower(), log_config=None,
                timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds))
    return 0


def _worker(args: argparse.Namespace) -> int:
    from workers.tasks import run_worker

    settings = get_settings()
    if settings.embedded:
        return _fail("a worker needs WAYFARER_REDIS_URL (without it the server runs tasks itself)")
    configure_logging(settings, sys.stderr)  # the real stream: Celery swaps sys.stderr for a logger
    serve_worker_metrics(settings)
    run_worker(settings, args.concurrency)
    return 0


def _migrate(_args: argparse.Namespace) -> int:
    upgrade(get_settings().database_url)
    print("database is at the newest schema")
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    with _accounts_session() as session:
        organization = session.scalars(select(Organization).where(Organization.name == args.org)).first()
        if organization is None:
            organization = create_organization(session, args.org)
        key = create_api_key(session, organization.id)
    print(key)
    print(f"API key for organization {args.org!r} ({organization.id}); it is not shown again.",
          file=sys.stderr)
    return 0


def _keys_list(_args: argparse.Namespace) -> int:
    with _accounts_session() as session:
        rows = [(k.id, k.organization_id, f"{k.key_prefix}…", f"{k.created_at:%Y-%m-%d %H:%M:%S}",
                 "revoked" if k.revoked_at else "active") for k in list_api_keys(session, None)]
    _print_table(("ID", "ORGANIZATION", "KEY", "CREATED", "STATE"), rows)
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    with _accounts_session() as session:
        found = revoke_api_key(session, args.key_id)
    if not found:
        return _fail(f"no API key {args.key_id!r}")
    print(f"revoked {args.key_id}")
    return 0


def _version(_args: argparse.Namespace) -> int:
    print(f"wayfarer {package_version('wayfarer')}")
    return 0


def _run(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"prompt": args.prompt, "url": args.url}
    if args.schema:
        try:
            request["data_extraction_schema"] = json.loads(args.schema.read_text())
        except (OSError, ValueError) as exc:
            return _fail(f"--schema {args.schema}: {exc}")
    if args.max_steps is not None:
        request["max_steps"] = args.max_steps
    headers = {"x-api-key": args.api_key} if args.api_key else {}
    with httpx.Client(base_url=args.base_url, headers=headers, timeout=30) as client:
        try:
            created = _api(client, "POST", "/v1/run/tasks", json=request)
            if not args.wait:
                print(json.dumps(created, indent=2))
                return 0
            print(f"run {created['run_id']} {created['status']}", file=sys.stderr)
            run = _follow(client, str(created["run_id"]), args.poll_interval)
        except _ApiError as exc:
            return _fail(str(exc))
    print(json.dumps(run.get("output"), indent=2))
    if run["status"] != "completed":
        reason = run.get("failure_reason") or "no reason given"
        return _fail(f"run {run['run_id']} ended {run['status']}: {reason}")
    return 0


def _follow(client: httpx.Client, run_id: str, poll_interval: float) -> dict[str, Any]:
    """Poll the run until it ends, printing a line to stderr whenever its progress changes."""
    shown = ""
    while True:
        run = _api(client, "GET", f"/v1/runs/{run_id}")
        line = f"{run['status']} · step {run.get('step_count') or 0}"
        action = _last_action(client, run_id)
        if action:
            line += f" · {action}"
        if line != shown:
            print(line, file=sys.stderr)
            shown = line
        if run["status"] in FINAL_STATUSES:
            return run
        time.sleep(poll_interval)


def _last_action(client: httpx.Client, run_id: str) -> str | None:
    """The newest action in the run's timeline (steps with their actions as children), as one line."""
    response = client.get(f"/v1/runs/{run_id}/timeline")
    if response.status_code != 200:
        return None
    actions = [child["action"] for item in response.json() if item.get("type") == "step"
               for child in item.get("children") or [] if child.get("action")]
    if not actions:
        return None
    action = actions[-1]
    note = action.get("reasoning") or action.get("outcome") or ""
    line = f"{action['action_type']}{'' if action.get('succeeded', True) else ' (failed)'}"
    return f"{line}: {_shorten(note)}" if note else line


def _shorten(text: str, limit: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _ApiError(Exception):
    pass


def _api(client: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise _ApiError(f"cannot reach {client.base_url}: {exc}") from exc
    if response.status_code != 200:
        raise _ApiError(f"{method} {path} → {response.status_code}: {response.text}")
    return dict(response.json())


@contextmanager
def _accounts_session() -> Iterator[Session]:
    """A session on the configured database; the embedded SQLite one is migrated on first use."""
    url = get_settings().database_url
    if url.startswith("sqlite"):
        upgrade(url)
    with session_scope(url) as session:
        yield session


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _fail(message: str) -> int:
    print(f"wayfarer: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
