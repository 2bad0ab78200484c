"""SQLAlchemy models. The schema itself is made only by Alembic migrations (migrations/)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Naive UTC, as Skyvern emits it (no offset suffix)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, Any: JSON}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Organization(Timestamped, Base):
    __tablename__ = "organizations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class DeploymentState(Base):
    """Facts about the deployment as a whole, by name: the secret key's fingerprint, the key seeded from
    WAYFARER_API_KEY. Columns named `*_encrypted` anywhere hold Fernet tokens made with the secret key
    (`wayfarer secret rotate` finds them by that name)."""

    __tablename__ = "deployment_state"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    modified_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ApiKey(Timestamped, Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the key
    key_prefix: Mapped[str] = mapped_column(String(16))  # shown in listings to tell keys apart
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class Run(Timestamped, Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    run_type: Mapped[str] = mapped_column(String(32))
    engine: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(String(500))
    prompt: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    run_request: Mapped[dict[str, Any]] = mapped_column(JSON)
    max_steps: Mapped[int] = mapped_column(Integer)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_key_encrypted: Mapped[str | None] = mapped_column(Text)  # the caller's API key, Fernet
    webhook_failure_reason: Mapped[str | None] = mapped_column(Text)
    totp_identifier: Mapped[str | None] = mapped_column(String(500))
    totp_url: Mapped[str | None] = mapped_column(Text)
    browser_session_id: Mapped[str | None] = mapped_column(String(64))
    browser_profile_id: Mapped[str | None] = mapped_column(String(64))
    cdp_connect_headers_encrypted: Mapped[str | None] = mapped_column(Text)  # run_request keeps them masked
    storage_state_encrypted: Mapped[str | None] = mapped_column(Text)  # a wr_ run's final cookies/storage
    # a run of a stored workflow: the version it runs (`w_`) and the workflow (`wpid_`); None otherwise
    workflow_id: Mapped[str | None] = mapped_column(String(64))
    workflow_permanent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    workflow_schedule_id: Mapped[str | None] = mapped_column(String(64))  # started by this schedule's slot

    output: Mapped[Any] = mapped_column(JSON, nullable=True)
    summary: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    step_count: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    llm_calls: Mapped[int] = mapped_column(Integer, default=0)
    llm_cost: Mapped[float | None] = mapped_column(Float)  # US dollars, WAYFARER_LLM_PRICES; None: no price
    # run_with "code" (app/scripts): the script it replayed or recorded and what happened (ScriptRunResponse)
    script_run: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # control (app/runs/control.py): a pause asked for takes effect at the agent's next step boundary
    pause_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_reason: Mapped[str | None] = mapped_column(Text)  # shown while paused: ask_human's reason
    control_key_id: Mapped[str | None] = mapped_column(String(64))  # the API key id holding control
    paused_at: Mapped[datetime | None] = mapped_column(DateTime)
    paused_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # all pauses ended so far
    worker_id: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index("ix_runs_org_created", "organization_id", "created_at"),
        Index("ix_runs_status", "status"),
    )


class RunEvent(Timestamped, Base):
    """Who steered a run and when: control taken and given back, a pause for a person. `key_id` is the
    API key's id (never the key); None when the run itself did it (ask_human, an idle takeover ending)."""

    __tablename__ = "run_events"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)


class Step(Timestamped, Base):
    __tablename__ = "steps"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    llm_calls: Mapped[int] = mapped_column(Integer, default=0)
    llm_cost: Mapped[float | None] = mapped_column(Float)  # US dollars, WAYFARER_LLM_PRICES; None: no price
    llm_ms: Mapped[int] = mapped_column(Integer, default=0)
    harness_ms: Mapped[int] = mapped_column(Integer, default=0)
    workflow_run_block_id: Mapped[str | None] = mapped_column(String(64))  # the block a workflow step is in


class Action(Timestamped, Base):
    __tablename__ = "actions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    step_id: Mapped[str] = mapped_column(ForeignKey("steps.id"))
    index: Mapped[int] = mapped_column(Integer)
    action_type: Mapped[str] = mapped_column(String(32))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON)
    reasoning: Mapped[str | None] = mapped_column(Text)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(Text)
    replay: Mapped[str | None] = mapped_column(String(16))  # "replayed" from a script, or "healed"


class Artifact(Timestamped, Base):
    __tablename__ = "artifacts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), index=True)
    browser_session_id: Mapped[str | None] = mapped_column(String(64), index=True)  # a session's own files
    step_id: Mapped[str | None] = mapped_column(String(64))
    artifact_type: Mapped[str] = mapped_column(String(48))
    storage_key: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 hex
    filename: Mapped[str | None] = mapped_column(String(500))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)  # an upload's retention_days


