"""Workflow ("agent") definitions as Skyvern's spec names them: the request side (WorkflowCreateYAMLRequest,
its parameters and blocks, the YAML schemas of the spec) and the response side (Workflow).

The one home of the block models: the definitions service validates against them, the engine
(workers/workflows/) runs what they describe. Fields of the spec that are not modelled here are kept
(extra="allow") and echoed back; docs/workflows.md says which are acted on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, computed_field

from app.schemas.runs import CdpAddressField, FileInfo, HttpUrlField, RunEngine

WorkflowParameterType = Literal["string", "integer", "float", "boolean", "json", "file_url", "credential_id"]
WorkflowStatus = Literal["published", "draft", "auto_generated", "importing", "import_failed"]
FileType = Literal["auto_detect", "csv", "excel", "pdf", "image", "docx", "zip"]
Label = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):  # Pydantic takes true for 1; Skyvern refuses it
        raise ValueError("max_elapsed_time_minutes must be an integer, not a boolean")
    return value


# a workflow run's time limit (the run request's, else the workflow's): then it ends timed_out
ElapsedMinutes = Annotated[Annotated[int, Field(ge=1, le=480)] | None, BeforeValidator(_not_a_boolean)]


class _Definition(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- parameters -------------------------------------------------------------------------------------

class WorkflowParameterYAML(_Definition):
    parameter_type: Literal["workflow"] = "workflow"
    key: Label
    description: str | None = None
    workflow_parameter_type: WorkflowParameterType
    default_value: str | int | float | bool | dict[str, Any] | list[Any] | None = None


class OutputParameterYAML(_Definition):
    parameter_type: Literal["output"] = "output"
    key: Label
    description: str | None = None


class CredentialParameterYAML(_Definition):
    """A stored credential (`cred_…`) a login block signs in with."""

    parameter_type: Literal["credential"] = "credential"
    key: Label
    description: str | None = None
    credential_id: str = Field(min_length=1)


class ContextParameterYAML(_Definition):
    parameter_type: Literal["context"] = "context"
    key: Label
    description: str | None = None
    source_parameter_key: str


ParameterYAML = Annotated[
    WorkflowParameterYAML | OutputParameterYAML | CredentialParameterYAML | ContextParameterYAML,
    Field(discriminator="parameter_type"),
]


# --- blocks -----------------------------------------------------------------------------------------

class BlockYAML(_Definition):
    label: Label
    next_block_label: str | None = None
    continue_on_failure: bool = False
    model: dict[str, Any] | None = None
    ignore_workflow_system_prompt: bool = False
    next_loop_on_failure: bool = False


class AgentBlockYAML(BlockYAML):
    """The blocks the browser agent runs (workers/agent/): one task each, in the run's browser context."""

    url: str | None = None
    title: str = ""
    engine: RunEngine = "skyvern-1.0"
    navigation_goal: str | None = None
    data_extraction_goal: str | None = None
    data_schema: dict[str, Any] | list[Any] | str | None = None
    error_code_mapping: dict[str, str] | None = None
    max_retries: int = Field(default=0, ge=0, le=10)
    max_steps_per_run: int | None = Field(default=None, ge=1, le=1000)
    parameter_keys: list[str] | None = None
    complete_on_download: bool = False
    download_suffix: str | None = None
    totp_verification_url: str | None = None
    totp_identifier: str | None = None
    disable_cache: bool = False
    complete_criterion: str | None = None
    terminate_criterion: str | None = None
    complete_verification: bool = True
    include_action_history_in_verification: bool = False


class TaskBlockYAML(AgentBlockYAML):
    block_type: Literal["task"] = "task"


class NavigationBlockYAML(AgentBlockYAML):
    block_type: Literal["navigation"] = "navigation"
    navigation_goal: str = Field(min_length=1)


class ExtractionBlockYAML(AgentBlockYAML):
    block_type: Literal["extraction"] = "extraction"
    data_extraction_goal: str = Field(min_length=1)


class ActionBlockYAML(AgentBlockYAML):
    block_type: Literal["action"] = "action"


