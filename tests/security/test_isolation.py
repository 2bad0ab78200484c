"""Tenant isolation: every route, called with organization B's key and organization A's ids, answers 404
and shows nothing of A; artifact links cannot be tampered with, outlive their expiry, or be moved to
another artifact."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi.routing import APIRoute

from app.main import create_app
from app.platform.settings import Settings
from tests.security.conftest import Tenants

# Bodies that pass validation, so that the ownership check (not the body check) decides the answer.
CREDENTIAL_BODY = {"name": "x", "credential_type": "password",
                   "credential": {"username": "u", "password": "p"}}
PUBLIC_PATHS = {"/v1/version", "/api/v1/heartbeat", "/healthz", "/metrics", "/openapi.json", "/docs",
                "/docs/oauth2-redirect", "/redoc", "/", "/signin", "/signout"}


def _is_page(path: str) -> bool:
    """The viewer's pages (app/web), reached with a session cookie instead of x-api-key."""
    return not path.startswith(("/v1/", "/api/"))


@contextmanager
def _signed_in(base_url: str, key: str) -> Iterator[tuple[httpx.Client, str]]:
    """A browser-like client signed in to the viewer with `key`, and its session's CSRF token."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        form = client.get("/signin")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token, form.text
        assert client.post("/signin", data={"api_key": key, "csrf_token": token[1]}).status_code == 303
        page = client.get("/runs")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert page.status_code == 200 and csrf, page.text
        yield client, csrf[1]


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """The app's API routes, also those inside included routers (our routers have no prefix)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # FastAPI >= 0.165 keeps included routers whole
            found += _api_routes(route.original_router.routes)
    return found


def _routes() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite://"))
    return sorted({(method, route.path) for route in _api_routes(app.routes)
                   for method in route.methods - {"HEAD"}})


def _body_for(path: str, ids: dict[str, str]) -> dict[str, Any] | None:
    """A well-formed body naming A's resources where the route takes ids in its body."""
    if path.endswith("/update") or path == "/v1/credentials":
        return CREDENTIAL_BODY
    if path.startswith("/v1/browser_profiles"):
        return {"name": "B's profile"}
    if path.endswith("/deploy"):
        return {"files": [{"path": "main.py", "content": "cHJpbnQoKQ=="}]}
    if "/schedules" in path and not path.endswith(("/enable", "/disable")):
        return {"cron_expression": "0 9 1 1 *", "timezone": "UTC"}
    if path.endswith("/folder"):
        return {"folder_id": ids["folder_id"]}
    if path.startswith("/v1/folders/"):
        return {"title": "B's folder"}
    if path.startswith(("/v1/agents/", "/v1/workflows/")):  # a definition update: the id decides first
        return {"title": "B's workflow"}
    if path.endswith("/extend"):
        return {"additional_minutes": 5}
    if path.startswith("/v1/browser_sessions/"):
        return {"generate_browser_profile": True}
    if path == "/v1/runs/cancel":
        return {"run_ids": [ids["run_id"]]}
    if path.endswith("/totp"):
        return {"totp_identifier": "b@example.com", "content": "654321", "task_id": ids["run_id"]}
    if path == "/v1/run/tasks/login":
        return {"credential_type": "skyvern", "credential_id": ids["credential_id"],
                "url": "http://127.0.0.1:9/"}
    if path == "/v1/run/tasks/download_files":
        return {"navigation_goal": "x", "url": "http://127.0.0.1:9/"}
    if path in {"/v1/run/tasks", "/api/v1/tasks"}:
        return {"prompt": f"x {ids['run_id']}", "url": "http://127.0.0.1:9/",
                "navigation_goal": "x", "data_extraction_schema": None}
    return None