class WebhookDelivery(Timestamped, Base):
    """The outbox (app/webhooks/outbox.py): one row per run that ended with a webhook_url, written in
    the transaction that ended it; deliverers in any process claim it (a lease), send, and retry from
    here. Its id is the delivery id every attempt carries (`x-wayfarer-delivery-id`)."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), unique=True)
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claim_token: Mapped[str | None] = mapped_column(String(64))  # the deliverer sending it now
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)  # then another may take it
    last_error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)


class WebhookAttempt(Timestamped, Base):
    __tablename__ = "webhook_attempts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    delivery_id: Mapped[str | None] = mapped_column(String(64))  # the header the receiver got
    attempt: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    replay: Mapped[bool] = mapped_column(Boolean, default=False)


class TotpCode(Timestamped, Base):
    __tablename__ = "totp_codes"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    totp_identifier: Mapped[str] = mapped_column(String(500))
    code: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(64))
    workflow_run_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(200))
    otp_type: Mapped[str] = mapped_column(String(16), default="totp")
    expired_at: Mapped[datetime | None] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (Index("ix_totp_org_identifier", "organization_id", "totp_identifier"),)


class Credential(Timestamped, Base):
    """A stored credential: `secret_encrypted` holds the secret fields (Fernet over JSON); `public`
    holds only what responses may show (username, last four, label)."""

    __tablename__ = "credentials"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    credential_type: Mapped[str] = mapped_column(String(32))
    public: Mapped[dict[str, Any]] = mapped_column(JSON)
    secret_encrypted: Mapped[str] = mapped_column(Text)


class BrowserProfile(Timestamped, Base):
    """A saved browser state (`bp_`): Playwright's storage_state (cookies, origins' localStorage),
    encrypted like credentials. Names are unique among an organization's profiles that are not deleted."""

    __tablename__ = "browser_profiles"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    browser_session_id: Mapped[str | None] = mapped_column(String(64), index=True)  # the source, if any
    workflow_run_id: Mapped[str | None] = mapped_column(String(64))
    storage_state_encrypted: Mapped[str] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class BrowserSession(Timestamped, Base):
    """A persistent browser (`pbs_`) held by one worker; statuses change only via app/sessions/lifecycle.py.
    `cdp_url` is the holder's internal DevTools endpoint: never shown, the API relays to it."""

    __tablename__ = "browser_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    timeout_minutes: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)  # started_at + timeout, pushed by extend
    url: Mapped[str | None] = mapped_column(Text)
    browser_profile_id: Mapped[str | None] = mapped_column(String(64))
    generate_browser_profile: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # accepted, not acted on
    warning: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    worker_queue: Mapped[str | None] = mapped_column(String(200))
    cdp_url: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    runnable_type: Mapped[str | None] = mapped_column(String(32))
    runnable_id: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)


class Workflow(Timestamped, Base):
    """One version of a workflow ("agent"): `id` is the version (`w_`), `workflow_permanent_id` (`wpid_`)
    names all versions of it. An update adds a row with the next version; runs keep the version they
    started with. `definition` is the author's WorkflowCreateYAMLRequest, validated, defaults filled.
    Deleting a workflow marks every version `deleted_at`."""

    __tablename__ = "workflows"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workflow_permanent_id: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(32))
    folder_id: Mapped[str | None] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("workflow_permanent_id", "version", name="uq_workflows_permanent_id_version"),
        Index("ix_workflows_org_permanent_id", "organization_id", "workflow_permanent_id"),
    )


class WorkflowRunBlock(Timestamped, Base):
    """One block of a workflow run as it ran (`wrb_`): a loop's blocks are children of the loop's row
    (`parent_id`), one per iteration (`loop_index`, `loop_value`). Written by the engine
    (workers/workflows/) as each block starts and ends, so a run's progress is readable while it runs."""

    __tablename__ = "workflow_run_blocks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    parent_id: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    block_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)  # the order blocks started in, within the run
    loop_index: Mapped[int | None] = mapped_column(Integer)
    loop_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    output: Mapped[Any] = mapped_column(JSON, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class Folder(Timestamped, Base):
    """A folder (`fld_`) grouping an organization's workflows: each workflow version's `folder_id` names it.
    Deleting one marks it `deleted_at` and takes its workflows out of it (or deletes them)."""

    __tablename__ = "folders"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class Script(Timestamped, Base):
    """A recorded script (`s_`, app/scripts): the runs with the same `cache_key` replay its newest
    revision. Deleting it (soft) clears the cache key: the next run records afresh."""

    __tablename__ = "scripts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    cache_key: Mapped[str] = mapped_column(String(500))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (Index("ix_scripts_org_cache_key", "organization_id", "cache_key"),)


class ScriptRevision(Timestamped, Base):
    """One version of a script (`sr_`): recorded by a run, rewritten by a healed run, or deployed."""

    __tablename__ = "script_revisions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    script_id: Mapped[str] = mapped_column(ForeignKey("scripts.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(String(64))  # the run that recorded it; None when deployed


class ScriptFile(Timestamped, Base):
    """A file of a revision: `script.json` (what replay reads) and `main.py` (the standalone export)."""

    __tablename__ = "script_files"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision_id: Mapped[str] = mapped_column(ForeignKey("script_revisions.id"), index=True)
    path: Mapped[str] = mapped_column(String(500))
    content: Mapped[str] = mapped_column(Text)
    mime_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 hex


class WorkflowSchedule(Timestamped, Base):
    """A schedule (`wfs_`) that starts runs of a workflow's current version at the slots of a cron
    expression read in `timezone`. `next_fire_at` is the earliest slot not yet fired (naive UTC; moved on
    by the scheduler, or to the next slot from now by create, update and enable). `api_key_encrypted`
    is the key of whoever last saved the schedule: its runs' webhooks are signed with it, as a run
    started through the API would be."""

    __tablename__ = "workflow_schedules"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    workflow_permanent_id: Mapped[str] = mapped_column(String(64))
    cron_expression: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean)
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    name: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    next_fire_at: Mapped[datetime] = mapped_column(DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index("ix_workflow_schedules_org_permanent_id", "organization_id", "workflow_permanent_id"),
        Index("ix_workflow_schedules_due", "enabled", "next_fire_at"),
    )


class ScheduleFiring(Base):
    """One slot of one schedule, claimed by the process that fires it: the unique (schedule_id, slot_at)
    makes every slot start at most one run, whichever processes see it due. `run_id` is the run it
    started (in the same transaction), or `error` says why none was started."""

    __tablename__ = "schedule_firings"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("workflow_schedules.id"))
    slot_at: Mapped[datetime] = mapped_column(DateTime)
    run_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("schedule_id", "slot_at", name="uq_schedule_firings_slot"),)
