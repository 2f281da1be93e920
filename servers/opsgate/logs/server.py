"""The logs capability: `logs_query` and `logs_patterns` over the configured backend."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from opsgate.config import ConfigError, Settings
from opsgate.contracts import Capability, Contract, Target
from opsgate.durations import parse_duration
from opsgate.gate import CallContext
from opsgate.logs.backends import LogBackend
from opsgate.logs.contracts import LogFilter, PatternsInput, PatternsOutput, QueryInput, QueryOutput
from opsgate.logs.query import LogQuery
from opsgate.logs.service import LogsService
from opsgate.logs.settings import LogsSettings, load


def make_backend(config: LogsSettings, index_dir: Path | None = None, **injected: Any) -> LogBackend:
    """The backend `config.backend` names. `index_dir`: where the files backend keeps the time indexes of
    files not in time order between runs. `injected` carries test or embedding hooks:
    `azure_credential`, `azure_request_options`, `kube_api_client`, `loki_transport`."""
    try:
        if config.backend == "files":
            from opsgate.logs.backends.files import FilesBackend

            return FilesBackend(config.files, index_dir=index_dir)
        if config.backend == "loki":
            from opsgate.logs.backends.loki import LokiBackend

            return LokiBackend(config.loki, transport=injected.get("loki_transport"))
        if config.backend == "azure":
            from opsgate.logs.backends.azure import AzureBackend

            return AzureBackend(
                config.azure,
                credential=injected.get("azure_credential"),
                request_options=injected.get("azure_request_options"),
            )
        from opsgate.logs.backends.kubernetes import KubernetesBackend

        return KubernetesBackend(config.kubernetes, api_client=injected.get("kube_api_client"))
    except ValueError as exc:
        raise ConfigError(f"[logs] {config.backend} backend: {exc}") from None


def _target(args: LogFilter) -> Target:
    return Target(namespace=args.namespace, service=args.service)


def _window_text(out: QueryOutput | PatternsOutput) -> str:
    return f"{out.window.start} .. {out.window.end}"


def summarize_query(out: QueryOutput) -> str:
    if not out.items:
        return f"No log lines matched in {_window_text(out)} ({out.backend})."
    errors = sum(1 for line in out.items if line.level in ("error", "fatal"))
    more = "; more match: pass next_cursor" if out.next_cursor else ("; truncated" if out.truncated else "")
    notes = f" Note: {' '.join(out.backend_notes)}" if out.backend_notes else ""
    return (
        f"{len(out.items)} log line(s) from {out.backend}, {_window_text(out)}, "
        f"{errors} at error or worse{more}.{notes}"
    )


def summarize_patterns(out: PatternsOutput) -> str:
    capped = " (line cap reached: narrow the window)" if out.lines_capped else ""
    notes = f" Note: {' '.join(out.backend_notes)}" if out.backend_notes else ""
    return (
        f"{out.templates_total} template(s) from {out.lines_scanned} line(s){capped} in {_window_text(out)} "
        f"({out.backend}); showing {len(out.items)}.{notes}"
    )


def capability(config: LogsSettings, backend: LogBackend) -> Capability:
    service = LogsService(config, backend)

    async def query(args: QueryInput, ctx: CallContext) -> QueryOutput:
        return await service.query(args, ctx.redaction())

    async def patterns(args: PatternsInput, ctx: CallContext) -> PatternsOutput:
        return await service.patterns(args, ctx.redaction())

    async def facts(args: LogFilter, ctx: CallContext) -> dict[str, Any]:
        window = parse_duration(args.since or config.default_since) if args.start is None else None
        return {"backend": backend.name, "window_seconds": window, "raw_query": args.raw_query is not None}

    timeout = config.timeout_s + 5
    contracts: list[Contract[Any, Any]] = [
        Contract(
            name="logs_query",
            untrusted_fields=("items[].message", "items[].source"),
            capability="logs",
            title="Query logs",
            purpose="Log lines matching a typed filter (service or label selector, window, severity, text/regex), "
            "newest first, paged with a cursor.",
            input_model=QueryInput,
            output_model=QueryOutput,
            scope="read",
            risk="low",
            handler=query,
            target=_target,
            summarize=summarize_query,
            facts=facts,
            untrusted_output=True,
            timeout_s=timeout,
        ),
        Contract(
            name="logs_patterns",
            untrusted_fields=("items[].template", "items[].sample"),
            capability="logs",
            title="Log patterns",
            purpose="Matching log lines grouped into message templates with counts, first/last seen, severities "
            "and a sample, ranked (worst severity first by default).",
            input_model=PatternsInput,
            output_model=PatternsOutput,
            scope="read",
            risk="low",
            handler=patterns,
            target=_target,
            summarize=summarize_patterns,
            facts=facts,
            untrusted_output=True,
            timeout_s=timeout,
        ),
    ]

    async def probe() -> str:
        """One tiny query through the backend's own read path: the last hour, one line."""
        end = time.time_ns() if config.now is None else int(config.now.timestamp()) * 1_000_000_000
        window = LogQuery(start_ns=end - 3600 * 1_000_000_000, end_ns=end)
        fetched = await backend.fetch(window, 1, time.monotonic() + config.timeout_s)
        return f"answered a query ({len(fetched.records)} line(s) from the last hour)"

    return Capability(name="logs", contracts=contracts, closers=[backend.aclose], probes={backend.name: probe})


def build(settings: Settings) -> Capability:
    config = load(settings.logs)
    return capability(config, make_backend(config, index_dir=settings.state_dir / "logs-index"))
