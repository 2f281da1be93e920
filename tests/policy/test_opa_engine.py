"""The OPA server engine over HTTP, against a loopback stand-in that speaks OPA's Data API."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from opsgate.policy.decision import PolicyError
from opsgate.policy.embedded import EmbeddedEngine
from opsgate.policy.opa import OpaServerEngine
from tests.policy.cases import POLICY_DIR, load_cases
from tests.policy.opa_data_api_server import ServerBehaviour, serve
from tests.support.loopback import free_port

CASES = load_cases()
READ = next(c for c in CASES if c.name == "read allowed").input


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[str, ServerBehaviour]]:
    with serve(POLICY_DIR) as running:
        yield running


@pytest.fixture
def server(standin: tuple[str, ServerBehaviour]) -> Iterator[tuple[str, ServerBehaviour]]:
    url, behaviour = standin
    behaviour.mode, behaviour.delay_s, behaviour.fail_first, behaviour.requests = "ok", 0.0, 0, 0
    behaviour.paths.clear()
    yield url, behaviour
    behaviour.mode = "ok"


async def test_same_decisions_as_embedded_engine(server: tuple[str, ServerBehaviour]) -> None:
    url, behaviour = server
    embedded = EmbeddedEngine(POLICY_DIR)
    opa = OpaServerEngine(url, timeout_s=2.0)
    try:
        for case in CASES:
            assert await opa.decide(case.input) == await embedded.decide(case.input), case.name
    finally:
        await opa.aclose()
    assert behaviour.paths == ["opsgate/decision"] * len(CASES)


async def test_revision_from_bundle_status(server: tuple[str, ServerBehaviour]) -> None:
    url, _ = server
    opa = OpaServerEngine(url)
    assert opa.revision == "opa:unknown"
    assert await opa.refresh_revision() == f"opsgate@{EmbeddedEngine(POLICY_DIR).revision}"
    await opa.aclose()
    assert OpaServerEngine(url, revision="bundle-42").revision == "bundle-42"


async def test_connection_refused_is_policy_error() -> None:
    opa = OpaServerEngine(f"http://127.0.0.1:{free_port()}", timeout_s=1.0, retries=2)
    with pytest.raises(PolicyError, match="unreachable"):
        await opa.decide(READ)
    await opa.aclose()


async def test_slow_server_is_bounded_by_timeout(server: tuple[str, ServerBehaviour]) -> None:
    url, behaviour = server
    behaviour.mode, behaviour.delay_s = "slow", 3.0
    opa = OpaServerEngine(url, timeout_s=0.3)
    started = time.perf_counter()
    with pytest.raises(PolicyError, match=r"within 0\.3 s"):
        await opa.decide(READ)
    assert time.perf_counter() - started < 1.0
    await opa.aclose()


async def test_500_is_retried_then_policy_error(server: tuple[str, ServerBehaviour]) -> None:
    url, behaviour = server
    behaviour.mode = "error500"
    opa = OpaServerEngine(url, timeout_s=2.0, retries=2)
    with pytest.raises(PolicyError, match="HTTP 500"):
        await opa.decide(READ)
    assert behaviour.requests == 3
    await opa.aclose()


async def test_transient_500_recovers_within_retries(server: tuple[str, ServerBehaviour]) -> None:
    url, behaviour = server
    behaviour.mode, behaviour.fail_first = "flaky", 2
    opa = OpaServerEngine(url, timeout_s=2.0, retries=2)
    assert (await opa.decide(READ)).allow is True
    assert behaviour.requests == 3
    await opa.aclose()


async def test_retries_stop_at_the_timeout(server: tuple[str, ServerBehaviour]) -> None:
    url, behaviour = server
    behaviour.mode, behaviour.fail_first = "flaky", 10_000
    opa = OpaServerEngine(url, timeout_s=0.25, retries=1_000)
    started = time.perf_counter()
    with pytest.raises(PolicyError, match=r"within 0\.25 s"):
        await opa.decide(READ)
    assert time.perf_counter() - started < 0.8
    await opa.aclose()


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("garbage", "unreadable"),
        ("undefined", "undefined"),
        ("missing_allow", "allow"),
        ("allow_string", "allow"),
    ],
)
async def test_bad_answers_are_policy_errors(server: tuple[str, ServerBehaviour], mode: str, message: str) -> None:
    url, behaviour = server
    behaviour.mode = mode
    opa = OpaServerEngine(url, timeout_s=1.0)
    with pytest.raises(PolicyError, match=message):
        await opa.decide(READ)
    await opa.aclose()


async def test_other_policy_path_undefined(server: tuple[str, ServerBehaviour]) -> None:
    url, _ = server
    opa = OpaServerEngine(url, policy_path="opsgate.missing")
    with pytest.raises(PolicyError, match=r"data\.opsgate\.missing is undefined"):
        await opa.decide(READ)
    await opa.aclose()


def test_bad_settings() -> None:
    with pytest.raises(PolicyError, match="http://host:port"):
        OpaServerEngine("127.0.0.1:8181")
    with pytest.raises(PolicyError, match="positive"):
        OpaServerEngine("http://127.0.0.1:8181", timeout_s=0)
