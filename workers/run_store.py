"""The agent's RunStore backed by the database and the artifact store (through app.artifacts.writer)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.artifacts.store import ArtifactStore
from app.artifacts.writer import Owner, new_artifact_id, save
from app.credentials.authenticator import current_code
from app.credentials.vault import CredentialValues
from app.db.engine import session_scope
from app.db.models import Action, Run, Step, TotpCode, utcnow
from app.platform.observability import bind_step, record_step
from app.platform.security import decrypt, sign_hex
from app.platform.settings import Settings
from app.platform.url_policy import UrlDenied, fetch, parse_policy
from app.runs import ids
from workers.agent.contract import ReplayMark, StepUsage
from workers.write_behind import WriteBehind


@dataclass(frozen=True)
class RunIdentity:
    run_id: str
    organization_id: str
    started_at: datetime
    totp_identifier: str | None = None
    totp_url: str | None = None
    webhook_key_encrypted: str | None = None


_TEXT_TYPES = ("text/", "application/json")


class DbRunStore:
    def __init__(self, settings: Settings, artifacts: ArtifactStore, run: RunIdentity) -> None:
        self._settings = settings
        self._artifacts = artifacts
        self._run = run
        self._step_index: dict[str, int] = {}
        self.last_outcome: str | None = None  # the last action's history line, for failure reasons
        self.steps_started = 0
        self.tokens_used = 0  # LLM tokens of the run so far (WAYFARER_RUN_MAX_TOKENS)
        self.llm_calls = 0  # LLM calls of the run so far (a replay's script_run reports them)
        self._writes = WriteBehind(settings.database_url)
        self._credential: CredentialValues | None = None
        self._block_id: str | None = None  # the workflow block the agent is running, if any
        self._step_base = 0  # steps of the workflow's earlier blocks: each block's agent counts from 0

    def begin_block(self, block_id: str | None) -> None:
        """The steps from now on belong to this workflow block, numbered on from the run's last step."""
        self._block_id = block_id
        self._step_base = self.steps_started

    def use_credential(self, credential: CredentialValues | None) -> None:
        """From now on, type this credential's values for its placeholders and keep them out of records."""
        self._credential = credential

    def reveal(self, text: str) -> str:
        return self._credential.reveal(text) if self._credential else text

    def _redact(self, text: str) -> str:
        return self._credential.redact(text) if self._credential else text

    def _redact_bytes(self, data: bytes, content_type: str) -> bytes:
        if self._credential is None or not content_type.startswith(_TEXT_TYPES):
            return data
        return self._redact(data.decode("utf-8", errors="replace")).encode()

    def _db(self) -> Any:
        return session_scope(self._settings.database_url)

    async def start_step(self, index: int, url: str) -> str:
        index += self._step_base
        step_id = ids.new_id(ids.STEP)
        self._step_index[step_id] = index
        self.steps_started = index + 1
        bind_step(index)

        def write(s: Session) -> None:
            s.add(Step(id=step_id, run_id=self._run.run_id, index=index, url=url,
                       workflow_run_block_id=self._block_id))
            s.execute(update(Run).where(Run.id == self._run.run_id).values(step_count=index + 1))

        self._writes.submit(write)
        return step_id

    def _owner(self, step_id: str | None) -> Owner:
        index = self._step_index.get(step_id) if step_id else None
        return Owner(self._run.organization_id, self._run.run_id, step_id, index)

    async def save_artifact(self, step_id: str | None, artifact_type: str, data: bytes,
                            content_type: str, filename: str | None = None) -> str:
        artifact_id = new_artifact_id()
        owner = self._owner(step_id)
        data = self._redact_bytes(data, content_type)
        self._writes.submit(lambda s: save(s, self._artifacts, owner, artifact_type, data, content_type,
                                           filename=filename, artifact_id=artifact_id))
        return artifact_id

    async def save_artifact_file(self, step_id: str | None, artifact_type: str, path: Path,
                                 content_type: str, filename: str | None = None) -> str:
        """Stored before flush() returns; the file must stay in place until then."""
        artifact_id = new_artifact_id()
        owner = self._owner(step_id)
        self._writes.submit(lambda s: save(s, self._artifacts, owner, artifact_type, path, content_type,
                                           filename=filename, artifact_id=artifact_id))
        return artifact_id

    async def record_action(self, step_id: str, index: int, action_type: str, arguments: dict[str, Any],
                            reasoning: str | None, succeeded: bool, outcome: str,
                            replay: ReplayMark | None = None) -> None:
        if self._credential is not None:
            arguments = json.loads(self._redact(json.dumps(arguments)))
            reasoning = self._redact(reasoning) if reasoning else reasoning
            outcome = self._redact(outcome)
        self.last_outcome = outcome
        action = Action(id=ids.new_id(ids.ACTION), run_id=self._run.run_id, step_id=step_id, index=index,
                        action_type=action_type, arguments=arguments, reasoning=reasoning,
                        succeeded=succeeded, outcome=outcome, replay=replay)
        self._writes.submit(lambda s: s.add(action))

    async def finish_step(self, step_id: str, usage: StepUsage, harness_ms: int) -> None:
        record_step(usage.prompt_tokens, usage.completion_tokens, usage.llm_calls, usage.llm_ms, harness_ms)
        self.tokens_used += usage.prompt_tokens + usage.completion_tokens
        cost = self._settings.llm_cost(usage.prompt_tokens, usage.completion_tokens)
        run_cost = {} if cost is None else {"llm_cost": func.coalesce(Run.llm_cost, 0.0) + cost}
        self.llm_calls += usage.llm_calls

        def write(s: Session) -> None:
            s.execute(update(Step).where(Step.id == step_id).values(
                prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                llm_calls=usage.llm_calls, llm_cost=cost, llm_ms=usage.llm_ms, harness_ms=harness_ms,
                modified_at=utcnow()))
            s.execute(update(Run).where(Run.id == self._run.run_id).values(
                prompt_tokens=Run.prompt_tokens + usage.prompt_tokens,
                completion_tokens=Run.completion_tokens + usage.completion_tokens,
                llm_calls=Run.llm_calls + usage.llm_calls, **run_cost))

        self._writes.submit(write)

    async def flush(self) -> None:
        """Wait until everything recorded so far is stored (raises if it could not be)."""
        await self._writes.flush()

    async def verification_code(self) -> str | None:
        """A code from the credential's authenticator secret, else a pushed one, else from totp_url."""
        if self._credential is not None and self._credential.totp_secret:
            return current_code(self._credential.totp_secret)
        deadline = time.monotonic() + self._settings.totp_wait_seconds
        while True:
            code = await asyncio.to_thread(self._take_pushed_code)
            if code is None and self._run.totp_url:
                code = await self._pull_code()
            if code is not None or time.monotonic() >= deadline:
                return code
            await asyncio.sleep(1.0)

    def _take_pushed_code(self) -> str | None:
        if not self._run.totp_identifier:
            return None
        with self._db() as s:
            row = s.scalars(
                select(TotpCode)
                .where(TotpCode.organization_id == self._run.organization_id,
                       TotpCode.totp_identifier == self._run.totp_identifier,
                       TotpCode.used_at.is_(None),
                       (TotpCode.expired_at.is_(None)) | (TotpCode.expired_at > utcnow()))
                .order_by(TotpCode.created_at.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            row.used_at = utcnow()
            return row.code

    async def _pull_code(self) -> str | None:
        """Ask the run's totp_url, signed like a webhook, for a code."""
        assert self._run.totp_url
        body = json.dumps({"task_id": self._run.run_id}, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "x-skyvern-timestamp": str(int(time.time()))}
        if self._run.webhook_key_encrypted:
            key = decrypt(self._settings.resolved_secret_key(), self._run.webhook_key_encrypted)
            headers["x-skyvern-signature"] = sign_hex(key, body)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await fetch(client, "POST", self._run.totp_url,
                                       parse_policy(self._settings.url_policy), content=body, headers=headers)
            code = response.json().get("verification_code") if response.status_code == 200 else None
        except UrlDenied:
            raise  # no code will ever come from there: the action says why
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return str(code) if code else None
