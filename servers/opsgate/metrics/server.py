"""The metrics capability: `metrics_query`, `metrics_anomalies` and `metrics_compare`.

Each call's window and step are resolved once, in the contract's `facts` function, so the policy
sees the point count the backend would be asked for (`facts.estimated_points`, points per series)
and can refuse a costly query before any backend is touched; the handler reuses the same window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import numpy as np

from opsgate.config import Settings, load_section
from opsgate.contracts import BackendUnavailable, Capability, Contract, Target, ToolError
from opsgate.gate import CallContext
from opsgate.metrics import analysis
from opsgate.metrics.backends.base import MetricsBackend, Series
from opsgate.metrics.contracts import (
    AnomaliesInput,
    AnomaliesOutput,
    CompareInput,
    CompareOutput,
    QueryInput,
    QueryOutput,
    SeriesInput,
    SeriesResult,
    WindowInput,
)
from opsgate.metrics.downsample import METHOD, minmax_downsample
from opsgate.metrics.selection import Selection, matchers_from, series_name
from opsgate.metrics.settings import KEY_METRICS, MetricsSettings
from opsgate.metrics.timewindow import format_duration, iso, parse_duration, unix

DEFAULT_SINCE_S = 3600.0
AUTO_STEP_POINTS = 1000  # an automatic step asks the backend for about this many points per series
Clock = Callable[[], float]


def make_backend(config: MetricsSettings) -> MetricsBackend:
    if config.backend == "prometheus":
        from opsgate.metrics.backends.prometheus import PrometheusBackend

        return PrometheusBackend(config.prometheus)
    from opsgate.metrics.backends.azure import AzureBackend

    return AzureBackend(config.azure)


def selection_of(args: SeriesInput, metric: str | None = None) -> Selection:
    if args.raw_query is not None:
        return Selection(metric=None, raw_query=args.raw_query)
    return Selection(
        metric=metric or args.metric,
        matchers=matchers_from(args.namespace, args.service, args.match),
        aggregation=args.aggregation,
        by=tuple(args.by),
        quantile=args.quantile,
        rate_window_s=parse_duration(args.rate_window),
    )


def _target(args: SeriesInput) -> Target:
    return Target(namespace=args.namespace, service=args.service)


def _sig(x: float | None, digits: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _points(span: float, step: float) -> int:
    return int(span // step) + 1


def _window(args: WindowInput, now: float, default_since: float = DEFAULT_SINCE_S) -> tuple[float, float]:
    end = unix(args.end) if args.end is not None else now
    if args.start is not None:
        start = unix(args.start)
    else:
        start = end - (parse_duration(args.since) if args.since else default_since)
    if end <= start:
        raise ToolError(f"the window ends ({iso(end)}) before it starts ({iso(start)})")
    return start, end


def _post_filter(args: SeriesInput, series: list[Series]) -> list[Series]:
    """A raw query's results, narrowed to the namespace/service the call named as its target."""
    if args.raw_query is None:
        return series
    wanted = matchers_from(args.namespace, args.service, ())
    return [s for s in series if all(m.matches(s.labels) for m in wanted)]


def _check_size(series: Sequence[Series], config: MetricsSettings) -> None:
    if len(series) > config.max_series:
        raise ToolError(
            f"the query matched {len(series)} series, over the limit of {config.max_series}; "
            "add label matchers or aggregate with `by`"
        )


def _label_key(s: Series) -> str:
    return series_name(s.metric, s.labels)


def build(settings: Settings) -> Capability:
    config = load_section("metrics", settings.metrics, MetricsSettings)
    return build_capability(config, make_backend(config))


