"""Request and response models of the run API, field for field as in Skyvern's spec.

Explicit `null` means absent everywhere: the official Python SDK sends every optional field as null.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from app.schemas.extraction import check_extraction_schema

RunEngine = Literal["skyvern-1.0", "skyvern-2.0", "skyvern-3.0", "openai-cua", "anthropic-cua", "ui-tars",
                    "yutori-navigator"]
RunType = Literal["task_v1", "task_v2", "task_v3", "workflow_run", "openai_cua", "anthropic_cua", "ui_tars",
                  "yutori_navigator"]

_SCHEMES = ("http://", "https://")
_URL = TypeAdapter(AnyUrl)


def normalize_http_url(value: str | None) -> str | None:
    """Prepend https:// to a scheme-less URL (as Skyvern does); refuse any scheme but http(s)."""
    if value is None:
        return None
    url = value.strip()
    if not url:
        raise ValueError("must not be empty")
    if "://" not in url and not url.lower().startswith(("javascript:", "data:", "file:", "about:",
                                                        "chrome:", "mailto:", "blob:", "view-source:")):
        url = "https://" + url
    if not url.lower().startswith(_SCHEMES):
        raise ValueError("must be an http:// or https:// URL")
    try:  # Skyvern's HttpUrl check without its 2083-character cap; the URL is kept as written
        _URL.validate_python(url)
    except ValidationError as exc:
        problem = exc.errors()[0]
        reason = problem.get("ctx", {}).get("error") or problem["msg"]
        raise ValueError(f"is not a valid URL ({reason})") from None
    return url


def check_cdp_address(value: str | None) -> str | None:
    """browser_address: the DevTools endpoint of a Chromium the user runs (http(s) or ws(s))."""
    if value is None:
        return None
    url = value.strip()
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("http", "https", "ws", "wss") or not rest.split("/", 1)[0]:
        raise ValueError("must be the http(s):// or ws(s):// DevTools address of a running Chromium, "
                         "e.g. http://127.0.0.1:9222")
    return url


# Request fields checked where they are declared, so every request model shares one rule per kind.
HttpUrlField = Annotated[str | None, AfterValidator(normalize_http_url)]
CdpAddressField = Annotated[str | None, AfterValidator(check_cdp_address)]


class KeepsUrlAsSent(BaseModel):
    """A request whose `url` may come without a scheme: it keeps the url as sent, so the run can say
    that https:// was assumed (Skyvern's behaviour) when it fails."""

    _url_as_sent: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_url_as_sent(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        model = handler(data)
        raw = data.get("url") if isinstance(data, dict) else None
        if isinstance(raw, str) and "://" not in raw:
            model._url_as_sent = raw.strip()
        return model

    @property
    def url_as_sent(self) -> str | None:
        """The url as the client wrote it (without a scheme); None when it was not rewritten."""
        return self._url_as_sent

    def assumed_scheme_note(self) -> str | None:
        url = getattr(self, "url", None)
        if self._url_as_sent is None or not url:
            return None
        return (f"The url {self._url_as_sent!r} has no scheme, so {url} was used (https:// is assumed, as "
                "Skyvern does); if the site serves plain HTTP, send the url with http://.")


class TaskRunRequest(KeepsUrlAsSent):
    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1)
    url: HttpUrlField = None
    engine: RunEngine | None = None
    title: str | None = None
    proxy_location: str | dict[str, Any] | None = None
    data_extraction_schema: dict[str, Any] | list[Any] | str | None = None
    error_code_mapping: dict[str, str] | None = None
    max_steps: int | None = Field(default=None, ge=1, le=1000)
    webhook_url: HttpUrlField = None
    totp_identifier: str | None = None
    totp_url: HttpUrlField = None
    browser_session_id: str | None = None
    browser_profile_id: str | None = None
    start_fresh_browser: bool | None = None
    model: dict[str, Any] | None = None
    extra_http_headers: dict[str, str] | None = None
    cdp_connect_headers: dict[str, str] | None = None
    publish_workflow: bool | None = None
    include_action_history_in_verification: bool | None = None
    max_screenshot_scrolls: int | None = None
    browser_address: CdpAddressField = None
    run_with: Literal["agent", "code"] | None = None
    file_ids: list[str] | None = Field(default=None, max_length=50)
    # Extensions on tasks (Skyvern has them on workflows): see docs/replay.md
    ai_fallback: bool | None = None
    cache_key: str | None = Field(default=None, min_length=1, max_length=500)

    @field_validator("data_extraction_schema")
    @classmethod
    def _extraction_schema(cls, value: Any) -> Any:
        return check_extraction_schema(value)


