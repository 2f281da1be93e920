"""The hosted approval page behind the OIDC login: the approver's login is the proof of the grant.

The agent calls a production write over Streamable HTTP with its API key and gets a pending approval
with the page's URL; a person logs in at the (local) issuer with the authorization code flow, sees
the plan and approves; the approval decision is a fresh login whose ID token carries the statement
digest as its nonce; the agent's next call verifies that token again and runs the write once.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp_types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client

from opsgate.config import ApprovalSettings
from opsgate.server import build_app
from tests.support import testkit
from tests.support.loopback import serve_http

from .conftest import API_KEY, Hosted, hosted_settings
from .issuer import LocalIssuer

CLIENT_ID = "opsgate-approval-page"
WRITE = {"namespace": "shop", "service": "checkout", "value": 3, "dry_run": False}
ALICE = {"sub": "user-0001", "preferred_username": "alice@example.com", "roles": ["sre"]}


@pytest.fixture
async def page(tmp_path: Path, issuer: LocalIssuer) -> AsyncIterator[tuple[Hosted, testkit.Ledger]]:
    settings = hosted_settings(tmp_path, issuer)
    settings.approvals = ApprovalSettings(oidc_client_id=CLIENT_ID, approvers_file=tmp_path / "approvers.yaml")
    ledger = testkit.Ledger()
    app = build_app(settings, [], capabilities=[testkit.build(ledger)], http=True)
    with serve_http(app, settings) as url:
        yield Hosted(app=app, url=url, issuer=issuer, settings=settings), ledger
    await app.aclose()
    issuer.login_as = dict(ALICE)


async def _agent_call(hosted: Hosted, arguments: dict[str, Any]) -> Any:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as http,
        Client(streamable_http_client(hosted.url, http_client=http)) as client,
    ):
        return await client.call_tool("testkit_write", arguments)


async def _request(hosted: Hosted, value: int = 3) -> tuple[str, str]:
    pending = await _agent_call(hosted, {**WRITE, "value": value})
    meta = pending.meta or {}
    assert meta.get("opsgate/outcome") == "pending_approval", pending.content[0].text
    approval = meta["opsgate/approval"]
    assert approval["url"] in pending.content[0].text
    return str(approval["id"]), str(approval["url"])


async def _browser_decides(url: str, decision: str = "approve") -> httpx.Response:
    """A person opens the page, logs in, reads the plan and presses a button (cookies kept, redirects followed)."""
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as browser:
        shown = await browser.get(url)
        assert shown.status_code == 200, shown.text
        assert "testkit_write" in shown.text and "requested by" in shown.text and "agent@ci" in shown.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', shown.text)
        assert csrf is not None, shown.text
        return await browser.post(url + "/decide", data={"csrf": csrf.group(1), "decision": decision})


async def test_approval_on_the_page_lets_the_agent_write_once(
    page: tuple[Hosted, testkit.Ledger], issuer: LocalIssuer
) -> None:
    hosted, ledger = page
    issuer.login_as = dict(ALICE)
    approval_id, url = await _request(hosted)
    logins = issuer.logins
    decided = await _browser_decides(url)
    assert decided.status_code == 200 and "You approved" in decided.text, decided.text
    assert issuer.logins == logins + 2, "viewing is one login, the decision a fresh one"
    done = await _agent_call(hosted, {**WRITE, "approval_id": approval_id})
    assert not done.is_error, done.content[0].text
    assert ledger.executed == [{"tool": "testkit_write", "value": 3, "dry_run": False}]
    record = hosted.app.gate.audit.tail(1)[0].record
    assert record["approval"]["channel"] == "oidc" and record["approval"]["granted_by"] == "user-0001"
    assert record["approval"]["roles"] == ["sre"]
    again = await _agent_call(hosted, {**WRITE, "approval_id": approval_id})
    assert again.is_error and "already used" in again.content[0].text
    assert len(ledger.executed) == 1


@pytest.mark.parametrize(
    ("person", "refusal"),
    [
        ({"sub": "user-0002", "preferred_username": "dev@example.com", "roles": ["developer"]}, "do not include sre"),
        ({"sub": "agent@ci", "preferred_username": "ci@example.com", "roles": ["sre"]}, "nobody approves their own"),
        ({"sub": "user-0003", "preferred_username": "agent@ci\u200b", "roles": ["sre"]}, "nobody approves their own"),
    ],
)
async def test_the_page_refuses_wrong_roles_and_self_approval(
    page: tuple[Hosted, testkit.Ledger], issuer: LocalIssuer, person: dict[str, Any], refusal: str
) -> None:
    hosted, ledger = page
    issuer.login_as = person
    approval_id, url = await _request(hosted)
    decided = await _browser_decides(url)
    assert decided.status_code == 403 and refusal in decided.text, decided.text
    result = await _agent_call(hosted, {**WRITE, "approval_id": approval_id})
    assert result.is_error and "still pending" in result.content[0].text
    assert ledger.executed == []


async def test_an_id_token_for_one_approval_does_not_grant_another(
    page: tuple[Hosted, testkit.Ledger], issuer: LocalIssuer, tmp_path: Path
) -> None:
    """The agent copies a real page grant's ID token onto its own pending approval in the store."""
    hosted, ledger = page
    issuer.login_as = dict(ALICE)
    first, url = await _request(hosted, value=3)
    assert (await _browser_decides(url)).status_code == 200
    second, _ = await _request(hosted, value=4)
    with sqlite3.connect(hosted.settings.state_dir / "approvals.db") as db:
        db.execute(
            "UPDATE approvals SET status='granted', decided_by='user-0001', decided_roles='[\"sre\"]', channel='oidc',"
            " proof=(SELECT proof FROM approvals WHERE id=?) WHERE id=?",
            (first, second),
        )
    result = await _agent_call(hosted, {**WRITE, "value": 4, "approval_id": second})
    assert result.is_error and "different approval decision" in result.content[0].text, result.content[0].text
    assert ledger.executed == []


