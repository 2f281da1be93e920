"""API keys kept in the shared state: added once with `opsgate keys add`, accepted by every replica,
revoked on all of them at once; a store that cannot be reached authenticates nobody."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsgate.cli import main
from opsgate.config import Settings
from opsgate.http_auth import ApiKeyVerifier, hash_key
from opsgate.state import open_state


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_stored_key_works_on_every_replica_until_revoked(
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    monkeypatch.setenv("OPSGATE_STATE_DIR", str(tmp_path / "state"))
    if url:
        monkeypatch.setenv("OPSGATE_STATE_URL", url)
    replicas = [open_state(Settings(state_dir=tmp_path / "state", state_url=url)) for _ in range(2)]
    verifiers = [ApiKeyVerifier([], state.api_keys) for state in replicas]

    assert main(["keys", "add", "--subject", "agent@ci", "--role", "responder"]) == 0
    out = capsys.readouterr().out
    key = out.split("shown once): ")[1].split()[0]
    for verifier in verifiers:
        token = await verifier.verify_token(key)
        assert token is not None and token.subject == "agent@ci" and token.claims["roles"] == ["responder"]
    assert await verifiers[0].verify_token(key + "x") is None

    assert main(["keys", "list"]) == 0
    assert "active" in capsys.readouterr().out
    assert main(["keys", "revoke", hash_key(key)]) == 0
    for verifier in verifiers:
        assert await verifier.verify_token(key) is None
    assert main(["keys", "revoke", hash_key(key)]) == 1
    for state in replicas:
        state.close()
