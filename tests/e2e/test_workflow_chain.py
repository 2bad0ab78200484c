"""The classic Skyvern chain, through the official SDK: log in with a stored credential, go to the
invoices, extract the list, loop downloading and parsing each invoice's CSV, then mail the total — to a
local SMTP server (aiosmtpd), on the portal in tests/sites with the fake LLM. And the blocks that need no
browser agent: wait, http_request, conditional, code (allowed on this server), file_url_parser."""

from __future__ import annotations

import asyncio
import email
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from skyvern import Skyvern
from skyvern.client.types import NonEmptyPasswordCredential

from tests.fakes.fake_llm import FakeLLM
from tests.sites.portal import INVOICES, PORTAL_PASSWORD, PORTAL_USER
from tests.sites.server import SiteServer
from tests.support.spec import assert_matches_spec
from tests.support.stack import Stack, free_port, running_stack
from tests.support.webhook_receiver import Receiver


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM,
          mailbox: tuple[Mailbox, int]) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("chain")
    with running_stack(tmp, llm_base_url=fake_llm.base_url, extra_env={
            "WAYFARER_SMTP_HOST": "127.0.0.1", "WAYFARER_SMTP_PORT": str(mailbox[1]),
            "WAYFARER_SMTP_STARTTLS": "false", "WAYFARER_ALLOW_CODE_BLOCKS": "true"}) as running:
        yield running


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args}


def chain_yaml(token: str) -> str:
    return f"""
title: Monthly invoices {token}
workflow_definition:
  parameters:
    - key: portal_url
      workflow_parameter_type: string
    - key: portal_login
      workflow_parameter_type: credential_id
    - key: report_to
      workflow_parameter_type: string
  blocks:
    - block_type: login
      label: sign_in
      url: "{{{{ portal_url }}}}/portal/login"
      navigation_goal: "Sign in to the invoice portal ({token}-login)"
      parameter_keys: [portal_login]
    - block_type: navigation
      label: open_invoices
      navigation_goal: "Open the invoices page ({token}-nav)"
    - block_type: extraction
      label: invoices
      data_extraction_goal: "List every invoice number ({token}-extract)"
      data_schema:
        type: object
        properties:
          invoices:
            type: array
            items: {{type: object, properties: {{number: {{type: string}}}}, required: [number]}}
    - block_type: for_loop
      label: each_invoice
      loop_over_parameter_key: invoices_output
      loop_blocks:
        - block_type: file_download
          label: download
          navigation_goal: "Download invoice {{{{ current_value.number }}}} ({token}-download)"
        - block_type: file_url_parser
          label: parse
          file_url: "{{{{ download_output.downloaded_files[0] }}}}"
          file_type: csv
    - block_type: send_email
      label: report
      sender: robot@example.com
      recipients: ["{{{{ report_to }}}}"]
      subject: "Invoices: {{{{ each_invoice_output | length }}}}"
      body: >-
        Total: {{{{ each_invoice_output | map(attribute='parse') | map('first')
        | map(attribute='amount') | map('float') | sum | round(2) }}}}
"""


