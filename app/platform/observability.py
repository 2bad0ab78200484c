"""Operations: one-line JSON (or text) logs carrying the run's context, and Prometheus metrics.

Counters and histograms live in the process that does the work: the API process in embedded mode,
each `wayfarer worker` with Celery (served on WAYFARER_WORKER_METRICS_PORT). Run counts by status and
the queue depth are read from the database when /metrics is scraped, so any API process reports them.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.db.engine import session_scope
from app.db.models import Run
from app.platform.settings import Settings
from app.runs.lifecycle import RunStatus

_log = logging.getLogger(__name__)

# --- log context: set by the runner, read by every log line of the run's task -----------------

_RUN_ID: ContextVar[str | None] = ContextVar("wayfarer_run_id", default=None)
_ORGANIZATION_ID: ContextVar[str | None] = ContextVar("wayfarer_organization_id", default=None)
_STEP: ContextVar[int | None] = ContextVar("wayfarer_step", default=None)
CONTEXT_FIELDS = ("run_id", "step", "organization_id")


def bind_run(run_id: str, organization_id: str | None) -> None:
    """Tag the current task's (and its children's) log lines with the run."""
    _RUN_ID.set(run_id)
    _ORGANIZATION_ID.set(organization_id)
    _STEP.set(None)


def bind_step(index: int) -> None:
    _STEP.set(index)


class _RunContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (("run_id", _RUN_ID), ("step", _STEP), ("organization_id", _ORGANIZATION_ID)):
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


class _Redacting(logging.Formatter):
    """Replaces every configured secret's value, wherever it appears in a rendered line."""

    def __init__(self, secrets: list[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(_Redacting):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(line, ensure_ascii=False, default=str))


class _TextFormatter(_Redacting):
    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS
                           if getattr(record, name, None) is not None)
        record.context = f" [{context}]" if context else ""
        return super().format(record)


class _Handler(logging.StreamHandler):
    """The one handler configure_logging installs; without a stream it writes to sys.stderr as it is
    at each line (test runners swap it)."""

    def __init__(self, stream: IO[str] | None) -> None:
        logging.Handler.__init__(self)
        self._stream = stream

    @property
    def stream(self) -> IO[str]:
        return self._stream or sys.stderr

    @stream.setter
    def stream(self, value: IO[str] | None) -> None:
        self._stream = value


def _secrets(settings: Settings) -> list[str]:
    return [value for value in (settings.api_key, settings.secret_key, settings.llm_api_key,
                                settings.s3_secret_access_key) if value]


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Send every logger's records through one handler on the root logger (replacing the one a
    previous call installed); level from WAYFARER_LOG_LEVEL, format from WAYFARER_LOG_FORMAT."""
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(previous)
    handler = _Handler(stream)
    handler.addFilter(_RunContext())
    if settings.resolved_log_format() == "json":
        handler.setFormatter(JsonFormatter(_secrets(settings)))
    else:
        handler.setFormatter(_TextFormatter(
            _secrets(settings), "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    logging.captureWarnings(True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # uvicorn's own handlers would duplicate
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler


# --- metrics -------------------------------------------------------------------------------------

_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

STEP_SECONDS = Histogram("wayfarer_step_duration_seconds",
                         "Time one agent step spent, by part: the LLM calls, or the browser harness.",
                         ["part"], buckets=_SECONDS)
LLM_TOKENS = Counter("wayfarer_llm_tokens", "LLM tokens used by steps.", ["kind"])
LLM_CALLS = Counter("wayfarer_llm_calls", "LLM chat-completion calls made by steps.")
WEBHOOK_ATTEMPTS = Counter("wayfarer_webhook_attempts",
                           "Webhook POSTs by outcome: delivered (2xx), retryable (network error, "
                           "408/425/429/5xx), rejected (any other status).", ["outcome"])
BROWSER_CONTEXTS = Gauge("wayfarer_browser_contexts_open", "Browser contexts open in this process.")


def record_step(prompt_tokens: int, completion_tokens: int, llm_calls: int, llm_ms: int,
                harness_ms: int) -> None:
    """A finished step: its metrics, and one log line (tagged with the run and step)."""
    _log.info("step done: %d LLM call(s) in %d ms, %d+%d tokens, harness %d ms",
              llm_calls, llm_ms, prompt_tokens, completion_tokens, harness_ms)
    STEP_SECONDS.labels("harness").observe(harness_ms / 1000)
    if llm_calls:
        STEP_SECONDS.labels("llm").observe(llm_ms / 1000)
        LLM_CALLS.inc(llm_calls)
    LLM_TOKENS.labels("prompt").inc(prompt_tokens)
    LLM_TOKENS.labels("completion").inc(completion_tokens)


def record_webhook_attempt(status_code: int | None) -> None:
    if status_code is not None and 200 <= status_code < 300:
        outcome = "delivered"
    elif status_code is None or status_code in (408, 425, 429) or status_code >= 500:
        outcome = "retryable"
    else:
        outcome = "rejected"
    WEBHOOK_ATTEMPTS.labels(outcome).inc()


class _RunCounts(Collector):
    """Runs by status and the queue depth, counted in the database at scrape time."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url

    def collect(self) -> Any:
        with session_scope(self._database_url) as s:
            counts = dict(s.execute(select(Run.status, func.count()).group_by(Run.status)).all())
        runs = GaugeMetricFamily("wayfarer_runs", "Runs in the database by status.", labels=["status"])
        for status in RunStatus:
            runs.add_metric([status.value], counts.get(status.value, 0))
        yield runs
        yield GaugeMetricFamily("wayfarer_queue_depth", "Runs queued and not yet started.",
                                value=counts.get(RunStatus.queued.value, 0))


def render_metrics(settings: Settings) -> bytes:
    """This process's metrics followed by the database-wide run counts, in Prometheus text format."""
    database = CollectorRegistry(auto_describe=False)
    database.register(_RunCounts(settings.database_url))
    return generate_latest(REGISTRY) + generate_latest(database)


def serve_worker_metrics(settings: Settings) -> None:
    """Expose this worker process's metrics on WAYFARER_WORKER_METRICS_PORT (unset: not served)."""
    from prometheus_client import start_http_server

    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
        _log.info("worker metrics on http://%s:%d/metrics",
                                         settings.worker_metrics_host, settings.worker_metrics_port)