class LoginBlockYAML(AgentBlockYAML):
    block_type: Literal["login"] = "login"
    skip_saved_profile: bool = False


class FileDownloadBlockYAML(AgentBlockYAML):
    block_type: Literal["file_download"] = "file_download"
    navigation_goal: str = Field(min_length=1)
    download_timeout: float | None = Field(default=None, gt=0, le=3600)


class ValidationBlockYAML(BlockYAML):
    block_type: Literal["validation"] = "validation"
    engine: RunEngine = "skyvern-1.0"
    complete_criterion: str | None = None
    terminate_criterion: str | None = None
    error_code_mapping: dict[str, str] | None = None
    max_steps_per_run: int | None = Field(default=None, ge=1, le=1000)
    parameter_keys: list[str] | None = None
    disable_cache: bool = False


class UrlBlockYAML(BlockYAML):
    block_type: Literal["goto_url"] = "goto_url"
    url: str = Field(min_length=1)


class WaitBlockYAML(BlockYAML):
    block_type: Literal["wait"] = "wait"
    wait_sec: int = Field(default=0, ge=0, le=3600)


class ForLoopBlockYAML(BlockYAML):
    """Runs loop_blocks once per item of a list: a parameter or an earlier block's output named by
    loop_over_parameter_key, or a template (loop_variable_reference) that evaluates to one."""

    block_type: Literal["for_loop"] = "for_loop"
    loop_blocks: list[Block] = Field(min_length=1)
    loop_over_parameter_key: str = ""
    loop_variable_reference: str | None = None
    complete_if_empty: bool = False
    data_schema: dict[str, Any] | str | None = None


class BranchCriteriaYAML(_Definition):
    criteria_type: Literal["jinja2_template", "prompt"] = "jinja2_template"
    expression: str
    description: str | None = None


class BranchConditionYAML(_Definition):
    criteria: BranchCriteriaYAML | None = None
    next_block_label: str | None = None
    description: str | None = None
    is_default: bool = False


class ConditionalBlockYAML(BlockYAML):
    block_type: Literal["conditional"] = "conditional"
    branch_conditions: list[BranchConditionYAML] = Field(default_factory=list)


class TextPromptBlockYAML(BlockYAML):
    block_type: Literal["text_prompt"] = "text_prompt"
    llm_key: str | None = None
    prompt: str = Field(min_length=1)
    parameter_keys: list[str] | None = None
    json_schema: dict[str, Any] | None = None


class HttpRequestBlockYAML(BlockYAML):
    block_type: Literal["http_request"] = "http_request"
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str | None = None
    headers: dict[str, str] | None = None
    body: dict[str, Any] | None = None
    timeout: int = Field(default=30, ge=1, le=600)
    follow_redirects: bool = True
    parameter_keys: list[str] | None = None


class SendEmailBlockYAML(BlockYAML):
    block_type: Literal["send_email"] = "send_email"
    sender: str = Field(min_length=1)
    recipients: list[str] = Field(min_length=1)
    subject: str
    body: str
    file_attachments: list[str] | None = None
    custom_smtp_host: str | None = None
    custom_smtp_port: int | None = None
    custom_smtp_username: str | None = None
    custom_smtp_password: str | None = None


class FileParserBlockYAML(BlockYAML):
    block_type: Literal["file_url_parser"] = "file_url_parser"
    file_url: str = Field(min_length=1)
    file_type: FileType = "auto_detect"
    json_schema: dict[str, Any] | None = None


class CodeBlockYAML(BlockYAML):
    """Arbitrary Python: refused unless WAYFARER_ALLOW_CODE_BLOCKS=true."""

    block_type: Literal["code"] = "code"
    code: str = Field(min_length=1)
    parameter_keys: list[str] | None = None