def test_log_in_extract_loop_download_parse_and_mail_the_total(
        stack: Stack, mailbox: tuple[Mailbox, int], fake_llm: FakeLLM, sites: SiteServer,
        receiver: Receiver, token: str) -> None:
    box, _ = mailbox
    numbers = list(INVOICES)
    fake_llm.script(f"{token}-login", [
        [call("input_text", ref={"role": "textbox", "name": "Email"}, text="{{credential.username}}"),
         call("input_text", ref={"role": "textbox", "name": "Password"}, text="{{credential.password}}")],
        [call("click", ref={"role": "button", "name": "Sign in"})],
        [call("complete", output={"signed_in": True}, summary="Signed in.")],
    ])
    fake_llm.script(f"{token}-nav", [[call("click", ref={"role": "link", "name": "Invoices"})],
                                     [call("complete", output=None, summary="On the invoices page.")]])
    fake_llm.script(f"{token}-extract", [[call("complete", output={
        "invoices": [{"number": number} for number in numbers]}, summary="Three invoices.")]])
    fake_llm.script(f"{token}-download", [
        step for number in numbers for step in (
            [call("download_file", ref={"role": "link", "name": f"Download {number}"})],
            [call("complete", output=None, summary=f"Downloaded {number}.")])])

    async def scenario() -> Any:
        skyvern = Skyvern(base_url=stack.base_url, api_key=stack.api_key)
        stored = await skyvern.create_credential(
            name=f"portal {token}", credential_type="password",
            credential=NonEmptyPasswordCredential(username=PORTAL_USER, password=PORTAL_PASSWORD))
        workflow = await skyvern.create_workflow(yaml_definition=chain_yaml(token))
        return await skyvern.run_workflow(
            workflow.workflow_permanent_id, webhook_url=receiver.url, wait_for_completion=True, timeout=300,
            parameters={"portal_url": sites.url("").rstrip("/"), "portal_login": stored.credential_id,
                        "report_to": "books@example.com"})

    done = asyncio.run(scenario())
    assert done.status == "completed", done.failure_reason
    output = done.output
    assert output is not None and output["sign_in"] == {"signed_in": True}
    assert [item["parse"] for item in output["each_invoice"]] == [
        [{"number": number, "item": "Services", "amount": amount}] for number, amount in INVOICES.items()]
    assert sorted(f.filename for f in done.downloaded_files or []) == [f"{n}.csv" for n in numbers]

    total = round(sum(float(amount) for amount in INVOICES.values()), 2)
    assert len(box.messages) == 1
    mail = box.messages[0]
    assert mail["To"] == "books@example.com" and mail["Subject"] == "Invoices: 3"
    assert mail.get_payload().strip() == f"Total: {total}"
    assert PORTAL_PASSWORD not in str(output)
    assert all(PORTAL_PASSWORD not in str(request) for request in fake_llm.requests)

    with stack.client() as client:
        run = client.get(f"/v1/runs/{done.run_id}").json()
        timeline = client.get(f"/v1/runs/{done.run_id}/timeline").json()
    assert_matches_spec("WorkflowRunResponse", run)
    assert_matches_spec("WorkflowRunTimeline", timeline)
    blocks = [item["block"] for item in timeline if item["type"] == "block"]
    assert [b["label"] for b in blocks] == ["sign_in", "open_invoices", "invoices", "each_invoice", "report"]
    loop = next(item for item in timeline if item["block"]["label"] == "each_invoice")
    children = [(child["block"]["label"], child["block"]["current_index"]) for child in loop["children"]]
    assert children == [(label, index) for index in range(3) for label in ("download", "parse")]
    assert all(item["block"]["status"] == "completed" for item in timeline if item["type"] == "block")
    assert receiver.wait_for(1)


def test_blocks_without_the_agent_branch_compute_and_parse(stack: Stack, sites: SiteServer,
                                                           token: str) -> None:
    definition = {"title": f"No agent {token}", "workflow_definition": {
        "parameters": [{"key": "threshold", "workflow_parameter_type": "integer", "default_value": 1}],
        "blocks": [
            {"block_type": "wait", "label": "pause", "wait_sec": 0},
            {"block_type": "http_request", "label": "echo", "url": sites.url("/headers"),
             "headers": {"X-Workflow": "{{ workflow_run_id }}"}},
            {"block_type": "conditional", "label": "decide", "branch_conditions": [
                {"criteria": {"expression": "{{ echo_output.status_code == 200 }}"},
                 "next_block_label": "compute"},
                {"is_default": True, "next_block_label": "skipped"}]},
            {"block_type": "goto_url", "label": "skipped", "url": sites.url("/never.html")},
            {"block_type": "code", "label": "compute", "code": (
                "headers = {k.lower(): v for k, v in echo_output['body'].items()}\n"
                "result = {'doubled': threshold * 2, 'run': headers['x-workflow']}")},
            {"block_type": "file_url_parser", "label": "parse", "file_url": sites.url("/headers")},
        ]}}

    async def scenario() -> Any:
        skyvern = Skyvern(base_url=stack.base_url, api_key=stack.api_key)
        workflow = await skyvern.create_workflow(json_definition=definition)  # type: ignore[arg-type]
        return await skyvern.run_workflow(workflow.workflow_permanent_id, wait_for_completion=True,
                                          timeout=120)

    done = asyncio.run(scenario())
    assert done.status == "completed", done.failure_reason
    output = done.output
    assert output is not None and "skipped" not in output
    assert output["decide"]["executed_branch_next_block"] == "compute"
    assert output["compute"] == {"doubled": 2, "run": done.run_id}
    assert {key.lower() for key in output["parse"]} >= {"host", "user-agent"}
    with stack.client() as client:
        timeline = client.get(f"/v1/runs/{done.run_id}/timeline").json()
    assert [item["block"]["label"] for item in timeline] == ["pause", "echo", "decide", "compute", "parse"]
