"""scripts/services (run by ./scripts/test): PostgreSQL and Redis that are down are started on loopback;
when they cannot be (not installed, not root) it says what to do and fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from tests.support.services import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "services"


def _services(env: dict[str, str], user: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = [shutil.which("runuser") or "runuser", "-u", user, "--"] if user else []
    return subprocess.run([*prefix, shutil.which("bash") or "/bin/bash", str(SCRIPT)], env=env, cwd="/",
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """TMPDIR for the script: where its private PostgreSQL cluster lives (readable by user postgres)."""
    path = Path(tempfile.mkdtemp(prefix="wayfarer-services-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _stop_postgres(data_dir: Path) -> None:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    os.kill(pid, signal.SIGINT)  # fast shutdown
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def test_servers_that_are_down_are_started_on_loopback(state_dir: Path) -> None:
    if not (shutil.which("redis-server") and (shutil.which("pg_lsclusters") or shutil.which("initdb"))):
        pytest.skip("PostgreSQL or Redis is not installed here (installing them is not tested)")
    pg_port, redis_port = free_port(), free_port()
    env = {**os.environ, "TMPDIR": str(state_dir),
           "WAYFARER_TEST_PG_ADMIN": f"postgresql://postgres@127.0.0.1:{pg_port}/postgres",
           "WAYFARER_TEST_REDIS": f"redis://127.0.0.1:{redis_port}"}
    try:
        started = _services(env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"starting a private PostgreSQL on 127.0.0.1:{pg_port}" in started.stdout
        assert f"starting Redis on 127.0.0.1:{redis_port}" in started.stdout
        with psycopg.connect(env["WAYFARER_TEST_PG_ADMIN"]) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert redis.Redis(port=redis_port).ping()

        again = _services(env)  # idempotent: both answer, nothing is started twice
        assert again.returncode == 0 and "starting" not in again.stdout, again.stdout
    finally:
        _stop_postgres(state_dir / "wayfarer-test-services" / f"postgres-{pg_port}")
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(port=redis_port).shutdown(nosave=True)


@pytest.mark.parametrize(("tools", "missing"), [((), "PostgreSQL"), (("pg_isready",), "Redis")])
def test_what_to_do_when_a_server_is_missing_and_cannot_be_installed(
        state_dir: Path, tools: tuple[str, ...], missing: str) -> None:
    """As a user who is not root, on a PATH without the server's programs (the other one running)."""
    if os.geteuid() != 0:
        pytest.skip("runs the script as user nobody, which needs root")
    bin_dir = state_dir / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "env", "seq", "sleep", "dirname", "ls", "sort", "tail", "awk", "mkdir",
                 *tools):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir), "TMPDIR": str(state_dir),
           "WAYFARER_TEST_PG_ADMIN": os.environ.get("WAYFARER_TEST_PG_ADMIN",
                                                    "postgresql://postgres@127.0.0.1:5432/postgres"),
           "WAYFARER_TEST_REDIS": f"redis://127.0.0.1:{free_port()}"}
    result = _services(env, user="nobody")
    assert result.returncode == 1
    package = "postgresql" if missing == "PostgreSQL" else "redis-server"
    assert f"{missing} is not installed: run this as root, or sudo apt-get install {package}" in result.stderr