Block = Annotated[
    TaskBlockYAML | NavigationBlockYAML | ExtractionBlockYAML | ActionBlockYAML | LoginBlockYAML
    | FileDownloadBlockYAML | ValidationBlockYAML | UrlBlockYAML | WaitBlockYAML | ForLoopBlockYAML
    | ConditionalBlockYAML | TextPromptBlockYAML | HttpRequestBlockYAML | SendEmailBlockYAML
    | FileParserBlockYAML | CodeBlockYAML,
    Field(discriminator="block_type"),
]
AGENT_BLOCK_TYPES = ("task", "navigation", "extraction", "action", "login", "file_download")
SUPPORTED_BLOCK_TYPES = (*AGENT_BLOCK_TYPES, "validation", "goto_url", "wait", "for_loop", "conditional",
                         "text_prompt", "http_request", "send_email", "file_url_parser", "code")
SUPPORTED_PARAMETER_TYPES = ("workflow", "output", "credential", "context")
ForLoopBlockYAML.model_rebuild()


class WorkflowDefinitionYAML(_Definition):
    version: int | None = None
    parameters: list[ParameterYAML] = Field(default_factory=list)
    blocks: list[Block] = Field(min_length=1)
    finally_block_label: str | None = None
    error_code_mapping: dict[str, str] | None = None
    workflow_system_prompt: str | None = None


class WorkflowCreateYAMLRequest(_Definition):
    """One version of a workflow as its author wrote it; stored as given (validated, defaults filled)."""

    title: str = Field(min_length=1, max_length=500)
    description: str | None = None
    proxy_location: str | dict[str, Any] | None = None
    webhook_callback_url: str | None = None
    totp_verification_url: str | None = None
    totp_identifier: str | None = None
    persist_browser_session: bool = False
    browser_profile_id: str | None = None
    model: dict[str, Any] | None = None
    workflow_definition: WorkflowDefinitionYAML
    is_saved_task: bool = False
    max_screenshot_scrolls: int | None = Field(default=None, ge=0, le=100)
    max_elapsed_time_minutes: ElapsedMinutes = None
    extra_http_headers: dict[str, str] | None = None
    status: WorkflowStatus = "published"
    run_with: str = "agent"  # "code": agent blocks replay recorded scripts (docs/replay.md)
    ai_fallback: bool = True
    cache_key: str | None = Field(default="default", max_length=500)  # a template over the parameters
    folder_id: str | None = None


class WorkflowRequest(BaseModel):
    """POST /v1/agents: a definition as JSON or as YAML text (what the SDKs send)."""

    json_definition: dict[str, Any] | None = None
    yaml_definition: str | None = None


# --- responses --------------------------------------------------------------------------------------

class WorkflowDefinition(BaseModel):
    """The response side: each block carries its output_parameter, each parameter its ids."""

    version: int = 1
    parameters: list[dict[str, Any]]
    blocks: list[dict[str, Any]]
    finally_block_label: str | None = None
    error_code_mapping: dict[str, str] | None = None
    workflow_system_prompt: str | None = None


class Workflow(BaseModel):
    workflow_id: str
    agent_id: str
    organization_id: str
    title: str
    workflow_permanent_id: str
    version: int
    is_saved_task: bool
    is_template: bool = False
    description: str | None = None
    workflow_definition: WorkflowDefinition
    proxy_location: str | dict[str, Any] | None = None
    webhook_callback_url: str | None = None
    totp_verification_url: str | None = None
    totp_identifier: str | None = None
    persist_browser_session: bool = False
    browser_profile_id: str | None = None
    model: dict[str, Any] | None = None
    status: WorkflowStatus = "published"
    max_screenshot_scrolls: int | None = None
    max_elapsed_time_minutes: int | None = None
    extra_http_headers: dict[str, str] | None = None
    run_with: str = "agent"
    ai_fallback: bool = True
    cache_key: str | None = "default"
    folder_id: str | None = None
    created_at: datetime
    modified_at: datetime
    deleted_at: datetime | None = None


