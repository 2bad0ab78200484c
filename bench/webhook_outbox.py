"""Webhook delivery through the outbox: how long from a run's final status (committed) to its webhook
arriving at a receiver, with every receiver answering, and again while some receivers never answer
(each such send holds one of the deliverer's SENDERS threads until WAYFARER_WEBHOOK_TIMEOUT_SECONDS).

In one process: a SQLite (or, with --postgres, a throwaway PostgreSQL) database migrated to head, one
`Deliverer` (app/webhooks/deliverer.py) as the embedded server and each worker run it, receivers on
127.0.0.1. Runs are ended through `lifecycle.finish`, as the runner ends them, and the deliverer is
woken as the runner's on_final wakes it; the baseline is the same latency with the deliverer only
polling (not woken).

    .venv/bin/python bench/webhook_outbox.py [--runs 60] [--stuck 5] [--postgres]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/webhook_outbox.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.accounts.service import create_organization
from app.db.engine import session_scope
from app.db.migrate import upgrade
from app.db.models import Run, utcnow
from app.platform.security import encrypt
from app.platform.settings import Settings
from app.runs import ids, lifecycle
from app.runs.lifecycle import RunStatus
from app.webhooks.deliverer import SENDERS, Deliverer
from bench.common import Spread, machine
from tests.support.services import throwaway_postgres

TIMEOUT_SECONDS = 5.0


@contextmanager
def receiver(answer: bool) -> Iterator[tuple[str, dict[str, float]]]:
    """A receiver recording each run id's arrival time; answer=False holds every request open."""
    arrived: dict[str, float] = {}
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived.setdefault(body.split(b'"run_id":"', 1)[1].split(b'"', 1)[0].decode(), time.monotonic())
            if not answer:
                release.wait(TIMEOUT_SECONDS * 2)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", arrived
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def _new_run(settings: Settings, organization_id: str, url: str) -> str:
    run_id = ids.new_id(ids.TASK)
    now = utcnow()
    with session_scope(settings.database_url) as s:
        s.add(Run(id=run_id, organization_id=organization_id, run_type="task_v1", engine="skyvern-1.0",
                  status=RunStatus.queued.value, prompt="bench", run_request={}, max_steps=1,
                  webhook_url=url, webhook_key_encrypted=encrypt(settings.resolved_secret_key(), "wf_bench"),
                  errors=[], step_count=0, created_at=now, modified_at=now, queued_at=now))
    with session_scope(settings.database_url) as s:
        lifecycle.claim(s, run_id, "bench")
    return run_id


def _end(settings: Settings, run_id: str) -> float:
    with session_scope(settings.database_url) as s:
        lifecycle.finish(s, run_id, RunStatus.completed, output={"ok": True})
    return time.monotonic()


def measure(settings: Settings, organization_id: str, runs: int, stuck: int, wake: bool) -> Spread:
    """Milliseconds from each answered run's final commit to its webhook's arrival."""
    deliverer = Deliverer(settings).start()
    try:
        with receiver(answer=True) as (live_url, arrived), receiver(answer=False) as (dead_url, _):
            for _ in range(stuck):
                _end(settings, _new_run(settings, organization_id, dead_url))
            deliverer.wake()
            ended: dict[str, float] = {}
            for _ in range(runs):
                run_id = _new_run(settings, organization_id, live_url)
                ended[run_id] = _end(settings, run_id)
                if wake:
                    deliverer.wake()
                time.sleep(0.02)  # runs end one after another, as they do
            deadline = time.monotonic() + 60
            while len(arrived) < runs and time.monotonic() < deadline:
                time.sleep(0.01)
            return Spread.of((arrived[r] - ended[r]) * 1000 for r in ended if r in arrived)
    finally:
        deliverer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--stuck", type=int, default=5, help=f"receivers that never answer (< {SENDERS})")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            (throwaway_postgres() if args.postgres else _nothing()) as pg_url:
        settings = Settings(_env_file=None, data_dir=Path(tmp),  # type: ignore[call-arg]
                            database_url=pg_url or f"sqlite:///{Path(tmp) / 'wayfarer.db'}",
                            secret_key=uuid.uuid4().hex, webhook_timeout_seconds=TIMEOUT_SECONDS,
                            llm_base_url="http://127.0.0.1:9/v1")
        upgrade(settings.database_url)
        with session_scope(settings.database_url) as s:
            organization_id = create_organization(s, "bench").id
        print(f"{machine()}; database {'PostgreSQL' if args.postgres else 'SQLite'}; {args.runs} runs")
        rows = [("polling only (baseline)", False, 0), ("woken at the end", True, 0),
                (f"woken, {args.stuck} receivers not answering", True, args.stuck)]
        for label, wake, stuck in rows:
            spread = measure(settings, organization_id, args.runs, stuck, wake)
            print(f"{label:<44} final status -> webhook arrived: median {spread.median:7.1f} ms, "
                  f"p95 {spread.p95:7.1f} ms, max {spread.high:7.1f} ms ({spread.count}/{args.runs} arrived)")


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
