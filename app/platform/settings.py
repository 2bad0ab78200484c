"""All configuration in one place: environment variables prefixed WAYFARER_ (docs/configuration.md)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.platform.proxies import ProxyEntry, check_locations
from app.platform.url_policy import parse_policy

_JSON_LIST = 'a JSON list of strings, e.g. ["--lang=de-DE"]'
_PRICES = ('a JSON object of model -> US dollars per million prompt and completion tokens, e.g. '
           '{"gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}')


class ModelPrice(BaseModel):
    """One model's price in WAYFARER_LLM_PRICES: US dollars per million tokens."""

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1_000_000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAYFARER_", env_file=".env", extra="ignore",
                                      populate_by_name=True)

    data_dir: Path = Path("./wayfarer-data")
    database_url: str = ""  # default: SQLite file in data_dir
    redis_url: str | None = None  # unset: in-process executor (embedded default)
    public_base_url: str | None = None  # unset: links on each request's address (app/platform/public_url.py)
    forwarded_allow_ips: str = "127.0.0.1"  # proxies whose X-Forwarded-* headers are trusted (uvicorn's)
    app_url: str | None = None  # base of a run's app_url; None: the public base URL (this server's viewer)

    api_key: str | None = None  # optional key seeded at start-up
    api_key_cache_seconds: float = Field(default=5.0, ge=0)  # a revoked key works this long in a process
    secret_key: str | None = None  # signs artifact links, encrypts stored secrets; generated if unset
    production: bool = False  # refuse to start without secret_key
    web_session_seconds: int = Field(default=43200, ge=60)  # a viewer's sign-in lasts this long

    artifact_store: Literal["local", "s3"] = "local"
    s3_bucket: str = "wayfarer-artifacts"
    s3_endpoint_url: str | None = None
    s3_public_endpoint_url: str | None = None  # the endpoint clients reach; only presigned links use it
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    artifact_url_ttl_seconds: int = 86400

    llm_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("WAYFARER_LLM_BASE_URL", "OPENAI_BASE_URL")
    )
    llm_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("WAYFARER_LLM_API_KEY", "OPENAI_API_KEY")
    )
    llm_model: str = "gpt-4o-mini"
    llm_vision: bool = False
    llm_timeout_seconds: float = 60.0
    llm_max_retries: int = 3
    llm_prices: Annotated[dict[str, ModelPrice], NoDecode] = {}  # runs and steps report an estimated cost

    def llm_cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """What WAYFARER_LLM_MODEL costs for these tokens; None when it has no price."""
        price = self.llm_prices.get(self.llm_model)
        return price.cost(prompt_tokens, completion_tokens) if price else None

    chromium_path: str | None = None  # default: chromium found on PATH
    chromium_args: Annotated[list[str], NoDecode] = []
    headless: bool = True
    record_video: bool = True  # a recording artifact per run; off saves an ffmpeg (~55 MiB) per run
    max_concurrent_runs: int = 4
    default_max_steps: int = 25
    max_prompt_chars: int = Field(default=50_000, ge=1)  # a longer prompt or goal is refused (422)
    max_repeated_actions: int = Field(default=3, ge=0)  # a stuck planner is told, then ended; 0: off
    default_run_with: Literal["agent", "code"] = "agent"  # a run's run_with when it gives none (app/scripts)
    run_deadline_seconds: int = 1800
    # a workflow run past its deadline still runs its finally block, for this long; 0: it does not (as
    # Skyvern); at most 300, well inside the queue's visibility timeout (the deadline + 600 s)
    finally_after_timeout_seconds: int = Field(default=120, ge=0, le=300)
    step_settle_timeout_ms: int = 3000
    action_timeout_ms: int = 5000
    navigation_timeout_ms: int = 15000
    totp_wait_seconds: float = 60.0

    run_lease_seconds: int = 120  # a running run whose heartbeat is older than this is declared lost
    requeue_after_seconds: int = 600  # a run queued longer than this is dispatched again
    run_start_tries: int = Field(default=3, ge=1)  # starts that fail inside Wayfarer before it ends failed
    sweep_interval_seconds: float = 30.0
    shutdown_grace_seconds: float = 30.0  # on SIGTERM, runs may finish this long before being handed back
    webhook_max_attempts: int = 6
    webhook_backoff_seconds: float = 20.0  # first retry delay; doubles: 6 attempts span ~10 min
    webhook_timeout_seconds: float = 30.0
    scheduler_poll_seconds: float = Field(default=5.0, ge=0)  # each process looks for due schedules; 0: off

    max_request_bytes: int = 10 * 1024 * 1024  # larger request bodies get 413
    allow_local_files: bool = False  # upload_file may take a path on the worker's own disk
    allow_code_blocks: bool = False  # workflow `code` blocks (arbitrary Python) are refused unless true
    code_block_timeout_seconds: float = 60.0  # a code block's subprocess is killed after this long
    smtp_host: str | None = None  # workflow send_email blocks (a block's custom_smtp_* override these)
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    url_policy: str = "open"  # addresses runs may reach: open, public-only, allow:/deny:<CIDR>
    proxy_locations: dict[str, ProxyEntry] = {}  # proxy_location -> the proxy browsers use (app.proxies)
    org_max_queued_runs: int | None = None  # per organization; past it POST /v1/run/tasks gets 429
    org_max_running_runs: int | None = None  # per organization; further runs wait queued
    run_max_tokens: int | None = None  # LLM tokens (prompt + completion) one run may use; then timed_out
    takeover_idle_seconds: int = 300  # a person holding a run's control with no input this long gives it back
    max_pause_seconds: int = 1800  # paused time not counted against the deadline; ask_human waits this long
    pause_notice_url: str | None = None  # gets a signed notice whenever a run pauses for a person

    log_level: str = "INFO"
    log_format: Literal["json", "text"] | None = None  # default: json when production, else text
    worker_metrics_port: int | None = None  # a worker serves /metrics here; unset: not served
    worker_metrics_host: str = "0.0.0.0"  # scraped from other hosts
    session_cdp_host: str = "127.0.0.1"  # where a worker exposes its browser sessions' DevTools to the API
    artifact_retention_days: float = 0  # delete artifacts older than this; 0: keep forever
    run_retention_days: float = 0  # delete runs (with all they hold) ended longer ago; 0: keep forever

    @field_validator("llm_prices", mode="before")
    @classmethod
    def _prices(cls, value: Any) -> Any:
        try:
            parsed = json.loads(value) if isinstance(value, str) else value
            if not isinstance(parsed, dict):
                raise ValueError(parsed)
            return {str(model): ModelPrice.model_validate(price) for model, price in parsed.items()}
        except ValueError:  # bad JSON, or a price that is not {"prompt": >= 0, "completion": >= 0}
            raise ValueError(f"allowed: {_PRICES}") from None

    @field_validator("chromium_args", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        try:
            parsed = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
            raise ValueError(f"allowed: {_JSON_LIST}")
        return parsed

    @field_validator("url_policy")
    @classmethod
    def _url_policy(cls, value: str) -> str:
        parse_policy(value)  # a bad value stops start-up with the message naming WAYFARER_URL_POLICY
        return value

    @field_validator("proxy_locations")
    @classmethod
    def _proxy_locations(cls, value: dict[str, ProxyEntry]) -> dict[str, ProxyEntry]:
        return check_locations(value)

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'wayfarer.db').resolve()}"
        return self

    def resolved_log_format(self) -> Literal["json", "text"]:
        return self.log_format or ("json" if self.production else "text")

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    def resolved_chromium_path(self) -> str:
        path = self.chromium_path or shutil.which("chromium") or shutil.which("chromium-browser")
        if not path:
            raise RuntimeError("Chromium was not found: install it (apt-get install chromium) "
                               "or set WAYFARER_CHROMIUM_PATH.")
        return path

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"

    def secret_key_source(self) -> str:
        """Where the secret key comes from, for messages (never the key itself)."""
        if self.secret_key:
            return "WAYFARER_SECRET_KEY"
        return f"the key generated in {self.secret_key_file.resolve()} (WAYFARER_SECRET_KEY is unset)"

    def resolved_secret_key(self) -> str:
        """The configured secret, else one generated once and kept in the data dir (embedded use)."""
        if self.secret_key:
            return self.secret_key
        if self.production:
            raise InvalidSettings("WAYFARER_SECRET_KEY must be set when WAYFARER_PRODUCTION is true.")
        key_file = self.secret_key_file
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
        return key_file.read_text().strip()


class InvalidSettings(Exception):
    """A setting has a value it cannot take: one line per such setting, naming its variable, the value
    (hidden for secrets) and what is allowed."""


_SECRET_FIELDS = frozenset({"api_key", "secret_key", "llm_api_key", "s3_secret_access_key", "smtp_password",
                            "proxy_locations"})  # proxy URLs carry passwords
_ALLOWED = {"bool_parsing": "true or false (also 1/0, yes/no, on/off)", "int_parsing": "a whole number",
            "float_parsing": "a number"}


def _describe(error: ErrorDetails) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    name = field if field.startswith(("WAYFARER_", "OPENAI_")) else f"WAYFARER_{field.upper()}"
    value = "***" if field in _SECRET_FIELDS else repr(error["input"])
    if error["type"] == "value_error":  # our validators' messages say what is allowed
        detail = str((error.get("ctx") or {}).get("error", error["msg"]))
    else:
        detail = "allowed: " + _ALLOWED.get(error["type"], error["msg"].removeprefix("Input should be "))
    return f"{name}={value} is not valid; {detail}"


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise InvalidSettings("\n".join(_describe(error) for error in exc.errors())) from None
