"""The webhook body of a final run: GET /v1/runs/{id}'s fields merged with Skyvern's legacy task fields
(the legacy GET /api/v1/tasks/{id} answers the same fields), and the notice that a run waits for a person."""

from __future__ import annotations

import json
from typing import Any

from app.artifacts.links import ArtifactLinks
from app.db.models import Run
from app.platform.public_url import public_base_url
from app.platform.settings import Settings
from app.runs.kinds import WORKFLOW_RUN_TYPE
from app.runs.views import run_artifacts, run_page_url, task_run_response


def _compact(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def build_payload(settings: Settings, run: Run, session: Any, links: ArtifactLinks) -> bytes:
    """get_run's fields (without run_request; with the extensions: summary, token counts, total_cost)
    merged with the fields Skyvern documents for webhooks and its legacy task fields: task_id, prompt,
    url, organization_id, workflow_run_id, proxy_location, webhook_callback_url, ..."""
    artifacts = run_artifacts(session, run.id)
    response = task_run_response(session, run, links, settings, artifacts).model_dump(
        mode="json", exclude={"run_request"})
    finals = [a for a in artifacts if a.artifact_type == "screenshot_final"]
    console = [a for a in artifacts if a.artifact_type == "browser_console_log"]
    downloads = response["downloaded_files"] or []
    legacy = {
        "task_id": run.id,
        "extracted_information": response["output"],
        "action_screenshot_urls": response["screenshot_urls"],
        "screenshot_url": links.url(finals[-1]) if finals else None,
        "browser_console_log_url": links.url(console[-1]) if console else None,
        "downloaded_file_urls": [f["url"] for f in downloads],
        "failure_category": None,
        "webhook_failure_reason": run.webhook_failure_reason,
        "max_steps_per_run": run.max_steps,
        "workflow_run_id": run.id if run.run_type == WORKFLOW_RUN_TYPE else None,
        "title": run.title,
        "url": run.url,
        "prompt": run.prompt,
        "navigation_goal": run.prompt,
        "organization_id": run.organization_id,
        "proxy_location": (run.run_request or {}).get("proxy_location"),
        "webhook_callback_url": run.webhook_url,
    }
    return _compact({**legacy, **response})


def pause_notice(settings: Settings, run: Run, reason: str) -> bytes:
    """What WAYFARER_PAUSE_NOTICE_URL is told when a run waits for a person."""
    return _compact({"event": "run.waiting_for_person", "run_id": run.id,
                     "organization_id": run.organization_id, "status": run.status, "reason": reason,
                     "app_url": run_page_url(settings, run.id, public_base_url(settings))})
