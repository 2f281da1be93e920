"""The hosted approval page: `/approvals/{id}` behind the OIDC login (authorization code + PKCE).

An approver opens the URL a pending approval names (the one URL-mode elicitation points to), logs in
with the organisation's identity provider, sees the plan (tool, target, arguments, the facts the
server computed) and approves or denies. The decision itself is a second, fresh login whose `nonce`
is the digest of the approval's statement: the ID token the issuer signs then proves that this
person made exactly this decision, and it is kept as the grant's proof (`opsgate.approval_oidc`).
The server verifies it again when the agent uses the approval, so nothing the page or the store
says is trusted on its own. Roles come from the token's roles claim; the requester can never
approve its own request (subject, preferred username and the approvers file's aliases are compared
normalised).

Sessions and in-flight logins live in this process's memory: behind several replicas, route the
approval page with session affinity (the grants themselves are in the shared store).
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from opsgate.approval_oidc import IdTokenError, IdTokenVerifier
from opsgate.approvals import (
    PAGE_PATH,
    Approval,
    ApprovalError,
    Approvals,
    is_self_approval,
    oidc_grant,
    statement_nonce,
)
from opsgate.config import Settings
from opsgate.oidc import OidcError, discover

logger = logging.getLogger(__name__)

COOKIE = "opsgate_approver"
SESSION_S = 900.0
LOGIN_S = 600.0


@dataclass
class _Login:
    purpose: Literal["view", "approve", "deny"]
    approval_id: str
    verifier: str
    nonce: str
    created: float = field(default_factory=time.monotonic)


@dataclass
class _Session:
    subject: str
    name: str | None
    roles: list[str]
    csrf: str
    expires: float


class ApprovalPage:
    """Routes and state of the approval page for one server."""

    def __init__(self, approvals: Approvals, settings: Settings, *, http: httpx.AsyncClient | None = None) -> None:
        assert approvals.oidc is not None and approvals.page_url is not None
        self.approvals = approvals
        self.oidc: IdTokenVerifier = approvals.oidc
        self.settings = settings
        self.base = approvals.page_url
        self.callback_url = self.base + "/callback"
        self._http = http
        self._metadata: dict[str, Any] | None = None
        self._logins: dict[str, _Login] = {}
        self._sessions: dict[str, _Session] = {}
        self.secure = self.base.startswith("https://")

    def routes(self) -> list[Route]:
        return [
            Route(PAGE_PATH + "/callback", self.callback, methods=["GET"]),
            Route(PAGE_PATH + "/{approval_id}", self.show, methods=["GET"]),
            Route(PAGE_PATH + "/{approval_id}/decide", self.decide, methods=["POST"]),
        ]

    # -- OIDC ------------------------------------------------------------------------------------

    async def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10)
        return self._http

    async def _endpoints(self) -> dict[str, Any]:
        if self._metadata is None:
            self._metadata = await discover(await self._client(), self.oidc.issuer)
        return self._metadata

    async def _login(self, purpose: Literal["view", "approve", "deny"], approval_id: str, nonce: str) -> Response:
        self._expire()
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        self._logins[state] = _Login(purpose, approval_id, verifier, nonce)
        endpoints = await self._endpoints()
        query = {
            "client_id": self.oidc.client_id,
            "response_type": "code",
            "redirect_uri": self.callback_url,
            "scope": "openid profile email",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if purpose != "view":
            query["max_age"] = "0"  # a decision is a fresh login, not an old session
        return RedirectResponse(str(endpoints["authorization_endpoint"]) + "?" + urlencode(query), status_code=302)

    async def _exchange(self, code: str, verifier: str) -> str:
        endpoints = await self._endpoints()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.callback_url,
            "client_id": self.oidc.client_id,
            "code_verifier": verifier,
        }
        secret = self.settings.approvals.oidc_client_secret
        if secret:
            form["client_secret"] = secret
        response = await (await self._client()).post(str(endpoints["token_endpoint"]), data=form)
        if response.status_code != 200:
            raise IdTokenError(f"the identity provider refused the login code ({response.status_code})")
        token = response.json().get("id_token")
        if not isinstance(token, str):
            raise IdTokenError("the identity provider returned no ID token")
        return token

    def _expire(self) -> None:
        now = time.monotonic()
        self._logins = {k: v for k, v in self._logins.items() if now - v.created < LOGIN_S}
        self._sessions = {k: v for k, v in self._sessions.items() if v.expires > now}

    def _session(self, request: Request) -> _Session | None:
        session = self._sessions.get(request.cookies.get(COOKIE, ""))
        return session if session is not None and session.expires > time.monotonic() else None

    # -- pages -----------------------------------------------------------------------------------

    async def show(self, request: Request) -> Response:
        approval_id = request.path_params["approval_id"]
        session = self._session(request)
        if session is None:
            return await self._login("view", approval_id, secrets.token_urlsafe(16))
        try:
            approval = self.approvals.store.get(approval_id)
        except ApprovalError as exc:
            return _page("Unknown approval", f"<p>{html.escape(str(exc))}</p>", status=404)
        return _page(f"Approval {approval.id}", _describe(approval, session))

    async def decide(self, request: Request) -> Response:
        approval_id = request.path_params["approval_id"]
        session = self._session(request)
        form = await request.form()
        if session is None or not secrets.compare_digest(str(form.get("csrf", "")), session.csrf):
            return _page("Not allowed", "<p>Your session expired or the form is stale; open the page again.</p>", 403)
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            return _page("Not allowed", "<p>Unknown decision.</p>", status=400)
        try:
            approval = self.approvals.store.get(approval_id)
        except ApprovalError as exc:
            return _page("Unknown approval", f"<p>{html.escape(str(exc))}</p>", status=404)
        nonce = statement_nonce(approval.statement("approve" if decision == "approve" else "deny"))
        return await self._login("approve" if decision == "approve" else "deny", approval.id, nonce)

    async def callback(self, request: Request) -> Response:
        login = self._logins.pop(request.query_params.get("state", ""), None)
        code = request.query_params.get("code")
        if login is None or not code:
            error = request.query_params.get("error_description") or request.query_params.get("error") or "expired"
            return _page("Login failed", f"<p>The login did not complete: {html.escape(error)}.</p>", status=400)
        try:
            token = await self._exchange(code, login.verifier)
            claims = await self.oidc.verify(token, nonce=login.nonce, check_expiry=True)
        except (IdTokenError, OidcError, httpx.HTTPError) as exc:
            logger.info("approval page login refused: %s", exc)
            return _page("Login failed", f"<p>{html.escape(str(exc))}</p>", status=403)
        if login.purpose == "view":
            session_id = secrets.token_urlsafe(24)
            name = claims.get("preferred_username") or claims.get("email")
            self._sessions[session_id] = _Session(
                subject=str(claims["sub"]),
                name=name if isinstance(name, str) else None,
                roles=self.oidc.roles(claims),
                csrf=secrets.token_urlsafe(24),
                expires=time.monotonic() + SESSION_S,
            )
            response = RedirectResponse(f"{self.base}/{login.approval_id}", status_code=303)
            response.set_cookie(
                COOKIE, session_id, max_age=int(SESSION_S), path=PAGE_PATH, httponly=True, secure=self.secure,
                samesite="lax",
            )  # fmt: skip
            return response
        return self._record(login, token, claims)

    def _record(self, login: _Login, token: str, claims: dict[str, Any]) -> Response:
        store = self.approvals.store
        try:
            approval = store.get(login.approval_id)
            if login.nonce != statement_nonce(approval.statement("approve" if login.purpose == "approve" else "deny")):
                raise ApprovalError("the approval changed while you were logging in; open it again")
            approvers = self.approvals.approvers.current() if self.approvals.approvers else None
            grant = oidc_grant(claims, self.oidc.roles(claims), approvers)
            if login.purpose == "approve" and is_self_approval(grant, approval.requester):
                raise ApprovalError(f"you ({grant.identity}) made this request; nobody approves their own request")
            if login.purpose == "approve" and not set(grant.roles) & set(approval.approvers):
                raise ApprovalError(
                    f"your roles ({', '.join(grant.roles) or 'none'}) do not include {' or '.join(approval.approvers)}"
                )
            decided = store.decide(
                approval.id,
                status="granted" if login.purpose == "approve" else "denied",
                by=grant.identity,
                roles=grant.roles,
                channel="oidc",
                proof=token,
                note=f"on the approval page as {grant.detail}" if grant.detail is not None else "on the approval page",
            )
        except ApprovalError as exc:
            return _page("Not recorded", f"<p>{html.escape(str(exc))}</p>", status=403)
        verb = "approved" if decided.status == "granted" else "denied"
        body = f"<p>You {verb} <code>{html.escape(decided.id)}</code> as {html.escape(grant.identity)}.</p>"
        if decided.status == "granted":
            body += "<p>The agent may now make this call once, for this plan only.</p>"
        return _page(f"Approval {verb}", body)


def _describe(a: Approval, session: _Session) -> str:
    rows = [
        ("status", a.status),
        ("tool", a.tool),
        ("target", a.target),
        ("requested by", a.requester),
        ("arguments", _json(a.args)),
        ("reasons", "; ".join(a.reasons) or "-"),
        ("approver role", " or ".join(a.approvers) or "-"),
        ("expires", str(a.summary()["expires_at"])),
    ]
    rows += [(f"plan: {k}", _json(v)) for k, v in sorted(a.plan.items())]
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    who = html.escape(session.name or session.subject)
    body = f"<p>Logged in as {who} (roles: {html.escape(', '.join(session.roles) or 'none')}).</p>"
    body += f"<table>{table}</table>"
    if a.status == "pending":
        csrf = html.escape(session.csrf)
        body += (
            f'<form method="post" action="{PAGE_PATH}/{html.escape(a.id)}/decide">'
            f'<input type="hidden" name="csrf" value="{csrf}">'
            '<button name="decision" value="approve">Approve this plan</button> '
            '<button name="decision" value="deny">Deny</button></form>'
            "<p>Approving asks you to log in again: your login is the proof of this decision.</p>"
        )
    return body


def _json(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)} - opsgate</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'; form-action 'self'"}
    return HTMLResponse(document, status_code=status, headers=headers)