def build_capability(config: MetricsSettings, backend: MetricsBackend, clock: Clock = time.time) -> Capability:
    """The capability over a given backend (tests and benchmarks pass their own backend or clock)."""

    # ---- metrics_query -------------------------------------------------------------------------
    async def query_facts(args: QueryInput, ctx: CallContext) -> dict[str, Any]:
        now = clock()
        if args.instant:
            at = unix(args.end) if args.end is not None else now
            return {"estimated_points": 1, "window_start": at, "window_end": at, "step_s": None}
        start, end = _window(args, now)
        step = parse_duration(args.step) if args.step else max(config.base_step_s, (end - start) / AUTO_STEP_POINTS)
        return {
            "estimated_points": _points(end - start, step),
            "window_start": start,
            "window_end": end,
            "step_s": step,
        }

    async def query(args: QueryInput, ctx: CallContext) -> QueryOutput:
        facts = ctx.facts or await query_facts(args, ctx)
        start, end, step = float(facts["window_start"]), float(facts["window_end"]), facts["step_s"]
        selection = selection_of(args)
        if args.instant:
            found = _post_filter(args, await backend.query_instant(selection, end))
        else:
            found = _post_filter(args, await backend.query_range(selection, start, end, float(step)))
        _check_size(found, config)
        found.sort(key=_label_key)
        budget = args.points or config.default_points
        items: list[SeriesResult] = []
        shrunk = 0
        raw_max = 0
        for s in found[: args.limit]:
            finite = s.values[np.isfinite(s.values)]
            raw_max = max(raw_max, s.values.size)
            last = _sig(float(finite[-1])) if finite.size else None
            if args.instant:
                items.append(SeriesResult(labels=s.labels, t=[], v=[], last=last, min=last, max=last, raw_points=1))
                continue
            t, v = minmax_downsample(s.times, s.values, budget)
            shrunk += int(t.size < s.times.size)
            items.append(
                SeriesResult(
                    labels=s.labels,
                    t=[round(x - start) for x in t.tolist()],
                    v=[_sig(x) for x in v.tolist()],
                    last=last,
                    min=_sig(float(finite.min())) if finite.size else None,
                    max=_sig(float(finite.max())) if finite.size else None,
                    raw_points=int(s.values.size),
                )
            )
        if args.instant:
            how = "none (instant query)"
        elif shrunk:
            how = f"{METHOD}: {shrunk} series cut from up to {raw_max} to at most {budget} points, extremes kept"
        else:
            how = f"none: every series fits the budget of {budget} points"
        note = None
        if not found:
            note = "no series matched the label filters in this window" if args.raw_query is None else "empty result"
        return QueryOutput(
            items=items,
            truncated=len(found) > args.limit,
            limit=args.limit,
            backend=backend.name,
            query=backend.describe(selection),
            kind="instant" if args.instant else "range",
            start=iso(start),
            end=iso(end),
            step_s=None if args.instant else float(step),
            points_budget=None if args.instant else budget,
            downsampling=how,
            note=note,
        )

    def summarize_query(out: QueryOutput) -> str:
        if not out.items:
            return f"No series for {out.query} ({out.start} to {out.end}): {out.note or 'empty'}."
        top = max(out.items, key=lambda s: -math.inf if s.last is None else s.last)
        more = " (truncated; more series matched)" if out.truncated else ""
        when = f"at {out.end}" if out.kind == "instant" else f"{out.start} to {out.end}, step {out.step_s:g}s"
        return (
            f"{len(out.items)} series of {out.query}{more}, {when}; highest latest value {top.last} "
            f"for {series_name(None, top.labels)}. Downsampling: {out.downsampling}."
        )

    # ---- metrics_anomalies ---------------------------------------------------------------------
    async def anomalies_facts(args: AnomaliesInput, ctx: CallContext) -> dict[str, Any]:
        start, end = _window(args, clock())
        step = parse_duration(args.step)
        history = parse_duration(args.baseline)
        return {
            "estimated_points": _points(end - start + history, step),
            "window_start": start,
            "window_end": end,
            "step_s": step,
            "baseline_s": history,
        }

    async def anomalies(args: AnomaliesInput, ctx: CallContext) -> AnomaliesOutput:
        facts = ctx.facts or await anomalies_facts(args, ctx)
        start, end, step = float(facts["window_start"]), float(facts["window_end"]), float(facts["step_s"])
        fetch_from = start - float(facts["baseline_s"])
        if args.raw_query is not None:
            selections = [selection_of(args)]
        else:
            selections = [selection_of(args, m) for m in ([args.metric] if args.metric else config.key_metrics)]
        found: list[Series] = []
        for i, sel in enumerate(selections):
            found.extend(_post_filter(args, await backend.query_range(sel, fetch_from, end, step)))
            await ctx.progress(i + 1, len(selections), f"fetched {sel.metric or 'raw query'}")
            _check_size(found, config)
        ranking = await anyio.to_thread.run_sync(analysis.rank, found, (start, end))
        items = ranking.items[: args.limit]
        return AnomaliesOutput(
            items=items,
            truncated=len(ranking.items) > args.limit,
            limit=args.limit,
            backend=backend.name,
            query="; ".join(backend.describe(s) for s in selections),
            start=iso(start),
            end=iso(end),
            step_s=step,
            series_scanned=len(found),
            series_skipped=ranking.skipped,
            method=f"{analysis.ANOMALY_METHOD}; baseline learnt from the {format_duration(start - fetch_from)} before",
        )

    def summarize_anomalies(out: AnomaliesOutput) -> str:
        if not out.items:
            return f"No anomalies in {out.series_scanned} series from {out.start} to {out.end}."
        top = out.items[0]
        pct = f", {top.change_pct:+.0f}%" if top.change_pct is not None else ""
        state = "ongoing" if top.ongoing else f"until {top.end}"
        return (
            f"{len(out.items)} anomal{'y' if len(out.items) == 1 else 'ies'} in {out.series_scanned} series; "
            f"top: {top.series} {top.direction} from {top.start} ({state}), {top.baseline:.4g} -> {top.observed:.4g}"
            f"{pct}, z={top.z:+.1f}."
        )

    # ---- metrics_compare -----------------------------------------------------------------------
    async def compare_facts(args: CompareInput, ctx: CallContext) -> dict[str, Any]:
        at = unix(args.at)
        before, after, step = parse_duration(args.before), parse_duration(args.after), parse_duration(args.step)
        if before <= 0 or after <= 0:
            raise ToolError("`before` and `after` must be positive spans")
        return {
            "estimated_points": _points(before + after, step),
            "window_start": at - before,
            "window_end": at + after,
            "at": at,
            "step_s": step,
        }

    async def compare(args: CompareInput, ctx: CallContext) -> CompareOutput:
        facts = ctx.facts or await compare_facts(args, ctx)
        start, end, at = float(facts["window_start"]), float(facts["window_end"]), float(facts["at"])
        selection = selection_of(args)
        found = _post_filter(args, await backend.query_range(selection, start, end, float(facts["step_s"])))
        _check_size(found, config)
        items = analysis.compare(found, at)
        revisions = []
        if args.by_revision is not None:
            if not any(args.by_revision in s.labels for s in found):
                raise ToolError(
                    f"no series has the label {args.by_revision!r}; compare per pod (aggregation none) or keep "
                    f"the label with by=[{args.by_revision!r}]"
                )
            revisions = analysis.compare_revisions(found, at, args.by_revision)
        return CompareOutput(
            items=items[: args.limit],
            revisions=revisions,
            truncated=len(items) > args.limit,
            limit=args.limit,
            backend=backend.name,
            query=backend.describe(selection),
            at=iso(at),
            before_start=iso(start),
            after_end=iso(end),
            series_compared=len(found),
            method=analysis.COMPARE_METHOD,
        )

    def summarize_compare(out: CompareOutput) -> str:
        if not out.items:
            return f"No series to compare around {out.at} for {out.query}."
        if out.revisions and out.revisions[0].change_pct is not None:
            r = out.revisions[0]
            return (
                f"By revision after {out.at}: {r.revision} ({r.pods} pod(s)) {r.after} vs {r.others} for the rest "
                f"({r.change_pct:+.0f}%), {r.direction}; {len(out.revisions)} revision(s) compared."
            )
        top = out.items[0]
        pct = f" ({top.change_pct:+.0f}%)" if top.change_pct is not None else ""
        return (
            f"{out.series_compared} series compared around {out.at}; most changed: {top.series} "
            f"{top.before} -> {top.after}{pct}, {top.direction}."
        )

    contracts: list[Contract[Any, Any]] = [
        Contract(
            name="metrics_query",
            untrusted_fields=("items[].labels",),
            capability="metrics",
            title="Query metrics",
            purpose=(
                "Metric values now (instant=true) or over a window, per series or aggregated; range results "
                "are downsampled to a point budget per series keeping spikes."
            ),
            input_model=QueryInput,
            output_model=QueryOutput,
            scope="read",
            risk="low",
            handler=query,
            target=_target,
            summarize=summarize_query,
            facts=query_facts,
            timeout_s=30,
        ),
        Contract(
            name="metrics_anomalies",
            untrusted_fields=("items[].series",),
            capability="metrics",
            title="Find anomalous series",
            purpose=(
                "Series that behave unusually in a window, ranked, each with when it started, its direction "
                "and its size against the series' own baseline."
            ),
            input_model=AnomaliesInput,
            output_model=AnomaliesOutput,
            scope="read",
            risk="low",
            handler=anomalies,
            target=_target,
            summarize=summarize_anomalies,
            facts=anomalies_facts,
            timeout_s=30,
        ),
        Contract(
            name="metrics_compare",
            untrusted_fields=("items[].series",),
            capability="metrics",
            title="Compare before and after",
            purpose="Per-series change before and after a moment (e.g. a deploy), most changed first.",
            input_model=CompareInput,
            output_model=CompareOutput,
            scope="read",
            risk="low",
            handler=compare,
            target=_target,
            summarize=summarize_compare,
            facts=compare_facts,
            timeout_s=30,
        ),
    ]

    async def probe() -> str:
        """One instant query through the backend's own read path (an unknown metric still proves it answers)."""
        try:
            found = await backend.query_instant(Selection(KEY_METRICS[0]), clock())
        except BackendUnavailable:
            raise
        except ToolError as exc:
            return f"answered ({exc})"
        return f"answered an instant query ({len(found)} series of {KEY_METRICS[0]})"

    return Capability(name="metrics", contracts=contracts, closers=[backend.aclose], probes={backend.name: probe})
