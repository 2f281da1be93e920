"""Property-based: malformed arguments thrown at every contract never raise out of the gate."""

from __future__ import annotations

from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsgate.caller import Caller
from opsgate.server import App

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _arguments_for(app: App) -> st.SearchStrategy[tuple[str, Any]]:
    names = sorted(app.gate.contracts)
    props = sorted({p for c in app.gate.contracts.values() for p in c.input_schema().get("properties", {})})
    keyed = st.dictionaries(st.sampled_from(props) | st.text(max_size=8), json_values, max_size=6)
    return st.tuples(st.sampled_from([*names, "", "nope"]), keyed | json_values)


def test_no_unhandled_exception_for_any_arguments(app: App) -> None:
    caller = Caller(subject="fuzz", roles=["responder"], client="hypothesis", authenticated=True)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_arguments_for(app))
    def run(case: tuple[str, Any]) -> None:
        name, arguments = case

        async def go() -> None:
            result = await app.gate.call_tool(name, arguments, caller)
            assert result.content, "every result carries text"
            if result.is_error:
                assert result.meta and result.meta["opsgate/outcome"] in {
                    "invalid",
                    "denied",
                    "error",
                    "pending_approval",
                    "rate_limited",
                }

        anyio.run(go)

    run()
    assert app.gate.audit.verify().ok
