"""The one-off workflows: login (with a vault credential) and download_files. Each is a task run
reported as a workflow run (`wr_` id, run_type workflow_run; `service.WorkflowSource`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.credentials import vault
from app.db.models import Run
from app.dispatch import Dispatcher
from app.platform.settings import Settings
from app.runs import service
from app.runs.kinds import DOWNLOAD_FILES_WORKFLOW, DOWNLOAD_GOAL, LOGIN_GOAL, LOGIN_WORKFLOW
from app.runs.service import RunRejected
from app.schemas.credentials import LoginRequest
from app.schemas.files import DownloadFilesRequest


def start_login(session: Session, settings: Settings, dispatcher: Dispatcher, organization_id: str,
                api_key: str, request: LoginRequest) -> Run:
    """POST /v1/run/tasks/login: RunRejected (400) naming what is missing or unusable; UnknownCredential."""
    if request.credential_type != "skyvern":
        raise RunRejected(
            f"credential_type {request.credential_type!r} is not configured here: this server keeps "
            "credentials in its own vault; store one with POST /v1/credentials and use "
            "credential_type 'skyvern' with its credential_id.")
    if not request.credential_id:
        raise RunRejected("credential_id is required when credential_type is 'skyvern'.")
    if not request.url:
        raise RunRejected("url is required: the page to log in on.")
    credential = vault.require_credential(session, organization_id, request.credential_id)
    if credential.credential_type != "password":
        raise RunRejected(f"credential_id {credential.id} is a {credential.credential_type} credential; "
                          "login needs a password credential.")
    goal = LOGIN_GOAL.format(username=vault.placeholder("username"), password=vault.placeholder("password"))
    if request.prompt:
        goal += f"\nAdditional instructions: {request.prompt}"
    task = request.task_request(
        goal, f"Login with {credential.name}",
        totp_identifier=request.totp_identifier or credential.public.get("totp_identifier"))
    workflow = service.WorkflowSource(LOGIN_WORKFLOW, {
        "credential_type": request.credential_type, "credential_id": credential.id,
        "user_prompt": request.prompt})
    return service.create_task_run(session, settings, dispatcher, organization_id, task, api_key, workflow,
                                   texts={"prompt": request.prompt})


def start_download_files(session: Session, settings: Settings, dispatcher: Dispatcher, organization_id: str,
                         api_key: str, request: DownloadFilesRequest) -> Run:
    """POST /v1/run/tasks/download_files: RunRejected (400) without a url."""
    if not request.url:
        raise RunRejected("url is required: the page to start downloading from.")
    task = request.task_request(DOWNLOAD_GOAL.format(goal=request.navigation_goal), "Download files",
                                max_steps=request.max_steps_per_run)
    workflow = service.WorkflowSource(DOWNLOAD_FILES_WORKFLOW, {
        "navigation_goal": request.navigation_goal, "download_suffix": request.download_suffix,
        "download_timeout": request.download_timeout})
    return service.create_task_run(session, settings, dispatcher, organization_id, task, api_key, workflow,
                                   texts={"navigation_goal": request.navigation_goal})
