"""ID tokens from the approval page's OIDC login, as proof of who granted an approval.

The approval page sends the approver to the issuer with `nonce` = the digest of the approval's
statement (approval id, plan digest, decision, expiry). The ID token the issuer signs therefore
says "this person logged in to make exactly this decision"; the server keeps the token as the
grant's proof and verifies it again (issuer signature, `iss`, `aud` = the page's client id, `nonce`)
whenever the grant is used, so a row written into the database by anyone else proves nothing.
Expiry is checked at login; at use, the token must have been issued inside the approval's window.
"""

from __future__ import annotations

from typing import Any

import jwt

from opsgate.oidc import ASYMMETRIC_ALGORITHMS, JwksCache, OidcConfig, OidcError, signing_key


class IdTokenError(Exception):
    """An ID token that cannot prove an approval; the message says why."""


class IdTokenVerifier:
    """Verifies ID tokens of one issuer for one client (the approval page)."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        *,
        jwks_url: str | None = None,
        algorithms: tuple[str, ...] = ("RS256",),
        roles_claim: str = "roles",
        leeway_s: float = 60.0,
        jwks: JwksCache | None = None,
    ) -> None:
        bad = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad:
            raise ValueError(f"unsupported ID token algorithm(s) {bad}")
        self.issuer = issuer
        self.client_id = client_id
        self.algorithms = algorithms
        self.roles_claim = roles_claim
        self.leeway_s = leeway_s
        self.jwks = jwks or JwksCache(
            OidcConfig(issuer=issuer, audience=client_id, jwks_url=jwks_url, algorithms=algorithms)
        )

    async def verify(
        self, token: str, *, nonce: str, check_expiry: bool, issued_within: tuple[float, float] | None = None
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=await signing_key(token, self.jwks, self.algorithms),
                algorithms=list(self.algorithms),
                audience=self.client_id,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["iss", "aud", "sub", "iat", "nonce"], "verify_exp": check_expiry},
            )
        except (jwt.PyJWTError, OidcError) as exc:
            raise IdTokenError(f"the approver's ID token does not verify: {exc}") from None
        if claims.get("nonce") != nonce:
            raise IdTokenError("the approver's ID token was issued for a different approval decision (nonce)")
        if issued_within is not None:
            low, high = issued_within
            iat = float(claims["iat"])
            if iat < low - self.leeway_s or iat > high + self.leeway_s:
                raise IdTokenError("the approver's ID token was not issued while the approval was open")
        return claims

    def roles(self, claims: dict[str, Any]) -> list[str]:
        value = claims.get(self.roles_claim)
        if isinstance(value, str):
            return sorted(set(value.split()))
        if isinstance(value, list):
            return sorted({str(v) for v in value if isinstance(v, str)})
        return []
