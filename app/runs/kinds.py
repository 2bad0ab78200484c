"""The kinds of run, as Skyvern names them: run types by engine, and the one-off workflows (login,
download_files) that are task runs reported as workflow runs."""

from __future__ import annotations

RUN_TYPES = {"skyvern-1.0": "task_v1", "skyvern-2.0": "task_v2", "skyvern-3.0": "task_v3"}
LEGACY_RUN_TYPE = RUN_TYPES["skyvern-1.0"]  # /api/v1/tasks
WORKFLOW_RUN_TYPE = "workflow_run"

LOGIN_WORKFLOW = "login"
DOWNLOAD_FILES_WORKFLOW = "download_files"
