"""OpenTelemetry spans and Prometheus metrics for every gated call.

With no OpenTelemetry SDK configured the tracer is a no-op and costs next to nothing; configure an
exporter in the host process (OTEL_* environment variables) to ship spans.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from typing import Any

from opentelemetry import trace
from prometheus_client import Counter, Histogram

tracer = trace.get_tracer("opsgate")

CALLS = Counter("opsgate_tool_calls", "Gated tool calls by tool and outcome", ["tool", "outcome"])
DURATION = Histogram(
    "opsgate_tool_call_seconds",
    "Gated tool call duration, gate included",
    ["tool"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DECISIONS = Counter("opsgate_policy_decisions", "Policy decisions by result", ["result"])


@lru_cache(maxsize=4096)
def _children(tool: str, outcome: str) -> tuple[Any, Any]:
    return CALLS.labels(tool, outcome), DURATION.labels(tool)


def observe_call(tool: str, outcome: str, seconds: float) -> None:
    calls, duration = _children(tool, outcome)
    calls.inc()
    duration.observe(seconds)


def span(name: str) -> AbstractContextManager[trace.Span]:
    """A span for one call; with no tracer provider configured, the shared no-op span (no per-call cost)."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return nullcontext(trace.INVALID_SPAN)
    return tracer.start_as_current_span(name)


@lru_cache(maxsize=8)
def _decision_child(result: str) -> Any:
    return DECISIONS.labels(result)


def count_decision(result: str) -> None:
    _decision_child(result).inc()


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