def test_every_route_hides_the_other_organizations_resources(tenants: Tenants) -> None:
    ids = tenants.ids
    a_ids = set(ids.values())
    checks: list[str] = []
    leaks: list[str] = []
    with _signed_in(tenants.stack.base_url, tenants.other_key) as (viewer, csrf), httpx.Client(
            base_url=tenants.stack.base_url, headers={"x-api-key": tenants.other_key}, timeout=30) as other:
        for method, path in _routes():
            if path in PUBLIC_PATHS:
                continue
            params = re.findall(r"{(\w+)}", path)
            missing = [name for name in params if name not in ids]
            assert not missing, f"{method} {path}: no id of organization A for {missing}: add one"
            url = path.format(**ids)
            body = _body_for(path, ids)
            if _is_page(path):  # a form carries the session's CSRF token, so ownership decides
                form = {"csrf_token": csrf} if method == "POST" else None
                response = viewer.request(method, url, data=form)
            elif path == "/v1/upload_file" or path == "/api/v1/upload_file":
                response = other.post(url, files={"file": ("b.txt", b"B")})
            else:
                response = other.request(method, url, json=body)
            checks.append(f"{method} {path}")
            if params and response.status_code != 404:
                leaks.append(f"{method} {url} -> {response.status_code} {response.text[:200]}")
            echoed = json.dumps(body)  # an id B sent may come back (as "failed"); any other is a leak
            if response.status_code < 300 and any(a_id in response.text and a_id not in echoed
                                                  for a_id in a_ids):
                leaks.append(f"{method} {url} shows an id of organization A: {response.text[:200]}")
    print(f"isolation: {len(checks)} route checks with organization B's key, {len(leaks)} leaks")
    assert len(checks) >= 20
    assert not leaks, "\n".join(leaks)
    with tenants.stack.client() as owner:  # still there for A: the 404s were not deletions
        assert owner.get(f"/v1/runs/{ids['run_id']}").status_code == 200
        assert owner.get(f"/v1/credentials/{ids['credential_id']}").status_code == 200


def _signed_links(tenants: Tenants) -> list[str]:
    run = tenants.run
    links = [*(run["screenshot_urls"] or []), run["recording_url"]]
    assert links and all(links)
    return links


def test_signed_links_work_without_a_key_and_reveal_no_storage_path(tenants: Tenants) -> None:
    for link in _signed_links(tenants):
        assert httpx.get(link, timeout=10).status_code == 200
        assert str(tenants.data_dir) not in link and "wayfarer-data" not in link
        assert tenants.run["run_id"] not in link  # storage keys are {org}/{run}/...: no part of one shows


def test_tampered_expired_and_moved_links_are_403(tenants: Tenants) -> None:
    link = _signed_links(tenants)[0]
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    artifact_id = parts.path.split("/")[-2]
    base = f"{tenants.stack.base_url}/v1/artifacts"
    flipped = query["signature"][:-1] + ("0" if query["signature"][-1] != "0" else "1")
    with httpx.Client(headers={"x-api-key": tenants.other_key}) as other:
        b_file = other.post(f"{tenants.stack.base_url}/v1/upload_file",
                            files={"file": ("b.txt", b"B")}).json()["file_id"]
    attempts = {
        "tampered signature": f"{base}/{artifact_id}/content?expires={query['expires']}&signature={flipped}",
        "extended expiry": f"{base}/{artifact_id}/content?expires={int(query['expires']) + 1}"
                           f"&signature={query['signature']}",
        "expired": f"{base}/{artifact_id}/content?expires=1000&signature={query['signature']}",
        "another artifact of A": f"{base}/{tenants.ids['file_id']}/content?expires={query['expires']}"
                                 f"&signature={query['signature']}",
        "an artifact of B": f"{base}/{b_file}/content?expires={query['expires']}"
                            f"&signature={query['signature']}",
        "no signature": f"{base}/{artifact_id}/content?expires={query['expires']}",
    }
    for what, url in attempts.items():
        response = httpx.get(url, timeout=10)
        assert response.status_code == 403, (what, response.status_code)
        assert response.json()["detail"] == "Invalid or expired artifact URL"
