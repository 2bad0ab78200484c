"""The viewer's sign-in and pages over HTTP, on SQLite and PostgreSQL (Chromium drives them in
tests/e2e/test_viewer.py): the cookie's attributes, redirects that stay on this site, revoked keys, runs
waiting for a person."""

from __future__ import annotations

import re
from typing import Any

from app.accounts.service import list_api_keys, revoke_api_key
from app.db.engine import session_scope
from tests.integration.api.conftest import Api

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(api: Api, key: str, next_path: str = "/runs") -> Any:
    api.client.cookies.clear()
    form = api.client.get("/signin")
    token = TOKEN.search(form.text)
    assert form.status_code == 200 and token
    return api.client.post("/signin", data={"api_key": key, "csrf_token": token[1], "next": next_path},
                           follow_redirects=False)


def test_the_session_cookie_is_httponly_strict_and_expires(api: Api) -> None:
    response = sign_in(api, api.api_key)
    assert response.status_code == 303 and response.headers["location"] == "/runs"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("wayfarer_session="))
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes and attributes["samesite"].lower() == "samesite=strict"
    assert attributes["max-age"] == f"Max-Age={api.settings.web_session_seconds}"
    assert api.api_key not in cookie
    page = api.client.get("/runs")
    assert page.status_code == 200 and "Sign out" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_sign_in_goes_back_only_to_a_page_of_this_site(api: Api) -> None:
    for hostile in ("//evil.example/runs", "https://evil.example/", "/\\evil.example", "runs"):
        assert sign_in(api, api.api_key, hostile).headers["location"] == "/runs"
    assert sign_in(api, api.api_key, "/runs?status=failed").headers["location"] == "/runs?status=failed"


def test_a_revoked_key_signs_its_viewers_out(api: Api) -> None:
    key = api.new_key("revoked-viewer")
    assert sign_in(api, key).status_code == 303
    assert api.client.get("/runs", follow_redirects=False).status_code == 200
    with session_scope(api.settings.database_url) as s:
        (row,) = [k for k in list_api_keys(s, None) if key.startswith(k.key_prefix) and not k.revoked_at]
        revoke_api_key(s, row.id)
    answer = api.client.get("/runs", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/signin?next=")


def test_a_run_waiting_for_a_person_is_listed_as_waiting(api: Api) -> None:
    run_id = api.create(prompt="Solve the puzzle only a person can")["run_id"]
    api.set_run(run_id, status="paused")
    sign_in(api, api.api_key)
    listed = api.client.get("/runs", params={"status": "paused"})
    assert listed.status_code == 200
    assert run_id in listed.text and "Waiting for a person" in listed.text
    page = api.client.get(f"/runs/{run_id}")
    assert "Waiting for a person" in page.text and "Cancel run" in page.text


def test_the_runs_list_and_the_run_page_show_what_a_run_cost_and_its_summary(api: Api) -> None:
    priced = api.create(prompt="A run with a price")["run_id"]
    api.set_run(priced, status="completed", prompt_tokens=12000, completion_tokens=300, llm_calls=4,
                llm_cost=0.00198, summary="Signed the guest book.")
    unpriced = api.create(prompt="A run without a price")["run_id"]
    sign_in(api, api.api_key)
    rows = {row.split("</tr>")[0] for row in api.client.get("/runs").text.split("<tr>")}
    (priced_row,) = [row for row in rows if priced in row]
    (unpriced_row,) = [row for row in rows if unpriced in row]
    assert 'data-label="Cost" class="num">$0.0020<' in priced_row
    assert 'data-label="Cost" class="num">—<' in unpriced_row
    page = api.client.get(f"/runs/{priced}").text
    assert "Signed the guest book." in page and "$0.0020 (estimated from WAYFARER_LLM_PRICES)" in page
    assert "12,000 prompt + 300 completion in 4 LLM calls" in page


def test_the_run_page_says_what_a_replay_did(api: Api) -> None:
    replayed = api.create(prompt="A replayed run", run_with="code")["run_id"]
    api.set_run(replayed, status="completed", script_run={
        "script_id": "s_1", "script_revision_id": "sr_2", "ai_fallback_triggered": True, "steps_replayed": 3,
        "steps_healed": 1, "llm_calls": 1, "tokens_saved_estimate": 900})
    sign_in(api, api.api_key)
    page = api.client.get(f"/runs/{replayed}").text
    assert "<code>s_1</code> (replayed): 3 steps replayed, 1 healed, 1 LLM call" in page
