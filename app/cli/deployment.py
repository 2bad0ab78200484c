"""The commands that run or administer a deployment: serve, worker, migrate, keys, secret. They read the
settings and the database (never creating one, except serve and migrate)."""

from __future__ import annotations

import argparse
import getpass
import logging
import math
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.service import (
    DEFAULT_ORGANIZATION,
    create_api_key,
    create_organization,
    list_api_keys,
    revoke_api_key,
)
from app.cli.common import DEFAULT_PORT, add_command, fail, note, print_table
from app.db.engine import session_scope
from app.db.migrate import describe, prepare_for_serving, require_current_schema, upgrade
from app.db.models import Organization
from app.platform.observability import configure_logging, serve_worker_metrics
from app.platform.public_url import announce_serve_url, describe_links, require_public_base_url
from app.platform.readiness import readiness
from app.platform.secret_key import SecretKeyRefused, check_secret_key, rotate
from app.platform.settings import Settings, get_settings

MIN_SECRET_KEY_LENGTH = 16
log = logging.getLogger("wayfarer.cli")


def add_commands(commands: Any) -> None:
    serve = add_command(commands, "serve", "run the HTTP API server (and, without WAYFARER_REDIS_URL, the "
                                           "runs too)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(handler=_serve)

    worker = add_command(commands, "worker", "run a Celery worker (needs WAYFARER_REDIS_URL and "
                                             "WAYFARER_SECRET_KEY)")
    worker.add_argument("--concurrency", type=int, help="parallel runs (unset: WAYFARER_MAX_CONCURRENT_RUNS)")
    worker.set_defaults(handler=_worker)

    health = add_command(commands, "health", "check that the database and the queue answer (and, with "
                                             "--browser, that Chromium launches); exit 1 naming what fails")
    health.add_argument("--browser", action="store_true", help="also launch Chromium (a worker's check)")
    health.set_defaults(handler=_health)

    add_command(commands, "migrate", "create or upgrade the database to the newest schema").set_defaults(
        handler=_migrate)

    keys = add_command(commands, "keys", "manage API keys").add_subparsers(required=True, metavar="ACTION")
    create = add_command(keys, "create", "create an API key and print it (shown only once)")
    create.add_argument("--org", default=DEFAULT_ORGANIZATION, help="organization name (created if new)")
    create.set_defaults(handler=_keys_create)
    add_command(keys, "list", "list API keys").set_defaults(handler=_keys_list)
    revoke = add_command(keys, "revoke", "revoke an API key")
    revoke.add_argument("key_id", help="the key's id, as `keys list` shows it")
    revoke.set_defaults(handler=_keys_revoke)

    secret = add_command(commands, "secret", "the secret key").add_subparsers(required=True, metavar="ACTION")
    add_command(secret, "rotate", "re-encrypt every stored secret with a new key read from stdin; stop every "
                                  "API and worker process first, restart them with the new key after",
                ).set_defaults(handler=_secret_rotate)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    announce_serve_url(args.host, args.port)
    settings = get_settings()
    require_public_base_url(settings)
    prepare_for_serving(settings.database_url)
    check_secret_key(settings.database_url, settings.resolved_secret_key(), settings.secret_key_source())
    if not settings.api_key:
        _say_how_to_get_a_key(settings.database_url)
    configure_logging(settings)
    log.info(describe_links(settings))
    # uvicorn stops gracefully on SIGTERM (requests in flight finish, then the lifespan hands back the
    # embedded runs) and then raises the signal again to die of it; ignoring that second one makes a
    # graceful stop exit 0. uvicorn installs its own handlers while it serves.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level=settings.log_level.lower(), log_config=None,
                proxy_headers=True, forwarded_allow_ips=settings.forwarded_allow_ips,
                timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds))
    return 0


def _say_how_to_get_a_key(database_url: str) -> None:
    with session_scope(database_url) as session:
        if any(key.revoked_at is None for key in list_api_keys(session, None)):
            return
    note(f"No API key exists yet, so every request will get 403. Create one with:\n"
         f"  cd {Path.cwd()} && {sys.argv[0]} keys create\n"
         "or set WAYFARER_API_KEY before starting the server.")


def _worker(args: argparse.Namespace) -> int:
    from workers.tasks import BrowserUnavailable, run_worker

    settings = get_settings()
    if settings.embedded:
        return fail("a worker needs WAYFARER_REDIS_URL (without it the server runs tasks itself)")
    if not settings.secret_key:
        return fail("a worker needs WAYFARER_SECRET_KEY, set to the API's: it opens the secrets the API "
                    "stored (webhook signing keys, credentials, browser profiles)")
    require_public_base_url(settings)
    require_current_schema(settings.database_url)
    check_secret_key(settings.database_url, settings.secret_key, settings.secret_key_source())
    configure_logging(settings, sys.stderr)  # the real stream: Celery swaps sys.stderr for a logger
    log.info(describe_links(settings))
    serve_worker_metrics(settings)
    try:
        run_worker(settings, args.concurrency)
    except BrowserUnavailable as exc:
        log.error("%s. This worker takes no runs: install Chromium (apt-get install chromium) or fix "
                  "WAYFARER_CHROMIUM_PATH / WAYFARER_CHROMIUM_ARGS.", exc)
        return 1
    return 0


