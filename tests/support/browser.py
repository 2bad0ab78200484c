"""Settings for tests that drive Chromium directly (short timeouts, no background DNS)."""

from __future__ import annotations

from pathlib import Path

from app.platform.settings import Settings
from tests.support.stack import TEST_CHROMIUM_ARGS


def browser_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, chromium_args=TEST_CHROMIUM_ARGS, action_timeout_ms=2000,
                    step_settle_timeout_ms=2000, navigation_timeout_ms=8000,
                    allow_local_files=True)  # the upload tests attach files from tmp_path too
