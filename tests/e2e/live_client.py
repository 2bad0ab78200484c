"""A live-view client for the tests, as a program uses the sockets: frames and status on /live,
take control and give back as commands, input on /live/input."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from app.live.messages import frame_header


def ws_url(base_url: str, path: str) -> str:
    return base_url.replace("http", "ws", 1) + path


class LiveClient:
    def __init__(self, base_url: str, run_id: str, api_key: str) -> None:
        self.base_url, self.run_id, self.api_key = base_url, run_id, api_key
        self._connection = connect(ws_url(base_url, f"/v1/runs/{run_id}/live"),
                                   additional_headers={"x-api-key": api_key}, max_size=None)
        self.socket: ClientConnection = self._connection.__enter__()
        self.frames: list[bytes] = []
        self.statuses: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def __enter__(self) -> LiveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._connection.__exit__(None, None, None)

    def pump(self, until: Callable[[], bool], timeout: float = 30) -> None:
        """Read messages until `until()` holds."""
        deadline = time.monotonic() + timeout
        while not until():
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; statuses {self.statuses[-3:]}, errors {self.errors}"
            try:
                message = self.socket.recv(timeout=remaining)
            except TimeoutError:
                continue
            except ConnectionClosed as closed:
                raise AssertionError(f"the server closed the live socket ({closed}); statuses "
                                     f"{self.statuses[-3:]}, {len(self.frames)} frames, "
                                     f"errors {self.errors}") from None
            if isinstance(message, bytes):
                self.frames.append(message)
            else:
                data = json.loads(message)
                if data["type"] == "status":
                    self.statuses.append(data)
                else:
                    self.errors.append(data["detail"])

    def status(self) -> dict[str, Any]:
        return self.statuses[-1] if self.statuses else {}

    def command(self, name: str) -> None:
        self.socket.send(json.dumps({"type": name}))

    def headers(self) -> list[dict[str, object]]:
        return [frame_header(frame) for frame in self.frames]

    def input_socket(self) -> ClientConnection:
        return connect(ws_url(self.base_url, f"/v1/runs/{self.run_id}/live/input"),
                       additional_headers={"x-api-key": self.api_key})
