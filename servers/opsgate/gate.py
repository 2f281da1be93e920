"""The gate: the one pipeline every tool call and resource read passes through.

validate -> facts -> decide -> approve -> limit -> execute -> shape -> audit

Written once, as MCP server middleware: it answers `tools/list`, `tools/call`, `resources/list` and
`resources/read` from the registered contracts, so no tool runs without passing it. Anything that
goes wrong before execution (an unknown tool, bad arguments, a policy engine that fails, times out or
answers garbage) ends the call with a tool error and an audit record, and nothing is executed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import anyio
import orjson
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types import (
    INVALID_PARAMS,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    BlobResourceContents,
    CallToolResult,
    ClientCapabilities,
    ContentBlock,
    InputRequiredResult,
    ListResourcesResult,
    ListToolsResult,
    ReadResourceResult,
    Resource,
    TextContent,
    TextResourceContents,
)
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, ValidationError

from opsgate import telemetry
from opsgate.audit import AuditLog, digest, redact_for_storage
from opsgate.caller import Caller, resolve_caller
from opsgate.config import Settings
from opsgate.context import CallContext as CallContext
from opsgate.context import ProgressFn as ProgressFn
from opsgate.contracts import (
    NOTES_FIELD,
    UNTRUSTED_NOTE,
    BackendUnavailable,
    Capability,
    Contract,
    Page,
    ResourceProvider,
    Target,
    ToolError,
    WriteInput,
    WriteOutput,
)
from opsgate.limits import Limiter
from opsgate.policy.decision import Decision, PolicyError, require_fields
from opsgate.policy.engine import PolicyEngine
from opsgate.redaction import redactor_for
from opsgate.state.base import Reservation, StateUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")
APPROVAL_ARG = "approval_id"
# A resource read the policy refused or a backend could not serve (unknown resources are -32602).
RESOURCE_REFUSED = -32003
META_PREFIX = "opsgate/"
# A handler's own `requestState` travels inside the gate's envelope, which names the logical call's
# first round; the SDK's RequestStateBoundary seals the whole envelope on the wire.
ROUND_KEY = "opsgate/continues_call"
# First protocol revision with multi-round-trip results (`InputRequiredResult`).
INPUT_REQUIRED_VERSION = "2026-07-28"
# Records kept in memory while the audit store fails, appended first once it takes records again.
_AUDIT_BACKLOG_MAX = 10000
# The client capability each embedded input request needs.
_INPUT_CAPABILITY = {"elicitation/create": "elicitation", "sampling/createMessage": "sampling", "roots/list": "roots"}


@dataclass
class GatedCall:
    """One logical call as the gate sees it, handed to the approval and audit hooks."""

    call_id: str
    contract: Contract[Any, Any]
    args: BaseModel
    args_doc: dict[str, Any]
    args_digest: str
    target: Target
    caller: Caller
    facts: dict[str, Any]
    approval_id: str | None

    @property
    def target_key(self) -> str:
        t = self.target
        return f"{t.environment}/{t.namespace or '-'}/{t.service or '-'}"


class ApprovalHook(Protocol):
    """Fills the approval step (the rollback capability's issue): grants bound to one exact call."""

    async def attach(self, call: GatedCall) -> dict[str, Any] | None:
        """The policy input's `approval` for `call.approval_id`; raise ToolError if it cannot be used."""
        ...

    async def request(self, call: GatedCall, decision: Decision, ctx: CallContext) -> tuple[str, dict[str, Any]]:
        """Create (or reuse) a pending approval; return the message for the model and its metadata."""
        ...

    async def consume(self, call: GatedCall) -> None:
        """Mark the grant used (single use) right before execution."""
        ...

    async def confirm(
        self, call: GatedCall, decision: Decision, ctx: CallContext
    ) -> dict[str, Any] | InputRequiredResult | None:
        """A client confirmation (form elicitation) where `decision.obligations.confirmation_ok`.

        The policy input's `approval` ({"kind": "confirmation", ...}) on accept; an
        InputRequiredResult to return on 2026-07-28 (the answer comes in a second round); or None.
        """
        ...


class _InputRequired(Exception):
    """The call needs client input first (2026-07-28 elicitation): return this interim result."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("input required")
        self.result = result


class Denied(Exception):
    """The call ends here with a tool error; `outcome` names why for the audit record."""

    def __init__(self, message: str, outcome: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.extra = extra or {}


async def within(seconds: float, work: Awaitable[T]) -> T:
    """Await `work`, raising TimeoutError past `seconds`: asyncio's own timeout when running on asyncio
    (a fraction of the cost of an anyio cancel scope), anyio's elsewhere."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with anyio.fail_after(seconds):
            return await work
    async with asyncio.timeout(seconds):
        return await work


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def compact_json(data: Any) -> str:
    """A result body as its text block carries it: compact, UTF-8, non-finite numbers as null (as the SDK
    writes structuredContent)."""
    try:
        return orjson.dumps(data).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def _validation_message(tool: str, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "arguments"
        problems.append(f"{loc}: {err['msg']}")
    return f"invalid arguments for {tool}: " + "; ".join(problems)


class Gate:
    """Holds the contracts and runs every call through the pipeline."""

    def __init__(
        self,
        settings: Settings,
        engine: PolicyEngine,
        audit: AuditLog,
        *,
        limiter: Limiter | None = None,
        approvals: ApprovalHook | None = None,
        caller_resolver: Callable[[ServerRequestContext[Any, Any], Settings], Caller] = resolve_caller,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.audit = audit
        self.limiter = limiter or Limiter(settings.limits)
        self.approvals = approvals
        self.resolve_caller = caller_resolver
        self.contracts: dict[str, Contract[Any, Any]] = {}
        self.resource_providers: list[ResourceProvider] = []
        self._tool_list: ListToolsResult | None = None
        self._audit_backlog: list[tuple[dict[str, Any], bool]] = []
        self._audit_error: str | None = None

    # -- the audit step -------------------------------------------------------------------------

    def _append(self, record: dict[str, Any], *, durable: bool) -> int:
        """Append `record`, first any records kept while the audit store failed.

        On failure the record is kept in memory (bounded), the gate marks the store unhealthy (real
        writes are refused until an append succeeds again) and the error is raised.
        """
        try:
            self._drain_backlog()
            seq = self.audit.append(record, durable=durable)
        except Exception as exc:
            self._audit_error = f"{type(exc).__name__}: {exc}"
            if len(self._audit_backlog) < _AUDIT_BACKLOG_MAX:
                self._audit_backlog.append((record, durable))
            raise
        self._audit_error = None
        return seq

    def audit_healthy(self) -> bool:
        """True when the audit store takes records (retrying what it refused before)."""
        if self._audit_error is None:
            return True
        try:
            self._drain_backlog()
        except Exception as exc:
            self._audit_error = f"{type(exc).__name__}: {exc}"
            return False
        self._audit_error = None
        return True

    def _drain_backlog(self) -> None:
        """Append the records kept while the audit store failed, oldest first (raises on the first refusal)."""
        while self._audit_backlog:
            record, durable = self._audit_backlog[0]
            self.audit.append(record, durable=durable)
            self._audit_backlog.pop(0)

    # -- registration -------------------------------------------------------------------------

    def register(self, capability: Capability) -> None:
        for contract in capability.contracts:
            if contract.name in self.contracts:
                raise ValueError(f"tool {contract.name!r} is registered twice")
            self.contracts[contract.name] = contract
        if capability.resources is not None:
            self.resource_providers.append(capability.resources)
        self._tool_list = None

    def list_tools(self) -> ListToolsResult:
        if self._tool_list is None:
            self._tool_list = ListToolsResult(tools=[c.definition() for c in self.contracts.values()])
        return self._tool_list

    # -- MCP middleware -----------------------------------------------------------------------

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        method = ctx.method
        if method == "tools/list":
            return self.list_tools()
        if method == "tools/call":
            params = ctx.params or {}
            name = params.get("name")
            arguments = params.get("arguments")
            caller = self.resolve_caller(ctx, self.settings)
            return await self.call_tool(
                name if isinstance(name, str) else "",
                arguments,
                caller,
                request_id=None if ctx.request_id is None else str(ctx.request_id),
                mcp_ctx=ctx,
            )
        if method == "resources/list":
            return await self.list_resources()
        if method == "resources/read":
            params = ctx.params or {}
            uri = params.get("uri")
            caller = self.resolve_caller(ctx, self.settings)
            return await self.read_resource(
                uri if isinstance(uri, str) else "",
                caller,
                request_id=None if ctx.request_id is None else str(ctx.request_id),
            )
        return await call_next(ctx)

    # -- the pipeline -------------------------------------------------------------------------

    async def call_tool(
        self,
        name: str,
        arguments: Any,
        caller: Caller,
        *,
        request_id: str | None = None,
        mcp_ctx: ServerRequestContext[Any, Any] | None = None,
    ) -> CallToolResult | InputRequiredResult:
        started = time.perf_counter()
        contract = self.contracts.get(name)
        if contract is None:
            name = shown_name(name)  # a megabyte name is neither echoed nor stored whole
        record = _new_record(name, caller, request_id)
        write = contract is not None and contract.scope == "write"
        mcp_ctx, continues = _continued_round(mcp_ctx)
        if continues is not None:
            record["continues_call"] = continues
        metric_name = name if contract else "unknown"

        def finish() -> int | None:
            """Every exit audits the call once (writes durably) and counts it; None if auditing failed."""
            elapsed = time.perf_counter() - started
            record["duration_ms"] = round(elapsed * 1000, 3)
            telemetry.observe_call(metric_name, record["outcome"], elapsed)
            try:
                return self._append(record, durable=write)
            except Exception:
                logger.exception("audit append failed for call %s", record["call_id"])
                return None

        with telemetry.span(f"tools/call {name}") as span:
            record["trace_id"] = telemetry.current_trace_id()
            try:
                result = await self._run(contract, name, arguments, caller, record, request_id, mcp_ctx)
            except Denied as denied:
                record["outcome"] = denied.outcome
                record["error"] = str(denied)
                result = self._error_result(str(denied), record, denied.extra)
            except _InputRequired as pending:
                # one round of a 2026-07-28 multi-round call; later rounds are audited with `continues_call`
                record["outcome"] = "input_required"
                finish()
                return pending.result
            except MCPError as exc:
                # a protocol error for the client to fix (a capability it did not declare), not a tool error
                record["outcome"] = "invalid"
                record["error"] = exc.message
                finish()
                raise
            except anyio.get_cancelled_exc_class():
                record["outcome"] = "cancelled"
                finish()
                raise
            span.set_attribute("opsgate.outcome", record.get("outcome", "ok"))
        seq = finish()
        if seq is None:
            return self._audit_failed_result(name, record)
        if result.meta is None:
            result.meta = {}
        result.meta[META_PREFIX + "audit_seq"] = seq
        return result

    def _audit_failed_result(self, name: str, record: dict[str, Any]) -> CallToolResult:
        """The call ran (or was refused) but its audit record could not be stored: say exactly that."""
        error = self._audit_error or "unknown error"
        if record.get("applied"):
            text = (
                f"{name}: the change WAS APPLIED (call {record['call_id']}), but recording it in the audit trail "
                f"failed ({error}). Do not retry it: check its state with a read tool. Further writes are refused "
                "until the audit store is healthy; tell a human."
            )
        elif "applied" in record and record["applied"] is None:
            text = (
                f"{name}: the write ended in an error and MAY HAVE BEEN APPLIED (call {record['call_id']}), and "
                f"recording it in the audit trail failed ({error}). Do not retry it: check its state with a read "
                "tool. Further writes are refused until the audit store is healthy; tell a human."
            )
        elif record.get("outcome") in ("ok", "failed"):
            text = (
                f"{name}: the audit trail could not record this call ({error}), so its result is withheld; nothing "
                "was changed. Writes are refused until the audit store is healthy; tell a human."
            )
        else:
            text = (
                f"{record.get('error') or name + ': refused'} (and the audit trail could not record this: {error}; "
                "writes are refused until it is healthy)"
            )
        meta = {**_result_meta(record), META_PREFIX + "outcome": "audit_failed", META_PREFIX + "audit_error": error}
        if record.get("applied"):
            meta[META_PREFIX + "applied"] = True
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True, _meta=meta)

    async def _run(
        self,
        contract: Contract[Any, Any] | None,
        name: str,
        arguments: Any,
        caller: Caller,
        record: dict[str, Any],
        request_id: str | None,
        mcp_ctx: ServerRequestContext[Any, Any] | None,
    ) -> CallToolResult:
        if contract is None:
            known = ", ".join(sorted(self.contracts)) or "none"
            raise Denied(f"unknown tool {name!r}; this server offers: {known}", "invalid")
        record.update(capability=contract.capability, scope=contract.scope)

        # 1. validate
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise Denied(f"invalid arguments for {name}: expected an object", "invalid")
        try:
            # JSON has no NaN or Infinity (RFC 8259); a client parser that let them through does not make them numbers
            encoded = json.dumps(arguments, default=str, allow_nan=False)
        except ValueError:
            record["args_digest"] = digest(arguments)
            record["args"] = _stored_args(arguments, record)
            raise Denied(f"invalid arguments for {name}: NaN and Infinity are not JSON numbers", "invalid") from None
        size = len(encoded)
        if size > self.settings.max_argument_bytes:
            record["args_digest"] = digest(arguments)
            raise Denied(
                f"invalid arguments for {name}: {size} bytes is over the {self.settings.max_argument_bytes} byte limit",
                "invalid",
            )
        try:
            # strict, as JSON: `limit=true` or `limit="5"` is an error, not 1 or 5
            args = contract.input_model.model_validate_json(encoded, strict=True)
        except ValidationError as exc:
            record["args_digest"] = digest(arguments)
            record["args"] = _stored_args(arguments, record)
            raise Denied(_validation_message(name, exc), "invalid") from None
        write_args = args if isinstance(args, WriteInput) else None
        approval_id = write_args.approval_id if write_args is not None else None
        args_doc = args.model_dump(mode="json", exclude={APPROVAL_ARG})
        record["args"] = _stored_args(args_doc, record)
        record["args_digest"] = digest({"tool": name, "args": args_doc})

        target = contract.target(args)
        if target.environment is None:
            target = Target(
                environment=self.settings.environment_of(target.namespace),
                namespace=target.namespace,
                service=target.service,
            )
        record["target"] = target.document
        ctx = CallContext(call_id=record["call_id"], caller=caller, target=target, request_id=request_id, mcp=mcp_ctx)
        if mcp_ctx is not None:
            ctx.progress = _progress_sender(mcp_ctx)

        # 2. facts only the server knows, computed before deciding
        facts: dict[str, Any] = {}
        if contract.facts is not None:
            try:
                with anyio.fail_after(contract.timeout_s):
                    facts = await contract.facts(args, ctx)
            except ToolError as exc:
                raise Denied(f"{name}: {exc}", "error") from None
            except TimeoutError:
                raise Denied(f"{name}: timed out after {contract.timeout_s:g}s gathering facts", "timeout") from None
        ctx.facts = facts
        record["facts"] = facts
        call = GatedCall(
            call_id=ctx.call_id,
            contract=contract,
            args=args,
            args_doc=args_doc,
            args_digest=record["args_digest"],
            target=target,
            caller=caller,
            facts=facts,
            approval_id=approval_id or None,
        )

        # 3. approval presented with the call (validated by the hook, judged by the policy)
        approval: dict[str, Any] | None = None
        if call.approval_id is not None:
            if self.approvals is None:
                raise Denied(f"{name}: this server does not handle approvals", "invalid")
            try:
                approval = await self.approvals.attach(call)
            except ToolError as exc:
                raise Denied(f"{name}: approval {call.approval_id} cannot be used: {exc}", "denied") from None
            record["approval"] = approval

        # 4. a real write is refused early while the audit store fails or its target's breaker is open
        real_write = write_args is not None and not write_args.dry_run
        if real_write:
            if not self.audit_healthy():
                raise Denied(
                    f"{name}: writes are refused while the audit store fails ({self._audit_error}); tell a human",
                    "error",
                )
            try:
                refusal = self.limiter.breaker_refusal(call.target_key)
            except StateUnavailable as exc:
                raise Denied(f"{name}: the state store is unavailable, so writes fail closed: {exc}", "error") from None
            if refusal is not None:
                raise Denied(f"{name}: {refusal}", "rate_limited")
        reserved: list[Reservation] = []
        applied = False
        try:
            result, applied = await self._decide_and_execute(
                contract, name, args, call, ctx, approval, real_write, record, mcp_ctx, reserved
            )
        finally:
            for reservation in reserved:
                # an error mid-write leaves `applied` unknown (None): its events stay taken
                keep = applied or ("applied" in record and record["applied"] is None)
                try:
                    self.limiter.settle(reservation, applied=keep)
                except Exception:  # the events stay counted until their window ends: fail closed
                    logger.exception("could not settle limit reservation %s", reservation.id)
        return result

    async def _decide_and_execute(
        self,
        contract: Contract[Any, Any],
        name: str,
        args: BaseModel,
        call: GatedCall,
        ctx: CallContext,
        approval: dict[str, Any] | None,
        real_write: bool,
        record: dict[str, Any],
        mcp_ctx: ServerRequestContext[Any, Any] | None,
        reserved: list[Reservation],
    ) -> tuple[CallToolResult, bool]:
        # 5. decide (fail closed); the counts the policy sees include writes still running
        policy_input = self._policy_input(contract, call, approval)
        decision = await self._decide(policy_input, record)
        ctx.decision = decision
        if not decision.allow and decision.require_approval and approval is None and self.approvals is not None:
            # a client confirmation counts only where the policy says so (obligations.confirmation_ok)
            confirmed = await self.approvals.confirm(call, decision, ctx)
            if isinstance(confirmed, InputRequiredResult):
                raise _InputRequired(confirmed)
            if confirmed is not None:
                approval = confirmed
                record["approval"] = approval
                decision = await self._decide(self._policy_input(contract, call, approval), record)
                ctx.decision = decision
        if not decision.allow:
            if decision.require_approval and self.approvals is not None:
                message, extra = await self.approvals.request(call, decision, ctx)
                record["approval"] = extra
                raise Denied(message, "pending_approval", {"approval": extra, **_denial_meta(decision)})
            raise Denied(_denial_text(name, decision), "denied", _denial_meta(decision))
        if decision.obligations.dry_run_only and real_write:
            raise Denied(f"{name}: policy allows only dry runs here; call again with dry_run=true", "denied")
        if real_write and decision.obligations.budget is None:
            # budgets are policy data: an allowed real write without one cannot be held to any (fail closed)
            reason = "the policy allowed a real write without a write budget"
            raise Denied(f"{name}: denied (fail closed): {reason}", "denied")

        # 6. limits: the call rate per caller (under a global ceiling); a real write reserves its budget
        # atomically in the shared state, so writes the policy allowed concurrently cannot outrun it
        refusal = self.limiter.admit(name, call.caller.subject)
        if refusal is not None:
            raise Denied(f"{name}: {refusal}", "rate_limited")
        if real_write and decision.obligations.budget is not None:
            try:
                reservation = self.limiter.reserve(name, call.target_key, decision.obligations.budget)
            except StateUnavailable as exc:
                raise Denied(f"{name}: the state store is unavailable, so writes fail closed: {exc}", "error") from None
            if reservation.refused is not None:
                raise Denied(f"{name}: {reservation.refused}", "rate_limited")
            reserved.append(reservation)

        # The policy's item cap lowers the request's own `limit`: the backend returns at most that many (and a
        # cursor that continues after them), and the result's `limit` is the limit applied.
        max_items = decision.obligations.max_items
        requested = args.__dict__.get("limit")  # a field, when the input has one (getattr misses slowly)
        if max_items is not None and type(requested) is int and requested > max_items:
            args = args.model_copy(update={"limit": max_items})
            record["capped"] = {"items": max_items}

        # 7. execute
        if approval is not None and self.approvals is not None:
            await self.approvals.consume(call)
        if real_write:
            # A real write leaves a durable trace before it touches anything, so a crash mid-change is visible.
            try:
                self._append({**record, "outcome": "started"}, durable=True)
            except Exception as exc:
                raise Denied(
                    f"{name}: the audit store failed ({type(exc).__name__}: {exc}), so the write was not started",
                    "error",
                ) from None
        try:
            output = await within(contract.timeout_s, contract.handler(args, ctx))
        except TimeoutError:
            self._write_failed(real_write, call, record)
            raise Denied(f"{name}: timed out after {contract.timeout_s:g}s", "timeout") from None
        except BackendUnavailable as exc:
            self._write_failed(real_write, call, record)
            raise Denied(f"{name}: backend unavailable: {exc}", "error") from None
        except ToolError as exc:
            raise Denied(f"{name}: {exc}", "error") from None
        except MCPError:
            raise
        except Exception:
            logger.exception("tool %s failed", name)
            self._write_failed(real_write, call, record)
            raise Denied(f"{name}: internal error (see server log, call {ctx.call_id})", "error") from None
        if isinstance(output, InputRequiredResult):
            # the handler asks the client first; nothing was done, so the limiter records nothing
            raise _InputRequired(_interim_result(name, output, record, mcp_ctx))
        written = output if isinstance(output, WriteOutput) else None
        applied = written is not None and written.applied
        failed = written is not None and written.failed
        if contract.scope == "write":
            record["applied"] = applied
        if real_write:
            self.limiter.write_result(call.target_key, ok=not failed)

        # 8. shape
        result = self._shape(contract, output, decision, record)
        record["outcome"] = "ok" if not failed else "failed"
        return result, applied

    def _write_failed(self, real_write: bool, call: GatedCall, record: dict[str, Any]) -> None:
        """A real write ended in an error: it may have changed something, so its limits stay taken."""
        if not real_write:
            return
        record["applied"] = None  # unknown
        try:
            self.limiter.write_result(call.target_key, ok=False)
        except Exception:
            logger.exception("could not record a failed write on %s", call.target_key)

    def _policy_input(
        self, contract: Contract[Any, Any], call: GatedCall, approval: dict[str, Any] | None
    ) -> dict[str, Any]:
        return self._policy_document(
            tool=contract.name,
            capability=contract.capability,
            scope=contract.scope,
            risk=contract.risk,
            args=call.args_doc,
            target=call.target,
            facts=call.facts,
            caller=call.caller,
            approval=approval,
            recent={contract.name: self._recent(contract, call)},
        )

    def _recent(self, contract: Contract[Any, Any], call: GatedCall) -> dict[str, int | float | None]:
        if contract.scope != "write":
            return {"target_1h": 0, "global_1m": 0, "target_last_s": None}
        try:
            return self.limiter.recent(contract.name, call.target_key)
        except StateUnavailable as exc:
            raise Denied(f"{contract.name}: the state store is unavailable: {exc}", "error") from None

    def _policy_document(
        self,
        *,
        tool: str,
        capability: str,
        scope: str,
        risk: str,
        args: dict[str, Any],
        target: Target,
        facts: dict[str, Any],
        caller: Caller,
        approval: dict[str, Any] | None,
        recent: dict[str, Any],
    ) -> dict[str, Any]:
        """The policy input document (DESIGN.md "Policy"): the one shape every decision is asked over."""
        return {
            "tool": tool,
            "capability": capability,
            "scope": scope,
            "risk": risk,
            "args": args,
            "target": target.document,
            "facts": facts,
            "caller": caller.document,
            "approval": approval,
            "context": {
                "now": _now_iso(),
                "autonomy": self.settings.autonomy,
                "recent": recent,
                # the OAuth scope the deployment names for writes (null: none); the policy requires it
                "write_scope": self.settings.http.write_scope,
            },
        }

    async def _decide(self, policy_input: dict[str, Any], record: dict[str, Any]) -> Decision:
        decision_id = "dec_" + secrets.token_hex(10)
        summary: dict[str, Any] = {
            "decision_id": decision_id,
            "engine": self.engine.name,
            "policy_revision": self.engine.revision,
        }
        record["decision"] = summary
        try:
            if getattr(self.engine, "bounded_inline", False):
                # Evaluated inline under an instruction limit: a timer could not interrupt it anyway.
                decision = await self.engine.decide(policy_input)
            else:
                with anyio.fail_after(self.settings.policy.timeout_s):
                    decision = await self.engine.decide(policy_input)
            require_fields(decision, str(policy_input.get("scope")))
        except TimeoutError:
            reason = f"policy engine timed out after {self.settings.policy.timeout_s:g}s"
            summary.update(allow=False, reasons=[reason], error=reason)
            telemetry.count_decision("error")
            raise Denied(f"denied (fail closed): {reason}", "denied", {"decision_id": decision_id}) from None
        except Exception as exc:
            reason = (
                f"policy engine failed: {exc}"
                if isinstance(exc, PolicyError)
                else (f"policy engine failed: {type(exc).__name__}: {exc}")
            )
            summary.update(allow=False, reasons=[reason], error=reason)
            telemetry.count_decision("error")
            raise Denied(f"denied (fail closed): {reason}", "denied", {"decision_id": decision_id}) from None
        summary.update(
            allow=decision.allow,
            reasons=decision.reasons,
            rule=decision.rule,
            require_approval=decision.require_approval,
            obligations=decision.obligations.model_dump(),
        )
        if decision.allow and decision.require_approval:
            # `require_approval` wins whatever `allow` says: the call is held for an approval.
            decision = decision.model_copy(update={"allow": False})
            summary["allow"] = False
        telemetry.count_decision("allow" if decision.allow else "deny")
        return decision

    def _shape(
        self, contract: Contract[Any, Any], output: BaseModel, decision: Decision, record: dict[str, Any]
    ) -> CallToolResult:
        obligations = decision.obligations
        data = output.model_dump(mode="json")
        notes: list[str] = []
        capped: dict[str, int] = dict(record.get("capped") or {})
        if isinstance(output, Page) and obligations.max_items is not None and len(output.items) > obligations.max_items:
            data["items"] = data["items"][: obligations.max_items]
            data["truncated"] = True
            data["limit"] = min(data["limit"], obligations.max_items)
            capped["items"] = obligations.max_items
        if capped:
            record["capped"] = capped
            notes.append(f"policy caps results at {capped['items']} items")
        redacted = 0
        if obligations.redact:
            data, redacted = redactor_for(tuple(obligations.redact_patterns)).redact_obj(data)
            if redacted:
                notes.append(f"{redacted} secret(s) masked")
        shaped = contract.output_model.model_validate(data) if notes else output
        summary = contract.summarize(shaped)
        text = summary
        if notes:
            text += " (" + "; ".join(notes) + ")"
        untrusted = contract.untrusted
        if untrusted:
            text += " " + UNTRUSTED_NOTE
        # the same notes inside structuredContent: some clients forward only that to the model
        data[NOTES_FIELD] = {"untrusted_fields": untrusted, "capped": capped, "redactions": redacted}
        body = compact_json(data)
        record["output_digest"] = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
        content: list[ContentBlock] = (
            contract.content(shaped)
            if contract.content is not None
            else [TextContent(type="text", text=text), TextContent(type="text", text=body)]
        )
        return CallToolResult(
            content=content,
            structured_content=data,
            is_error=False,
            _meta={
                **_result_meta(record),
                META_PREFIX + "redacted": redacted,
            },
        )

    def _error_result(self, message: str, record: dict[str, Any], extra: dict[str, Any]) -> CallToolResult:
        meta = {**_result_meta(record), META_PREFIX + "outcome": record["outcome"]}
        for key, value in extra.items():
            meta[META_PREFIX + key] = value
        return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True, _meta=meta)

    # -- resources ----------------------------------------------------------------------------

    async def list_resources(self) -> ListResourcesResult:
        resources: list[Resource] = []
        for provider in self.resource_providers:
            for entry in await provider.list():
                resources.append(
                    Resource(
                        uri=entry.uri,
                        name=entry.name,
                        title=entry.title,
                        description=entry.description,
                        mime_type=entry.mime_type,
                    )
                )
        return ListResourcesResult(resources=resources)

    async def read_resource(self, uri: str, caller: Caller, *, request_id: str | None) -> ReadResourceResult:
        """A resource read is gated and audited like a read tool named `<capability>_resource_read`.

        Errors: an unknown resource is -32602 (invalid params) with `data.uri` (SEP-2164); a policy
        denial or a backend failure is -32003. Text is redacted as the policy asks; binary
        content (a provider returning bytes) is served as a base64 blob, unredacted.
        """
        started = time.perf_counter()
        provider = next((p for p in self.resource_providers if uri.startswith(f"{p.capability}://")), None)
        tool = f"{provider.capability if provider else 'unknown'}_resource_read"
        record = _new_record(tool, caller, request_id)
        record["trace_id"] = telemetry.current_trace_id()
        record["args"] = {"uri": uri}
        record["args_digest"] = digest({"tool": tool, "args": {"uri": uri}})
        contents: TextResourceContents | BlobResourceContents
        try:
            if provider is None:
                raise Denied(f"resource not found: unknown resource {uri!r}", "invalid", {"uri": uri})
            policy_input = self._policy_document(
                tool=tool,
                capability=provider.capability,
                scope="read",
                risk="low",
                args={"uri": uri},
                target=Target(environment=self.settings.default_environment),
                facts={},
                caller=caller,
                approval=None,
                recent={},
            )
            decision = await self._decide(policy_input, record)
            if not decision.allow:
                raise Denied(_denial_text(tool, decision), "denied")
            try:
                body = await provider.read(uri)
                mime = await provider.mime_type(uri)
            except BackendUnavailable as exc:
                raise Denied(f"{tool}: backend unavailable: {exc}", "error") from None
            except ToolError as exc:
                raise Denied(f"resource not found: {exc}", "invalid", {"uri": uri}) from None
            if isinstance(body, bytes):
                blob = base64.b64encode(body).decode("ascii")
                contents = BlobResourceContents(uri=uri, mime_type=mime or "application/octet-stream", blob=blob)
                record["output_digest"] = digest(blob)
            else:
                if decision.obligations.redact:
                    body, _ = redactor_for(tuple(decision.obligations.redact_patterns)).redact_text(body)
                contents = TextResourceContents(uri=uri, mime_type=mime or "text/plain", text=body)
                record["output_digest"] = digest(body)
            record["outcome"] = "ok"
        except Denied as denied:
            record["outcome"] = denied.outcome
            record["error"] = str(denied)
            record["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
            self.audit.append(record)
            if denied.outcome == "invalid":
                raise MCPError(code=INVALID_PARAMS, message=str(denied), data=denied.extra) from None
            raise MCPError(code=RESOURCE_REFUSED, message=str(denied)) from None
        record["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        self.audit.append(record)
        return ReadResourceResult(contents=[contents])


def _stored_args(arguments: Any, record: dict[str, Any]) -> Any:
    """Arguments as the audit trail stores them: secrets masked (the digest covers the exact ones)."""
    stored, masked = redact_for_storage(arguments)
    if masked:
        record["args_redacted"] = masked
    return stored


MAX_SHOWN_NAME = 120


def shown_name(name: str) -> str:
    """An unknown tool name as errors and the audit trail show it: at most MAX_SHOWN_NAME characters."""
    if len(name) <= MAX_SHOWN_NAME:
        return name
    return f"{name[: MAX_SHOWN_NAME - 40]}...[{len(name)} characters]"


def _new_record(tool: str, caller: Caller, request_id: str | None) -> dict[str, Any]:
    """The head every audit record starts with; the pipeline adds to it as the call goes."""
    return {
        "ts": _now_iso(),
        "call_id": "call_" + secrets.token_hex(10),
        "request_id": request_id,
        "trace_id": None,
        "caller": caller.document,
        "tool": tool,
    }


def _result_meta(record: dict[str, Any]) -> dict[str, Any]:
    """What joins a result to its audit record and decision (`_meta` of every tool result)."""
    decision = record.get("decision") or {}
    return {
        META_PREFIX + "call_id": record["call_id"],
        META_PREFIX + "decision_id": decision.get("decision_id"),
        META_PREFIX + "policy_revision": decision.get("policy_revision"),
        META_PREFIX + "request_id": record.get("request_id"),
        META_PREFIX + "trace_id": record.get("trace_id"),
    }


def _continued_round(
    mcp_ctx: ServerRequestContext[Any, Any] | None,
) -> tuple[ServerRequestContext[Any, Any] | None, str | None]:
    """Unwrap the gate's round envelope from a (boundary-verified) `requestState`.

    Returns the context the handler sees (its own state back in `requestState`) and the call id of
    the logical call's first round, or the context unchanged and None when this is no later round.
    """
    params = mcp_ctx.params if mcp_ctx is not None else None
    raw = params.get("requestState") if params is not None else None
    if mcp_ctx is None or params is None or not isinstance(raw, str):
        return mcp_ctx, None
    try:
        envelope = json.loads(raw)
    except ValueError:
        return mcp_ctx, None
    if not isinstance(envelope, dict) or not isinstance(envelope.get(ROUND_KEY), str):
        return mcp_ctx, None
    inner = envelope.get("state")
    unwrapped = {k: v for k, v in params.items() if k != "requestState"}
    if isinstance(inner, str):
        unwrapped["requestState"] = inner
    return replace(mcp_ctx, params=unwrapped), envelope[ROUND_KEY]


def _interim_result(
    name: str, result: InputRequiredResult, record: dict[str, Any], mcp_ctx: ServerRequestContext[Any, Any] | None
) -> InputRequiredResult:
    """Check a handler's InputRequiredResult against the client and wrap its state in the round envelope."""
    requests = result.input_requests or {}
    record["input_requests"] = {key: request.method for key, request in sorted(requests.items())}
    if mcp_ctx is not None:
        if not is_version_at_least(mcp_ctx.protocol_version, INPUT_REQUIRED_VERSION):
            raise Denied(
                f"{name}: this tool needs client input (an InputRequiredResult), which protocol version "
                f"{mcp_ctx.protocol_version} cannot carry; use {INPUT_REQUIRED_VERSION} or later",
                "error",
            )
        declared = mcp_ctx.session.client_capabilities
        missing = sorted(
            {
                capability
                for request in requests.values()
                if (capability := _INPUT_CAPABILITY.get(request.method)) is not None
                and (declared is None or getattr(declared, capability) is None)
            }
        )
        if missing:
            required = ClientCapabilities.model_validate({capability: {} for capability in missing})
            raise MCPError(
                code=MISSING_REQUIRED_CLIENT_CAPABILITY,
                message=f"{name}: the client did not declare the {', '.join(missing)} capability this call needs",
                data={"requiredCapabilities": required.model_dump(by_alias=True, mode="json", exclude_none=True)},
            )
    first = record.get("continues_call") or record["call_id"]
    envelope = json.dumps({ROUND_KEY: first, "state": result.request_state}, separators=(",", ":"))
    return result.model_copy(update={"request_state": envelope})


def _denial_text(tool: str, decision: Decision) -> str:
    reasons = "; ".join(decision.reasons) or "no rule allowed this call"
    text = f"{tool}: denied by policy"
    if decision.rule:
        text += f" (rule {decision.rule})"
    text += f": {reasons}."
    if decision.require_approval:
        who = ", ".join(decision.approvers) or "an approver"
        text += f" It needs {max(decision.approvals_needed, 1)} approval(s) by role {who}."
    if decision.alternative:
        text += f" Alternative: {decision.alternative}."
    return text


def _denial_meta(decision: Decision) -> dict[str, Any]:
    return {
        "reasons": decision.reasons,
        "rule": decision.rule,
        "require_approval": decision.require_approval,
        "approvers": decision.approvers,
        "alternative": decision.alternative,
    }


def _progress_sender(mcp_ctx: ServerRequestContext[Any, Any]) -> ProgressFn:
    # The raw `params._meta.progressToken` (the parsed `ctx.meta` renames it to `progress_token`).
    token = progress_token_from_params(mcp_ctx.params)
    related = None if mcp_ctx.request_id is None else str(mcp_ctx.request_id)

    async def send(progress: float, total: float | None = None, message: str | None = None) -> None:
        if token is None:
            return
        try:
            await mcp_ctx.session.send_progress_notification(
                token, progress, total, message, related_request_id=related
            )
        except Exception:  # progress is best effort; a closed stream must not fail the call
            logger.debug("progress notification dropped", exc_info=True)

    return send