async def test_the_page_needs_a_login_and_a_fresh_form(page: tuple[Hosted, testkit.Ledger]) -> None:
    hosted, _ = page
    _, url = await _request(hosted)
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as anonymous:
        shown = await anonymous.get(url)
        assert shown.status_code == 302 and shown.headers["location"].startswith(hosted.issuer.issuer)
        forged = await anonymous.post(url + "/decide", data={"csrf": "x", "decision": "approve"})
        assert forged.status_code == 403


async def test_url_elicitation_points_at_the_page_and_the_call_goes_on_once_approved(
    page: tuple[Hosted, testkit.Ledger], issuer: LocalIssuer, wire_mode: str
) -> None:
    """URL-mode elicitation: the client shows the approval page's URL; the approver approves there
    while the call waits; the client answers and the same call runs the write (its proof verified)."""
    hosted, ledger = page
    issuer.login_as = dict(ALICE)
    shown: list[str] = []

    async def on_elicit(context: ClientRequestContext, params: mcp_types.ElicitRequestParams) -> Any:
        assert isinstance(params, mcp_types.ElicitRequestURLParams), params
        shown.append(params.url)
        decided = await _browser_decides(params.url)  # the human, in the browser
        assert decided.status_code == 200, decided.text
        return mcp_types.ElicitResult(action="accept")

    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as http,
        Client(
            streamable_http_client(hosted.url, http_client=http), mode=wire_mode, elicitation_callback=on_elicit
        ) as client,
    ):
        result = await client.call_tool("testkit_write", WRITE)
    assert not result.is_error, result.content[0].text
    assert len(shown) == 1 and "/approvals/apr_" in shown[0]
    assert ledger.executed == [{"tool": "testkit_write", "value": 3, "dry_run": False}]
    record = hosted.app.gate.audit.tail(1)[0].record
    assert record["approval"]["channel"] == "oidc" and record["outcome"] == "ok"


async def test_url_elicitation_answered_before_anyone_approved_leaves_it_pending(
    page: tuple[Hosted, testkit.Ledger], wire_mode: str
) -> None:
    hosted, ledger = page

    async def opened_only(context: ClientRequestContext, params: mcp_types.ElicitRequestParams) -> Any:
        return mcp_types.ElicitResult(action="accept")  # the user opened the link; nobody approved yet

    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as http,
        Client(
            streamable_http_client(hosted.url, http_client=http), mode=wire_mode, elicitation_callback=opened_only
        ) as client,
    ):
        result = await client.call_tool("testkit_write", WRITE)
    assert result.is_error and (result.meta or {})["opsgate/outcome"] == "pending_approval"
    assert ledger.executed == []
