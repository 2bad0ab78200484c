"""Where links point (app/platform/public_url.py): the setting, else the request's address, else serve's."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.platform.public_url import (
    SERVE_URL_VARIABLE,
    announce_serve_url,
    public_base_url,
    require_public_base_url,
    serve_url,
)
from app.platform.settings import InvalidSettings, Settings
from app.runs.views import run_page_url


def _request(host: str, scheme: str = "http") -> Request:
    return Request({"type": "http", "scheme": scheme, "server": ("10.0.0.5", 8791), "path": "/v1/runs",
                    "root_path": "", "headers": [(b"host", host.encode())], "query_string": b""})


def test_the_setting_wins_then_the_request_then_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SERVE_URL_VARIABLE, raising=False)
    with pytest.raises(InvalidSettings, match="WAYFARER_PUBLIC_BASE_URL is unset"):
        public_base_url(Settings())
    announce_serve_url("0.0.0.0", 8791)
    configured = Settings(public_base_url="https://wayfarer.example/")
    assert public_base_url(configured, _request("localhost:8791")) == "https://wayfarer.example"
    assert public_base_url(configured) == "https://wayfarer.example"
    unset = Settings()
    assert public_base_url(unset, _request("localhost:8791", "https")) == "https://localhost:8791"
    assert public_base_url(unset) == "http://127.0.0.1:8791"
    monkeypatch.delenv(SERVE_URL_VARIABLE)


def test_app_url_is_never_null() -> None:
    assert run_page_url(Settings(), "tsk_1", "http://127.0.0.1:8791") == "http://127.0.0.1:8791/runs/tsk_1"
    assert run_page_url(Settings(app_url="https://ui.example/"), "tsk_1",
                        "http://127.0.0.1:8791") == "https://ui.example/runs/tsk_1"


@pytest.mark.parametrize(("host", "url"), [("0.0.0.0", "http://127.0.0.1:8791"),
                                           ("::", "http://127.0.0.1:8791"),
                                           ("::1", "http://[::1]:8791"),
                                           ("wayfarer.internal", "http://wayfarer.internal:8791")])
def test_serve_url_reaches_a_wildcard_listener_on_loopback(host: str, url: str) -> None:
    assert serve_url(host, 8791) == url


def test_redis_needs_the_public_base_url() -> None:
    require_public_base_url(Settings())  # embedded: links come from requests and serve's address
    require_public_base_url(Settings(redis_url="redis://r", public_base_url="https://wayfarer.example"))
    with pytest.raises(InvalidSettings, match="must be set when WAYFARER_REDIS_URL is"):
        require_public_base_url(Settings(redis_url="redis://r"))
