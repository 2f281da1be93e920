"""The rollback capability: `rollout_history`, `rollout_status`, `changes_recent`, `rollback_deployment`.

`rollback_deployment` follows `kubectl rollout undo` (see `revisions`), always runs a server-side dry
run (`dryRun=All`) first, and when applying waits for the rollout for at most `wait_s` (hosted agents
cut calls at 100 s), sending MCP progress notifications while it waits; past that it returns the
applied state and `rollout_status` follows it. Access control, approvals and budgets are the gate's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from opsgate import kube_client
from opsgate.config import Settings, load_section
from opsgate.contracts import BackendUnavailable, Capability, Contract, Target, ToolError
from opsgate.gate import CallContext
from opsgate.kube_client import label_selector, parse_time
from opsgate.rollback.backends.kubernetes import JsonObject, KubernetesBackend
from opsgate.rollback.contracts import (
    ChangeItem,
    ChangesInput,
    ChangesOutput,
    Condition,
    DeploymentRef,
    DryRunOutcome,
    EnvChange,
    HistoryInput,
    HistoryOutput,
    ImageChange,
    RevisionItem,
    RollbackInput,
    RollbackOutput,
    RolloutStatus,
    StatusInput,
)
from opsgate.rollback.revisions import (
    RollbackPlan,
    images,
    owned_revisions,
    plan_rollback,
    revision_of,
    rollout_state,
)
from opsgate.rollback.settings import RollbackSettings as RollbackSettings


def _last_progress(deployment: JsonObject) -> datetime | None:
    """When the Deployment's rollout last made progress (the Progressing condition's update time)."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing":
            return parse_time(condition.get("lastUpdateTime") or condition.get("lastTransitionTime"))
    return None


