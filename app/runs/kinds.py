"""The kinds of run, as Skyvern names them: run types by engine, and the one-off workflows (login,
download_files) that are task runs reported as workflow runs."""

from __future__ import annotations

RUN_TYPES = {"skyvern-1.0": "task_v1", "skyvern-2.0": "task_v2", "skyvern-3.0": "task_v3"}
LEGACY_RUN_TYPE = RUN_TYPES["skyvern-1.0"]  # /api/v1/tasks
WORKFLOW_RUN_TYPE = "workflow_run"

LOGIN_WORKFLOW = "login"
DOWNLOAD_FILES_WORKFLOW = "download_files"

# The agent's goals for logging in and downloading: the one-off workflows' and workflow login /
# file_download blocks'.
LOGIN_GOAL = (
    "Log in to this website with the stored credential. Type {username} into the username (or e-mail) "
    "field and {password} into the password field exactly as written here: they are placeholders the "
    "browser fills with the real values when typing. Then submit the form. If the site asks for a "
    "one-time, 2FA or verification code, use the verification_code tool on the code field and submit "
    "it. Call complete as soon as the page shows that you are logged in; terminate if the site rejects "
    "the credential."
)
DOWNLOAD_GOAL = ("{goal}\nThis task succeeds only once a file has been downloaded: use the download_file "
                 "tool on the link or button that downloads it, then call complete.")
