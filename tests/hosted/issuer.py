"""A local OpenID Connect issuer for tests: RSA keys generated here, metadata and JWKS served on loopback.

It speaks the real wire format (discovery document, JWKS, RS256 JWTs), so opsgate's verifier fetches
and verifies exactly as it would against Microsoft Entra ID; only the keys and the host are local.
It also runs the authorization code flow with PKCE (`/authorize`, `/token`) for browser logins such as
the approval page: whoever `login_as` names is "logged in" without a password prompt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.support.loopback import free_port, serve_asgi


class SigningKey:
    def __init__(self) -> None:
        self.kid = "k-" + uuid.uuid4().hex[:8]
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}


class LocalIssuer:
    """Issues tokens like Entra ID v2 does (`iss`, `aud`, `sub`, `oid`, `azp`, `roles`, `scp`)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/tenant-0001/v2.0"
        self.keys = [SigningKey()]
        self.jwks_requests = 0
        # the person a browser login signs in as (authorization code flow), and issued codes
        self.login_as: dict[str, Any] = {"sub": "user-0001", "preferred_username": "alice@example.com"}
        self.codes: dict[str, dict[str, Any]] = {}
        self.logins = 0

    @property
    def key(self) -> SigningKey:
        return self.keys[-1]

    def rotate(self) -> SigningKey:
        """Publish a new signing key and drop the old one (as an issuer does after a rollover)."""
        self.keys = [SigningKey()]
        return self.key

    def mint(
        self,
        audience: str,
        *,
        roles: list[str] | None = None,
        scp: str | None = None,
        subject: str = "user-0001",
        lifetime_s: int = 600,
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": subject,
            "oid": "00000000-0000-0000-0000-000000000001",
            "azp": "agent-client-app",
            "preferred_username": "alice@example.com",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
            **claims,
        }
        if roles is not None:
            body["roles"] = roles
        if scp is not None:
            body["scp"] = scp
        signer = key or self.key
        return jwt.encode(body, signer.private, algorithm="RS256", headers={"kid": signer.kid, **(headers or {})})

    def app(self) -> ASGIApp:
        base = self.issuer

        async def discovery(request: Request) -> Response:
            return JSONResponse(
                {
                    "issuer": base,
                    "jwks_uri": f"{base}/discovery/v2.0/keys",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            )

        async def keys(request: Request) -> Response:
            self.jwks_requests += 1
            return JSONResponse({"keys": [k.jwk() for k in self.keys]})

        async def authorize(request: Request) -> Response:
            q = request.query_params
            if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256":
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            self.logins += 1
            code = uuid.uuid4().hex
            self.codes[code] = {
                "client_id": q["client_id"],
                "redirect_uri": q["redirect_uri"],
                "nonce": q.get("nonce"),
                "challenge": q["code_challenge"],
                "user": dict(self.login_as),
            }
            return RedirectResponse(f"{q['redirect_uri']}?code={code}&state={q['state']}", status_code=302)

        async def token(request: Request) -> Response:
            form = await request.form()
            grant = self.codes.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier", ""))
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            if (
                grant is None
                or form.get("grant_type") != "authorization_code"
                or form.get("redirect_uri") != grant["redirect_uri"]
                or form.get("client_id") != grant["client_id"]
                or challenge != grant["challenge"]
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            user = grant["user"]
            claims = {k: v for k, v in user.items() if k != "sub"}
            if grant["nonce"] is not None:
                claims["nonce"] = grant["nonce"]
            id_token = self.mint(grant["client_id"], subject=user["sub"], **claims)
            return JSONResponse({"id_token": id_token, "token_type": "Bearer", "expires_in": 600})

        prefix = "/tenant-0001/v2.0"
        return Starlette(
            routes=[
                Route(prefix + "/.well-known/openid-configuration", discovery),
                Route(prefix + "/discovery/v2.0/keys", keys),
                Route(prefix + "/oauth2/v2.0/authorize", authorize),
                Route(prefix + "/oauth2/v2.0/token", token, methods=["POST"]),
            ]
        )


@contextmanager
def running_issuer() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer()
    with serve_asgi(issuer.app(), issuer.port):
        yield issuer
