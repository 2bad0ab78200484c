"""WAYFARER_URL_POLICY: the parser, DNS pinning, and every outbound path obeying it through the real stack.

The guarded stack denies 127.0.0.1 (so `localhost` is a denied name) and serves the test pages on
127.0.0.2: webhooks, totp_url and file_url aimed at localhost must never arrive at the receiver there.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
from sqlalchemy import select

from app.db.engine import session_scope
from app.db.models import Run
from app.platform.settings import Settings
from app.platform.url_policy import UrlDenied, literal_address_problem, parse_policy, resolve_allowed
from app.webhooks import delivery as webhooks
from tests.e2e.flows import FORM_PATH
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer, serve_sites
from tests.support.stack import Stack, running_stack
from tests.support.webhook_receiver import Receiver, webhook_receiver

SITES_HOST = "127.0.0.2"
GUARDED_POLICY = "deny:127.0.0.1/32"
POLICY_RULE = f"WAYFARER_URL_POLICY rule {GUARDED_POLICY}"
DONE = [{"name": "complete", "args": {"output": {"ok": True}, "summary": "done"}}]


# ---- the parser -----------------------------------------------------------------------------------

def _denied(policy: str, address: str) -> bool:
    return parse_policy(policy).denying_rule(ipaddress.ip_address(address)) is not None


def test_open_denies_nothing_and_routes_nothing() -> None:
    policy = parse_policy("open")
    assert policy.rules == () and not policy.restricts
    assert not _denied("open", "169.254.169.254")


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "::", "fd00::1", "fe80::1",
                                     "::ffff:127.0.0.1", "::ffff:169.254.169.254"])
def test_public_only_denies_non_public_addresses(address: str) -> None:
    assert _denied("public-only", address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_only_allows_public_addresses(address: str) -> None:
    assert not _denied("public-only", address)


def test_the_most_specific_rule_decides_whatever_the_order() -> None:
    for text in ("public-only,allow:10.1.2.0/24", "allow:10.1.2.0/24,public-only"):
        assert not _denied(text, "10.1.2.7")
        assert _denied(text, "10.1.3.7")
    assert _denied("deny:10.0.0.0/8,allow:10.1.0.0/16,deny:10.1.2.0/24", "10.1.2.7")
    rule = parse_policy("deny:10.0.0.0/8").denying_rule(ipaddress.ip_address("10.9.9.9"))
    assert str(rule) == "deny:10.0.0.0/8"


@pytest.mark.parametrize("value", ["closed", "deny:10.0.0.0/33", "block:10.0.0.0/8", "deny:",
                                   "allow:10.0.0.0/8,deny:10.0.0.0/8", "public-only,allow:nope"])
def test_a_bad_policy_stops_start_up_naming_the_setting(value: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="WAYFARER_URL_POLICY"):
        Settings(url_policy=value)


def test_literal_addresses_are_judged_now_and_names_later() -> None:
    policy = parse_policy("public-only")
    assert "deny:169.254.0.0/16" in (literal_address_problem("http://169.254.169.254/latest", policy) or "")
    assert literal_address_problem("http://[::1]:8080/hook", policy)
    assert literal_address_problem("https://localhost/hook", policy) is None  # resolved at use time
    assert literal_address_problem("https://93.184.216.34/hook", policy) is None


def test_a_host_no_idna_can_encode_is_refused_not_a_crash() -> None:
    # schemathesis sent totp_url "ôl" plus a control character: POST /v1/run/tasks answered 500
    assert literal_address_problem("https://\u00f4l\x1f/", parse_policy("public-only")) is None
    with pytest.raises(UrlDenied, match="not a valid URL"):
        resolve_allowed("https://\u00f4l\x1f/", parse_policy("open"))


# ---- DNS pinning ----------------------------------------------------------------------------------

def test_a_name_resolving_to_a_denied_address_is_refused_naming_address_and_rule() -> None:
    with pytest.raises(UrlDenied, match=r"127\.0\.0\.1 \(localhost resolves to it\).*deny:127\.0\.0\.0/8"):
        resolve_allowed("http://localhost:8080/hook", parse_policy("deny:127.0.0.0/8"))


def test_an_allowed_name_is_pinned_to_its_checked_address() -> None:
    target = resolve_allowed("https://localhost:8443/hook?x=1", parse_policy("deny:10.0.0.0/8"))
    assert target.address == "127.0.0.1"
    assert str(target.request_url) == "https://127.0.0.1:8443/hook?x=1"
    assert target.headers == {"Host": "localhost:8443"}
    assert target.extensions == {"sni_hostname": "localhost"}  # TLS verifies the name, not the address


def test_a_webhook_to_a_name_goes_to_the_pinned_address_with_the_names_host_header(
        tmp_path: Path, receiver: Receiver) -> None:
    url = receiver.url.replace("127.0.0.1", "localhost")
    settings = Settings(data_dir=tmp_path, url_policy="deny:10.0.0.0/8")
    result = webhooks._post(settings, url, b"{}", {"Content-Type": "application/json"})
    assert result.delivered, result
    [hook] = receiver.wait_for(1)
    assert hook.headers["host"] == url.split("/")[2]  # localhost:<port>


# ---- the real stack under a policy ----------------------------------------------------------------

@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as rec:
        yield rec


@pytest.fixture(scope="module")
def far_sites() -> Iterator[SiteServer]:
    with serve_sites(SITES_HOST) as site:
        yield site


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    chromium_args = [f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1 , "
                     f"EXCLUDE {SITES_HOST}"]
    with running_stack(tmp_path_factory.mktemp("guarded"), llm_base_url=fake_llm.base_url, extra_env={
            "WAYFARER_URL_POLICY": GUARDED_POLICY, "WAYFARER_CHROMIUM_ARGS": json.dumps(chromium_args),
            "WAYFARER_WEBHOOK_BACKOFF_SECONDS": "0.1"}) as stack:
        yield stack


def _actions(stack: Stack, run_id: str, action_type: str) -> list[dict[str, Any]]:
    with stack.client() as client:
        timeline = client.get(f"/v1/runs/{run_id}/timeline").json()
    actions = [action for entry in timeline if entry["type"] == "block"
               for action in entry["block"]["actions"] if action["action_type"] == action_type]
    return sorted(actions, key=lambda action: action["action_id"])  # ids grow with time


def _webhook_failure_reason(stack: Stack, run_id: str, timeout: float = 20) -> str:
    database_url = f"sqlite:///{Path(stack.env['WAYFARER_DATA_DIR']).resolve() / 'wayfarer.db'}"
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(database_url) as s:
            reason = s.scalar(select(Run.webhook_failure_reason).where(Run.id == run_id))
        if reason:
            return reason
        assert time.monotonic() < deadline, "no webhook outcome\n" + stack.logs()
        time.sleep(0.2)


def _webhook_attempts(stack: Stack, run_id: str) -> list[dict[str, Any]]:
    with stack.client() as client:
        return list(client.get(f"/v1/runs/{run_id}/webhook_attempts").json())


@pytest.mark.parametrize("field", ["webhook_url", "totp_url"])
def test_a_denied_literal_address_is_refused_at_creation_naming_the_field(
        guarded: Stack, receiver: Receiver, field: str) -> None:
    with guarded.client() as client:
        response = client.post("/v1/run/tasks", json={"prompt": "x", field: receiver.url})
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert field in detail and "127.0.0.1" in detail and GUARDED_POLICY in detail


def test_webhook_totp_url_and_file_url_to_a_denied_name_never_reach_it(
        guarded: Stack, fake_llm: FakeLLM, far_sites: SiteServer, receiver: Receiver, token: str) -> None:
    denied = receiver.url.replace("127.0.0.1", "localhost")  # localhost resolves to the denied 127.0.0.1
    attach = {"role": "button", "name": "Attach a file"}
    via_redirect = far_sites.url(f"/redirect?to={denied}")
    fake_llm.script(token, [
        [{"name": "upload_file", "args": {"ref": attach, "file_url": denied}}],
        [{"name": "upload_file", "args": {"ref": attach, "file_url": via_redirect}}],
        [{"name": "verification_code", "args": {"ref": attach}}],
        [{"name": "upload_file", "args": {"ref": attach, "file_url": far_sites.upload_file_url()}}],
        DONE])
    created = guarded.create_run(prompt=f"Attach and verify ({token})", url=far_sites.url("/upload.html"),
                                 webhook_url=denied, totp_url=denied + "/totp")
    run = guarded.wait_final(created["run_id"])
    assert run["status"] == "completed", run.get("failure_reason")

    denied_upload, redirected_upload, allowed_upload = _actions(guarded, run["run_id"], "upload_file")
    [code] = _actions(guarded, run["run_id"], "verification_code")
    for action in (denied_upload, redirected_upload, code):
        assert action["status"] == "failed"
        denied = f"127.0.0.1 (localhost resolves to it) is denied by {POLICY_RULE}"
        assert denied in action["description"], action
    assert allowed_upload["status"] == "completed", allowed_upload  # the policy denies only what it names

    reason = _webhook_failure_reason(guarded, run["run_id"])  # set once delivery has given up
    assert "WAYFARER_URL_POLICY" in reason
    attempts = _webhook_attempts(guarded, run["run_id"])
    assert len(attempts) == 1, attempts  # refused, not retried
    assert attempts[0]["status_code"] is None and "WAYFARER_URL_POLICY" in attempts[0]["error"]
    assert receiver.received == []


def test_a_start_url_on_a_denied_address_fails_the_run_with_the_reason(
        guarded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    fake_llm.script(token, [DONE])
    created = guarded.create_run(prompt=f"Sign ({token})", url=sites.url(FORM_PATH).replace("127.0.0.1",
                                                                                             "localhost"))
    run = guarded.wait_final(created["run_id"])
    assert run["status"] == "failed"
    assert "could not be opened" in run["failure_reason"] and GUARDED_POLICY in run["failure_reason"]
    assert fake_llm.requests_for(token) == []  # the model never saw the page


def test_a_page_cannot_reach_a_denied_address_behind_the_agents_back(
        guarded: Stack, fake_llm: FakeLLM, far_sites: SiteServer, receiver: Receiver, token: str) -> None:
    fake_llm.script(token, [[{"name": "goto_url", "args": {"url": receiver.url}}], DONE])
    beacon = far_sites.url(f"/beacon.html?to={receiver.url}")
    created = guarded.create_run(prompt=f"Look ({token})", url=beacon)
    run = guarded.wait_final(created["run_id"])
    assert run["status"] == "completed", run.get("failure_reason")
    [goto] = _actions(guarded, run["run_id"], "goto_url")
    assert goto["status"] == "failed" and GUARDED_POLICY in goto["description"]
    assert far_sites.wait_for_submission(1)[-1].get("beacon") == "sent"  # the page's script did run
    assert receiver.received == []  # but its request to the denied address was aborted