class BulkCancelRunsRequest(BaseModel):
    run_ids: list[str] = Field(max_length=100)


class BulkCancelRunsResponse(BaseModel):
    cancelled: list[str]
    failed: list[str]


class RetryRunWebhookRequest(BaseModel):
    webhook_url: HttpUrlField = None


class FileInfo(BaseModel):
    url: str
    checksum: str | None = None
    filename: str | None = None
    file_size: int | None = None
    modified_at: datetime | None = None
    artifact_id: str | None = None


class TaskRunResponse(BaseModel):
    run_id: str
    run_type: str
    status: str
    output: dict[str, Any] | list[Any] | str | None = None
    downloaded_files: list[FileInfo] | None = None
    recording_url: str | None = None
    recording_archived: bool = False
    screenshot_urls: list[str] | None = None
    failure_reason: str | None = None
    created_at: datetime
    modified_at: datetime
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    app_url: str | None = None
    browser_session_id: str | None = None
    browser_profile_id: str | None = None
    max_screenshot_scrolls: int | None = None
    script_run: dict[str, Any] | None = None
    errors: list[dict[str, Any]] | None = None
    step_count: int | None = None
    run_request: dict[str, Any] | None = None
    # Extensions (docs/planner.md "What a run reports"): what the planner said it did (complete's
    # summary, terminate's reason) and what the run's LLM calls cost.
    summary: str | None = None
    llm_call_count: int = 0
    input_token_count: int = 0
    output_token_count: int = 0
    total_cost: float | None = None  # estimated from WAYFARER_LLM_PRICES; None: the model has no price


class TaskRunListItem(BaseModel):
    task_run_id: str
    run_id: str
    task_run_type: str
    status: str
    title: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime
    workflow_permanent_id: str | None = None
    workflow_deleted: bool = False
    script_run: bool = False
    trigger_type: str | None = "api"
    created_by: str | None = None


class ArtifactResponse(BaseModel):
    artifact_id: str
    artifact_type: str
    uri: str
    organization_id: str
    created_at: datetime
    modified_at: datetime
    bundle_key: str | None = None
    checksum: str | None = None
    file_size: int | None = None
    task_id: str | None = None
    step_id: str | None = None
    workflow_run_id: str | None = None
    workflow_run_block_id: str | None = None
    run_id: str | None = None
    browser_session_id: str | None = None
    observer_cruise_id: str | None = None
    observer_thought_id: str | None = None
    ai_suggestion_id: str | None = None
    signed_url: str | None = None
    archived: bool = False


class RunWebhookReplayResponse(BaseModel):
    run_id: str
    run_type: str
    default_webhook_url: str | None = None
    target_webhook_url: str | None = None
    payload: str
    headers: dict[str, str]
    status_code: int | None = None
    latency_ms: int | None = None
    response_body: str | None = None
    error: str | None = None


class WorkflowRunResponse(TaskRunResponse):
    """A `wr_` run (login, download_files): TaskRunResponse plus Skyvern's workflow-run fields."""

    run_with: str | None = "agent"
    ai_fallback: bool | None = False
    script_id: str | None = None
    attempt: int = 1
    retry_pending: bool = False
    next_attempt_at: datetime | None = None
    attempts: list[dict[str, Any]] = []


class OneOffRunFields(KeepsUrlAsSent):
    """The browser, webhook and 2FA fields Skyvern's login and download_files requests share."""

    model_config = ConfigDict(extra="ignore")

    url: HttpUrlField = None
    webhook_url: HttpUrlField = None
    proxy_location: str | dict[str, Any] | None = None
    totp_identifier: str | None = Field(default=None, max_length=500)
    totp_url: HttpUrlField = None
    browser_session_id: str | None = None
    browser_profile_id: str | None = None
    start_fresh_browser: bool | None = None
    browser_address: CdpAddressField = None
    extra_http_headers: dict[str, str] | None = None
    cdp_connect_headers: dict[str, str] | None = None
    max_screenshot_scrolling_times: int | None = None

    def task_request(self, prompt: str, title: str, **overrides: Any) -> TaskRunRequest:
        """The task run this shortcut request stands for."""
        fields = {"url": self.url_as_sent or self.url, "webhook_url": self.webhook_url,
                  "proxy_location": self.proxy_location,
                  "totp_identifier": self.totp_identifier, "totp_url": self.totp_url,
                  "browser_session_id": self.browser_session_id,
                  "browser_profile_id": self.browser_profile_id,
                  "extra_http_headers": self.extra_http_headers, "browser_address": self.browser_address,
                  "cdp_connect_headers": self.cdp_connect_headers}
        return TaskRunRequest(prompt=prompt, title=title, **{**fields, **overrides})
