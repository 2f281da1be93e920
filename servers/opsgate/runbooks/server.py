"""The runbooks capability: `runbook_search`, `runbook_fetch`, and runbooks as MCP resources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opsgate.config import Settings, load_section
from opsgate.contracts import Capability, Contract, ResourceEntry, ResourceProvider, Target, ToolError
from opsgate.gate import CallContext
from opsgate.runbooks.contracts import (
    Citation,
    FetchInput,
    RunbookDocument,
    SearchHit,
    SearchInput,
    SearchOutput,
)
from opsgate.runbooks.settings import RunbookSettings as RunbookSettings
from opsgate.runbooks.store import Runbook, RunbookStore, anchor

URI_SCHEME = "runbooks"
EXCERPT_CHARS = 400
MIME_TYPE = "text/markdown"


def _uri(runbook_id: str) -> str:
    return f"{URI_SCHEME}://{runbook_id}"


def _document(rb: Runbook) -> RunbookDocument:
    return RunbookDocument(
        id=rb.id,
        title=rb.title,
        services=rb.services,
        alerts=rb.alerts,
        owner=rb.owner,
        approved=rb.approved,
        updated=rb.updated,
        version=rb.version,
        uri=_uri(rb.id),
        sections=[s.heading for s in rb.sections],
        body=rb.body,
    )


class RunbookResources(ResourceProvider):
    capability = URI_SCHEME

    def __init__(self, store: RunbookStore) -> None:
        self.store = store
        # the folder is loaded once, so its listing is built once
        self._entries = [
            ResourceEntry(
                uri=_uri(rb.id),
                name=rb.id,
                title=rb.title,
                description=("" if rb.approved else "UNAPPROVED. ")
                + f"Runbook for {', '.join(rb.services) or 'any service'}",
                mime_type=MIME_TYPE,
            )
            for rb in store.runbooks.values()
        ]

    async def list(self) -> Sequence[ResourceEntry]:
        return self._entries

    async def mime_type(self, uri: str) -> str | None:
        return MIME_TYPE

    async def read(self, uri: str) -> str:
        prefix = f"{URI_SCHEME}://"
        if not uri.startswith(prefix):
            raise ToolError(f"not a runbook URI: {uri!r}")
        return self.store.get(uri[len(prefix) :]).body


def build(settings: Settings) -> Capability:
    config = load_section("runbooks", settings.runbooks, RunbookSettings)
    store = RunbookStore(config.dir)

    async def search(args: SearchInput, ctx: CallContext) -> SearchOutput:
        hits = store.search(args.query, service=args.service, alert=args.alert)
        items = [
            SearchHit(
                id=rb.id,
                title=rb.title,
                score=round(score, 4),
                approved=rb.approved,
                services=rb.services,
                uri=_uri(rb.id),
                version=rb.version,
                cited=Citation(
                    heading=section.heading,
                    anchor=anchor(section.heading),
                    lines=(section.first_line, section.last_line),
                    excerpt=section.text[:EXCERPT_CHARS],
                ),
            )
            for rb, section, score in hits[: args.limit]
        ]
        return SearchOutput(
            items=items,
            truncated=len(hits) > args.limit,
            limit=args.limit,
            backend="folder",
            query=args.query if args.query is not None else f"alert:{args.alert}",
        )

    async def fetch(args: FetchInput, ctx: CallContext) -> RunbookDocument:
        return _document(store.get(args.id))

    def summarize_search(out: SearchOutput) -> str:
        if not out.items:
            return f"No runbook matches {out.query!r}."
        top = out.items[0]
        flag = "" if top.approved else " [UNAPPROVED]"
        return f"{len(out.items)} runbook(s) for {out.query!r}; best: {top.id}{flag} section '{top.cited.heading}'."

    def summarize_fetch(doc: RunbookDocument) -> str:
        flag = "approved" if doc.approved else "UNAPPROVED: not reviewed, verify each step"
        return f"Runbook {doc.id} ({flag}), version {doc.version[:19]}, {len(doc.sections)} section(s)."

    def search_target(args: SearchInput) -> Target:
        return Target(service=args.service)

    contracts: list[Contract[Any, Any]] = [
        Contract(
            name="runbook_search",
            untrusted_fields=("items[].title", "items[].cited.heading", "items[].cited.excerpt"),
            capability="runbooks",
            title="Search runbooks",
            purpose="Find the runbooks for a symptom, alert or service, ranked, each citing its best-matching section.",
            input_model=SearchInput,
            output_model=SearchOutput,
            scope="read",
            risk="low",
            handler=search,
            target=search_target,
            summarize=summarize_search,
            untrusted_output=True,
            timeout_s=10,
        ),
        Contract(
            name="runbook_fetch",
            untrusted_fields=("title", "sections", "body"),
            capability="runbooks",
            title="Fetch a runbook",
            purpose="Get one runbook's full Markdown, metadata (owner, services, approved) and content version.",
            input_model=FetchInput,
            output_model=RunbookDocument,
            scope="read",
            risk="low",
            handler=fetch,
            summarize=summarize_fetch,
            untrusted_output=True,
            timeout_s=10,
        ),
    ]

    async def probe() -> str:
        """The folder is read again: how many runbooks load, and what was skipped."""
        fresh = RunbookStore(config.dir)
        skipped = f"; skipped: {'; '.join(fresh.problems)}" if fresh.problems else ""
        return f"{len(fresh.runbooks)} runbook(s) in {fresh.root}{skipped}"

    return Capability(name="runbooks", contracts=contracts, resources=RunbookResources(store), probes={"folder": probe})
