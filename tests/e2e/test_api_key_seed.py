"""WAYFARER_API_KEY seeds one key: restarted with a new value, the server revokes the old one (a leaked
key rotated this way stops working) and keeps keys made with `wayfarer keys create`."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

import httpx

from tests.support.stack import Stack, running_stack
from tests.unit.test_cli import WAYFARER


def _keys(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([WAYFARER, "keys", *args], env=stack.env, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    assert result.returncode == 0, result.stderr
    return result


def _states(stack: Stack) -> dict[str, str]:
    """Key prefix -> active/revoked, from `wayfarer keys list`."""
    rows = [line.split() for line in _keys(stack, "list").stdout.splitlines()[1:]]
    return {row[2].rstrip("…"): row[-1] for row in rows}


def _status(stack: Stack, key: str) -> int:
    return httpx.get(f"{stack.base_url}/v1/runs", headers={"x-api-key": key}, timeout=10).status_code


def _restart_with(stack: Stack, key: str) -> None:
    stack.kill("api", signal.SIGTERM)
    stack.env["WAYFARER_API_KEY"] = stack.api_key = key
    stack.start_api()


def test_a_new_api_key_setting_replaces_the_seeded_key(tmp_path: Path) -> None:
    with running_stack(tmp_path, llm_base_url=None) as stack:
        first = stack.api_key
        made = _keys(stack, "create").stdout.strip()
        second = f"wf_test_{uuid.uuid4().hex}"
        _restart_with(stack, second)

        assert _status(stack, first) == 403
        assert _status(stack, second) == 200 and _status(stack, made) == 200
        assert _states(stack) == {first[:12]: "revoked", second[:12]: "active", made[:12]: "active"}
        log = (stack.log_dir / "api.log").read_text()
        assert "WAYFARER_API_KEY changed: the key it seeded before" in log and first not in log

        _restart_with(stack, second)  # the same value again changes nothing
        assert _states(stack) == {first[:12]: "revoked", second[:12]: "active", made[:12]: "active"}
        assert (stack.log_dir / "api.log").read_text().count("WAYFARER_API_KEY changed") == 1