def rollout_status_of(deployment: JsonObject) -> RolloutStatus:
    meta, spec, status = deployment["metadata"], deployment.get("spec") or {}, deployment.get("status") or {}
    state = rollout_state(deployment)
    return RolloutStatus(
        namespace=str(meta.get("namespace", "")),
        deployment=str(meta.get("name", "")),
        revision=revision_of(deployment),
        state=state.state,
        message=state.message,
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        replicas=int(spec["replicas"]) if spec.get("replicas") is not None else 1,
        updated_replicas=int(status.get("updatedReplicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        images=images(spec.get("template") or {}),
        conditions=[
            Condition(
                type=c.get("type", ""), status=c.get("status", ""), reason=c.get("reason"), message=c.get("message")
            )
            for c in status.get("conditions") or []
        ],
    )


class RollbackService:
    """The handlers, over one backend."""

    def __init__(self, backend: KubernetesBackend, config: RollbackSettings) -> None:
        self.backend = backend
        self.config = config

    async def _deployment_and_sets(self, namespace: str, name: str) -> tuple[JsonObject, list[JsonObject]]:
        deployment = await self.backend.get_deployment(namespace, name)
        selector = label_selector((deployment.get("spec") or {}).get("selector") or {})
        return deployment, await self.backend.list_replica_sets(namespace, selector)

    async def plan(self, args: RollbackInput) -> RollbackPlan:
        deployment, replica_sets = await self._deployment_and_sets(args.namespace, args.deployment)
        return plan_rollback(deployment, replica_sets, args.to_revision)

    # -- reads ------------------------------------------------------------------------------

    async def history(self, args: HistoryInput, ctx: CallContext) -> HistoryOutput:
        deployment, replica_sets = await self._deployment_and_sets(args.namespace, args.deployment)
        current = revision_of(deployment)
        revisions = list(reversed(owned_revisions(deployment, replica_sets)))
        items = [
            RevisionItem(
                revision=r.number,
                current=r.number == current,
                images=images(r.template),
                change_cause=r.change_cause,
                created=parse_time(r.created),
                replica_set=r.replica_set,
                replicas=r.replicas,
                ready_replicas=r.ready_replicas,
            )
            for r in revisions[: args.limit]
        ]
        return HistoryOutput(
            items=items,
            truncated=len(revisions) > args.limit,
            limit=args.limit,
            backend=self.backend.name,
            namespace=args.namespace,
            deployment=args.deployment,
            current_revision=current,
        )

    async def status(self, args: StatusInput, ctx: CallContext) -> RolloutStatus:
        return rollout_status_of(await self.backend.get_deployment(args.namespace, args.deployment))

    async def changes(self, args: ChangesInput, ctx: CallContext) -> ChangesOutput:
        since = datetime.now(UTC) - timedelta(minutes=args.since_minutes)
        if args.deployment is not None:
            deployments = [await self.backend.get_deployment(args.namespace, args.deployment)]
        else:
            deployments = await self.backend.list_deployments(args.namespace)
        replica_sets = await self.backend.list_replica_sets(args.namespace, None)
        found: list[ChangeItem] = []
        for deployment in deployments:
            current = revision_of(deployment)
            progressed = _last_progress(deployment)
            for r in owned_revisions(deployment, replica_sets):
                created = parse_time(r.created)
                moments = [t for t in (created, progressed if r.number == current else None) if t is not None]
                changed_at = max(moments) if moments else None
                if changed_at is None or changed_at < since:
                    continue
                found.append(
                    ChangeItem(
                        deployment=str(deployment["metadata"]["name"]),
                        revision=r.number,
                        created=created,
                        changed_at=changed_at,
                        images=images(r.template),
                        change_cause=r.change_cause,
                        current=r.number == current,
                    )
                )
        found.sort(key=lambda c: (c.changed_at or since, c.deployment, c.revision), reverse=True)
        return ChangesOutput(
            items=found[: args.limit],
            truncated=len(found) > args.limit,
            limit=args.limit,
            backend=self.backend.name,
            namespace=args.namespace,
            since=since,
        )

    # -- the rollback -----------------------------------------------------------------------

    async def facts(self, args: RollbackInput, ctx: CallContext) -> dict[str, Any]:
        return (await self.plan(args)).facts()

    async def rollback(self, args: RollbackInput, ctx: CallContext) -> RollbackOutput:
        plan = await self.plan(args)
        decided = ctx.facts
        if decided and (decided.get("to_revision"), decided.get("from_revision")) != (
            plan.target.number,
            plan.from_revision,
        ):
            raise ToolError(
                f"deployment {args.deployment!r} changed between the policy decision and execution (it was at "
                f"revision {decided.get('from_revision')}, now {plan.from_revision}); nothing was changed; call again"
            )
        if plan.noop:
            return self._output(
                args,
                plan,
                None,
                None,
                0.0,
                f"skipped: the current template already matches revision {plan.target.number}; nothing to do",
            )
        try:
            preview = await self.backend.patch_deployment(args.namespace, args.deployment, plan.patch, dry_run=True)
            dry = DryRunOutcome(
                ok=True,
                message=f"the API server accepted the rollback patch (dryRun=All); generation would be "
                f"{preview['metadata'].get('generation')}",
            )
        except BackendUnavailable:
            raise
        except ToolError as exc:
            if not args.dry_run:
                raise ToolError(f"server-side dry run failed, so nothing was applied: {exc}") from None
            dry = DryRunOutcome(ok=False, message=str(exc))
        if args.dry_run:
            step = (
                "dry run only; to apply, call again with dry_run=false and a reason (it may need a human approval)"
                if dry.ok
                else "the real rollback would fail the same way; fix the cause or escalate to a human"
            )
            return self._output(args, plan, dry, None, 0.0, step)

        await self.backend.patch_deployment(args.namespace, args.deployment, plan.patch, dry_run=False)
        return await self._wait(args, plan, dry, ctx)

    async def _wait(
        self, args: RollbackInput, plan: RollbackPlan, dry: DryRunOutcome, ctx: CallContext
    ) -> RollbackOutput:
        started = time.monotonic()
        deadline = started + self.config.wait_s
        status: RolloutStatus | None = None
        while True:
            try:
                status = rollout_status_of(await self.backend.get_deployment(args.namespace, args.deployment))
            except ToolError as exc:  # applied already: report that, never "failed to roll back"
                waited = time.monotonic() - started
                return self._output(
                    args,
                    plan,
                    dry,
                    status,
                    waited,
                    f"the rollback was applied but its rollout status could not be read ({exc}); "
                    "follow it with rollout_status",
                    applied=True,
                )
            await ctx.progress(
                float(min(status.available_replicas, status.updated_replicas)),
                float(max(status.replicas, 1)),
                f"revision {plan.target.number}: {status.message}",
            )
            if status.state in ("complete", "failed") or time.monotonic() >= deadline:
                break
            await anyio.sleep(min(self.config.poll_s, max(deadline - time.monotonic(), 0.0)))
        waited = round(time.monotonic() - started, 3)
        if status.state == "complete":
            step = f"rolled back to revision {plan.target.number}; the rollout completed. Verify with metrics and logs"
        elif status.state == "failed":
            step = f"the rollout of revision {plan.target.number} failed: {status.message}; escalate to a human"
        else:
            step = f"still rolling out after {waited:.0f}s ({status.message}); follow it with rollout_status"
        return self._output(args, plan, dry, status, waited, step, applied=True, failed=status.state == "failed")

    def _output(
        self,
        args: RollbackInput,
        plan: RollbackPlan,
        dry: DryRunOutcome | None,
        status: RolloutStatus | None,
        waited: float,
        next_step: str,
        *,
        applied: bool = False,
        failed: bool = False,
    ) -> RollbackOutput:
        d = plan.diff
        return RollbackOutput(
            namespace=args.namespace,
            deployment=args.deployment,
            from_revision=plan.from_revision,
            to_revision=plan.target.number,
            dry_run=args.dry_run,
            applied=applied,
            failed=failed,
            noop=plan.noop,
            images_before=d.images_before,
            images_after=d.images_after,
            image_changes=[ImageChange(container=c, before=b, after=a) for c, b, a in d.image_changes],
            env_changes=[EnvChange(container=c, name=n, before=b, after=a) for c, n, b, a in d.env_changes],
            other_changes=d.other_changes,
            server_dry_run=dry,
            rollout=status,
            waited_s=round(waited, 3),
            next_step=next_step,
        )


def _target(args: DeploymentRef | ChangesInput) -> Target:
    return Target(namespace=args.namespace, service=getattr(args, "deployment", None))


def _summarize_history(out: HistoryOutput) -> str:
    if not out.items:
        return f"{out.namespace}/{out.deployment}: no revisions found."
    head = out.items[0]
    imgs = ", ".join(head.images.values())
    return f"{out.namespace}/{out.deployment}: {len(out.items)} revision(s); current {out.current_revision} ({imgs})."


def _summarize_status(out: RolloutStatus) -> str:
    return (
        f"{out.namespace}/{out.deployment} revision {out.revision}: {out.state} ({out.message}); "
        f"{out.available_replicas}/{out.replicas} available."
    )


def _summarize_changes(out: ChangesOutput) -> str:
    if not out.items:
        return f"No rollouts in {out.namespace} since {out.since.isoformat(timespec='minutes')}."
    newest = out.items[0]
    return (
        f"{len(out.items)} rollout(s) in {out.namespace} since {out.since.isoformat(timespec='minutes')}; newest: "
        f"{newest.deployment} revision {newest.revision} at {newest.changed_at}."
    )


def _summarize_rollback(out: RollbackOutput) -> str:
    change = "; ".join(f"{c.container}: {c.before} -> {c.after}" for c in out.image_changes) or "no image change"
    if out.noop:
        verb = "no-op"
    elif not out.applied:
        verb = "dry run" + ("" if out.server_dry_run is None or out.server_dry_run.ok else " (server refused)")
    elif out.failed:
        verb = "APPLIED, ROLLOUT FAILED"
    else:
        verb = "applied, rollout " + (out.rollout.state if out.rollout else "unknown")
    return (
        f"{out.namespace}/{out.deployment} revision {out.from_revision} -> {out.to_revision} [{verb}]: {change}. "
        f"{out.next_step}."
    )


def build(settings: Settings) -> Capability:
    config = load_section("rollback", settings.rollback, RollbackSettings)
    closers: list[Any] = []
    api_client, unavailable = kube_client.connect_section("rollback", config)
    backend = KubernetesBackend(api_client, request_timeout_s=config.request_timeout_s, unavailable=unavailable)
    service = RollbackService(backend, config)

    async def close() -> None:
        backend.close()

    closers.append(close)
    read_timeout = config.request_timeout_s * 3 + 5
    contracts: list[Contract[Any, Any]] = [
        Contract(
            name="rollout_history",
            untrusted_fields=("items[].change_cause", "items[].images"),
            capability="rollback",
            title="Rollout history",
            purpose="Revisions of a Deployment (newest first) with images, change-cause and creation time.",
            input_model=HistoryInput,
            output_model=HistoryOutput,
            scope="read",
            risk="low",
            handler=service.history,
            target=_target,
            summarize=_summarize_history,
            untrusted_output=True,
            timeout_s=read_timeout,
        ),
        Contract(
            name="rollout_status",
            untrusted_fields=("message", "conditions[].reason", "conditions[].message", "images"),
            capability="rollback",
            title="Rollout status",
            purpose="A Deployment's rollout state (complete, progressing, failed, paused) and replica counts.",
            input_model=StatusInput,
            output_model=RolloutStatus,
            scope="read",
            risk="low",
            handler=service.status,
            target=_target,
            summarize=_summarize_status,
            timeout_s=read_timeout,
        ),
        Contract(
            name="changes_recent",
            untrusted_fields=("items[].change_cause", "items[].images"),
            capability="rollback",
            title="Recent rollouts",
            purpose="Rollouts across a namespace in a recent window (newest first), to correlate with a change.",
            input_model=ChangesInput,
            output_model=ChangesOutput,
            scope="read",
            risk="low",
            handler=service.changes,
            target=_target,
            summarize=_summarize_changes,
            untrusted_output=True,
            timeout_s=read_timeout,
        ),
        Contract(
            name="rollback_deployment",
            untrusted_fields=(
                "images_before",
                "images_after",
                "image_changes[].before",
                "image_changes[].after",
                "env_changes[].before",
                "env_changes[].after",
                "server_dry_run.message",
                "rollout.message",
                "rollout.conditions[].reason",
                "rollout.conditions[].message",
                "rollout.images",
            ),
            capability="rollback",
            title="Roll back a Deployment",
            purpose=(
                "Roll a Deployment back to a previous revision (default: the one before). Dry run by default: "
                "shows the pod-template diff; dry_run=false applies it and waits for the rollout."
            ),
            input_model=RollbackInput,
            output_model=RollbackOutput,
            scope="write",
            risk="high",
            handler=service.rollback,
            target=_target,
            summarize=_summarize_rollback,
            facts=service.facts,
            timeout_s=config.wait_s + config.request_timeout_s * 5 + 5,
        ),
    ]

    async def probe() -> str:
        """One list request to the cluster through the backend's own path (a 403 still proves it answers:
        `opsgate check` reports a ToolError as answered)."""
        namespace = next(iter(settings.environments), "default")
        found = await backend.list_deployments(namespace)
        return f"answered: {len(found)} Deployment(s) in namespace {namespace}"

    capability = Capability(name="rollback", contracts=contracts, closers=closers, probes={backend.name: probe})
    return capability