class WorkflowRunRequest(BaseModel):
    """POST /v1/run/agents (and /v1/run/workflows): which workflow, its parameters, and the run's own
    browser and webhook settings (a setting left null takes the workflow's)."""

    model_config = ConfigDict(extra="ignore")

    agent_id: str | None = None
    workflow_id: str | None = None  # the older name of agent_id
    parameters: dict[str, Any] | None = None
    title: str | None = Field(default=None, max_length=500)
    proxy_location: str | dict[str, Any] | None = None
    webhook_url: HttpUrlField = None
    totp_url: HttpUrlField = None
    totp_identifier: str | None = Field(default=None, max_length=500)
    browser_session_id: str | None = None
    browser_profile_id: str | None = None
    max_screenshot_scrolls: int | None = None
    extra_http_headers: dict[str, str] | None = None
    cdp_connect_headers: dict[str, str] | None = None
    browser_address: CdpAddressField = None
    run_with: Literal["agent", "code"] | None = None  # null: the workflow's, else WAYFARER_DEFAULT_RUN_WITH
    ai_fallback: bool | None = None  # null: the workflow's
    max_elapsed_time_minutes: ElapsedMinutes = None  # null: the workflow's
    # each agent block's step limit, over the block's own max_steps_per_run (Skyvern's order); the SDK
    # sends it as the x-max-steps-override header, which the routes put here
    max_steps_override: int | None = Field(default=None, ge=1, le=1000)


class WorkflowRun(BaseModel):
    """An item of GET /v1/agents/runs and /v1/agents/{id}/runs."""

    workflow_run_id: str
    workflow_id: str
    workflow_permanent_id: str
    organization_id: str
    status: str
    browser_session_id: str | None = None
    browser_profile_id: str | None = None
    proxy_location: str | dict[str, Any] | None = None
    webhook_callback_url: str | None = None
    webhook_failure_reason: str | None = None
    totp_verification_url: str | None = None
    totp_identifier: str | None = None
    failure_reason: str | None = None
    workflow_title: str | None = None
    run_with: str | None = "agent"
    ai_fallback: bool | None = None
    script_run: dict[str, Any] | None = None  # run_with "code": ScriptRunResponse plus Wayfarer's counts
    max_elapsed_time_minutes: int | None = None
    trigger_type: str | None = "api"
    workflow_schedule_id: str | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime
    modified_at: datetime


class WorkflowRunResponseBase(BaseModel):
    """A workflow run's status as Skyvern builds it for the run's webhook, under the run response's fields
    (app/webhooks/payload.py). `workflow_id` is the workflow's wpid_ (a one-off run's: login,
    download_files); `outputs` is what `output` holds."""

    workflow_id: str
    workflow_run_id: str
    status: str
    failure_reason: str | None = None
    failure_category: list[dict[str, Any]] | None = None
    retried_from_workflow_run_id: str | None = None
    retried_by_workflow_run_id: str | None = None
    proxy_location: str | dict[str, Any] | None = None
    webhook_callback_url: str | None = None
    webhook_failure_reason: str | None = None
    totp_verification_url: str | None = None
    totp_identifier: str | None = None
    extra_http_headers: dict[str, str] | None = None
    cdp_connect_headers: dict[str, str] | None = None  # masked, as run_request keeps them
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime
    modified_at: datetime
    parameters: dict[str, Any]
    screenshot_urls: list[str] | None = None
    recording_url: str | None = None
    recording_urls: list[str] | None = None
    recording_archived: bool = False
    downloaded_files: list[FileInfo] | None = None
    downloaded_file_urls: list[str] | None = None
    outputs: dict[str, Any] | list[Any] | str | None = None
    total_steps: int | None = None
    total_cost: float | None = None
    credits_used: int = 0
    cached_credits_used: int = 0
    task_v2: dict[str, Any] | None = None
    workflow_title: str | None = None
    browser_session_id: str | None = None
    browser_profile_id: str | None = None
    browser_seed_source: str | None = None
    browser_sink_profile_id: str | None = None
    max_screenshot_scrolls: int | None = None
    browser_address: str | None = None
    run_with: str | None = "agent"
    browser_type: str | None = None
    script_run: dict[str, Any] | None = None
    script_id: str | None = None
    errors: list[dict[str, Any]] | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def agent_id(self) -> str:
        return self.workflow_id

    @computed_field  # type: ignore[prop-decorator]
    @property
    def agent_run_id(self) -> str:
        return self.workflow_run_id