def _health(args: argparse.Namespace) -> int:
    """The worker container's healthcheck (`--browser`); without it, what GET /readyz checks."""
    settings = get_settings()
    problems = [problem for problem in readiness(settings).values() if problem]
    if args.browser:
        import asyncio

        from workers.tasks import BrowserUnavailable, probe_browser

        try:
            asyncio.run(probe_browser(settings))
        except BrowserUnavailable as exc:
            problems.append(str(exc))
    for problem in problems:
        fail(problem)
    if not problems:
        print("ok")
    return 1 if problems else 0


def _migrate(_args: argparse.Namespace) -> int:
    settings = get_settings()
    upgrade(settings.database_url)
    print(f"the database {describe(settings.database_url)} is at the newest schema")
    _record_secret_key(settings)
    return 0


def _record_secret_key(settings: Settings) -> None:
    """migrate records the key's fingerprint when it has a key without making one up: a migrate run
    elsewhere than the servers must not record a key generated for the occasion."""
    if not (settings.secret_key or settings.secret_key_file.is_file()):
        note("no WAYFARER_SECRET_KEY: the first `wayfarer serve` records the secret key's fingerprint")
        return
    try:
        check_secret_key(settings.database_url, settings.resolved_secret_key(), settings.secret_key_source())
    except SecretKeyRefused as exc:  # the schema is upgraded all the same: the key is for serve and worker
        fail(f"warning: {exc}")


def _keys_create(args: argparse.Namespace) -> int:
    with _accounts_session() as session:
        organization = session.scalars(select(Organization).where(Organization.name == args.org)).first()
        if organization is None:
            organization = create_organization(session, args.org)
        key = create_api_key(session, organization.id)
    print(key)
    note(f"API key for organization {args.org!r} ({organization.id}); it is not shown again.")
    return 0


def _keys_list(_args: argparse.Namespace) -> int:
    with _accounts_session() as session:
        rows = [(k.id, k.organization_id, f"{k.key_prefix}…", f"{k.created_at:%Y-%m-%d %H:%M:%S}",
                 "revoked" if k.revoked_at else "active") for k in list_api_keys(session, None)]
    print_table(("ID", "ORGANIZATION", "KEY", "CREATED", "STATE"), rows)
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    with _accounts_session() as session:
        found = revoke_api_key(session, args.key_id)
    if not found:
        return fail(f"no API key {args.key_id!r}")
    print(f"revoked {args.key_id}")
    return 0


def _secret_rotate(_args: argparse.Namespace) -> int:
    settings = get_settings()
    require_current_schema(settings.database_url)
    if not (settings.secret_key or settings.secret_key_file.is_file()):
        return fail("no secret key to rotate from: set WAYFARER_SECRET_KEY to the key in use")
    old_key, source = settings.resolved_secret_key(), settings.secret_key_source()
    new_key = _read_new_key()
    if len(new_key) < MIN_SECRET_KEY_LENGTH:
        return fail(f"the new key must have at least {MIN_SECRET_KEY_LENGTH} characters; e.g. "
                     "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
    if new_key == old_key:
        return fail("the new key is the key in use")
    note(f"using the database {describe(settings.database_url)}")
    counts = rotate(settings.database_url, old_key, new_key, source)
    for column, count in counts.items():
        print(f"{column}: {count} re-encrypted")
    if settings.secret_key:
        note("Now start every API and worker process with the new WAYFARER_SECRET_KEY.")
    else:
        _write_private(settings.secret_key_file, new_key)
        note(f"The new key replaced the one in {settings.secret_key_file.resolve()}.")
    return 0


def _read_new_key() -> str:
    """From the terminal without echo (asked twice), else the whole of stdin: never on the command line,
    where other users' `ps` would see it."""
    if not sys.stdin.isatty():
        return sys.stdin.read().strip()
    first = getpass.getpass("new secret key: ")
    if getpass.getpass("the same again: ") != first:
        raise KeyboardInterrupt  # nothing was changed
    return first.strip()


def _write_private(path: Path, text: str) -> None:
    temporary = path.with_suffix(".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(temporary, path)


@contextmanager
def _accounts_session() -> Iterator[Session]:
    """A session on the configured database, which must exist and be current: only `serve` and
    `migrate` make one (a typo in WAYFARER_DATA_DIR must not yield an empty database and a useless key)."""
    url = get_settings().database_url
    require_current_schema(url)
    note(f"using the database {describe(url)}")
    with session_scope(url) as session:
        yield session
