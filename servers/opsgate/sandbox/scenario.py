"""An incident scenario as data: the world, the faults over time, what pods do, the logs, the ground truth.

A scenario is a YAML file (JSON Schema: `docs/scenario.schema.json`, written by
`python -m opsgate.sandbox.scenario --schema`) validated by the pydantic models below, then by
cross-reference rules (`check`) that pydantic alone cannot express: every reference names something the
world has, revisions roll out in order, time never runs backwards. Any problem is a `ScenarioError`
naming the file, the path inside it and the rule; nothing is built from a scenario that fails.

Times are relative to the scenario's anchor, the moment the investigation starts (`0`): `-20m` is twenty
minutes before it. A world puts the anchor at the moment it starts, so the same scenario and seed give
the same world, the same logs and the same series at any time of day (`time_of_day` places the anchor on
the daily traffic cycle).

    scenario = load_scenario("checkout-bad-deploy")      # a name under scenarios/, or a path
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

SCENARIO_DIR = Path(__file__).resolve().parents[3] / "scenarios"
DEFAULT_SCENARIO = "checkout-bad-deploy"
NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"

_DURATION = re.compile(r"^(-)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_offset(text: str) -> float:
    """`-1h30m` -> -5400.0 seconds; `0`, `45s`, `2d`. ValueError names the text otherwise."""
    value = str(text).strip()
    if value in ("0", "-0"):
        return 0.0
    match = _DURATION.match(value)
    if match is None or not any(match.groups()[1:]):
        raise ValueError(f"{text!r} is not a duration like -20m, 1h30m, 45s or 2d")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups()[1:])
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    return float(-total if match.group(1) else total)


def _offset(text: str) -> str:
    parse_offset(text)
    return text


def _positive(text: str) -> str:
    if parse_offset(text) < 0:
        raise ValueError(f"{text!r} must not be negative")
    return text


Offset = Annotated[str, AfterValidator(_offset), Field(description="Time relative to the anchor: -20m, -1h30m, 0")]
Span = Annotated[str, AfterValidator(_positive), Field(description="A non-negative duration: 2m, 40m, 1h")]
Name = Annotated[str, Field(pattern=NAME, description="A Kubernetes name (RFC 1123 label)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- the world --------------------------------------------------------------------------------------


class Probe(Strict):
    path: str = "/healthz"
    port: int = Field(default=8080, ge=1, le=65535)
    period_s: int = Field(default=10, ge=1)
    failure_threshold: int = Field(default=3, ge=1)


class Resources(Strict):
    requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "250m", "memory": "256Mi"})
    limits: dict[str, str] = Field(default_factory=lambda: {"cpu": "1", "memory": "512Mi"})


class Revision(Strict):
    """One rollout of a Deployment's pod template."""

    revision: int = Field(ge=1)
    at: Offset
    image: str = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    change_cause: str | None = None
    resources: Resources | None = Field(default=None, description="Default: the Deployment's")
    readiness_probe: Probe | None = Field(default=None, description="Default: the Deployment's")


class Deployment(Strict):
    replicas: int = Field(default=2, ge=1, le=50)
    container: Name | None = Field(default=None, description="Container name; default: the service name")
    resources: Resources = Field(default_factory=Resources)
    readiness_probe: Probe = Field(default_factory=Probe)
    revisions: list[Revision] = Field(min_length=1)

    def revision(self, number: int) -> Revision | None:
        return next((r for r in self.revisions if r.revision == number), None)


class Baseline(Strict):
    """A service's healthy golden signals (the daily cycle and noise are added on top)."""

    latency_s: float = Field(default=0.2, gt=0)
    error_ratio: float = Field(default=0.002, ge=0, le=1)
    request_rate: float = Field(default=100.0, gt=0)
    cpu_cores: float = Field(default=0.5, gt=0)
    memory_mb: float = Field(default=300.0, gt=0)


class Service(Strict):
    name: Name
    namespace: Name
    endpoint: str = Field(default="/", description="The request path its access log lines show")
    dependencies: list[Name] = Field(default_factory=list, description="Services or external dependencies it calls")
    baseline: Baseline = Field(default_factory=Baseline)
    deployment: Deployment


class Dependency(Strict):
    """Something the services call that is not a Deployment here: a managed database, a third-party API."""

    name: Name
    kind: Literal["database", "cache", "queue", "external-api", "dns", "storage"] = "external-api"
    certificate_expires: Offset | None = Field(default=None, description="When its TLS certificate expires")


# -- what happens -----------------------------------------------------------------------------------


class Target(Strict):
    """What a fault or a pod behaviour is bound to: a revision, some of its pods, a dependency, a namespace."""

    namespace: Name | None = None
    service: Name | None = None
    revision: int | None = Field(default=None, ge=1)
    pods: list[int] | None = Field(default=None, description="Ordinals of the revision's pods (sorted by name)")
    dependency: Name | None = Field(default=None, description="Every caller of this dependency")


class Effects(Strict):
    latency_factor: float = Field(default=1.0, gt=0)
    error_ratio: float = Field(default=0.0, ge=0, le=1, description="Added share of 5xx answers")
    request_rate_factor: float = Field(default=1.0, gt=0)
    memory_growth_mb_per_min: float = Field(default=0.0, ge=0)
    cpu_saturation: float | None = Field(default=None, gt=0, le=1.5, description="CPU as a share of its limit")


class Fault(Strict):
    """Effects over time. With a revision target and no `start`, it starts when that revision rolls out."""

    id: Name
    description: str = ""
    target: Target
    start: Offset | None = None
    lag: Span = "0s"
    ramp: Span = "2m"
    end: Offset | None = None
    effects: Effects


PodBehaviourKind = Literal["oom_killed", "error_exit", "crash_loop", "image_pull_backoff", "readiness_flapping"]


class PodBehaviour(Strict):
    """What the target's pods do, as the cluster records it (container statuses and Events)."""

    kind: PodBehaviourKind
    target: Target
    start: Offset | None = None
    lag: Span = "0s"
    restarts: int = Field(default=0, ge=0, description="Restarts so far (oom_killed, error_exit, crash_loop)")
    exit_code: int | None = Field(default=None, description="Of the last termination (default: 137 OOM, 1 Error)")
    message: str | None = Field(default=None, description="Probe failure / pull error text")


class LogVar(Strict):
    """A variable part of a log template: an integer range, a choice, or hex digits."""

    kind: Literal["int", "choice", "hex"]
    low: int = 0
    high: int = 1000
    values: list[str] = Field(default_factory=list)
    digits: int = Field(default=8, ge=1, le=64)
    scale_with_latency: bool = Field(default=False, description="Multiply by the pod's current latency factor")


class LogTemplate(Strict):
    """Lines a service's pods emit (per revision, optionally only some pods), as a share of its lines."""

    service: Name
    revisions: list[int] | None = Field(default=None, description="Default: every revision")
    pods: list[int] | None = None
    level: Literal["debug", "info", "warn", "error"] = "info"
    template: str = Field(min_length=1, description="Text with {var} placeholders")
    share: float = Field(gt=0, le=1, description="Share of the pod's log lines while active")
    vars: dict[str, LogVar] = Field(default_factory=dict)
    start: Offset | None = None
    lag: Span = "0s"
    during: Name | None = Field(default=None, description="Only while this fault is active")
    hostile: bool = Field(default=False, description="Text that tries to instruct an agent (prompt injection)")
    secret: str | None = Field(default=None, description="A secret inside the text that redaction must remove")


class Alert(Strict):
    name: str = Field(min_length=1)
    severity: Literal["critical", "warning", "info"] = "warning"
    service: Name | None = None
    namespace: Name
    starts_at: Offset
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


# -- the answer -------------------------------------------------------------------------------------

EntityKind = Literal["Deployment", "Dependency", "Load", "Certificate", "Node"]
Category = Literal[
    "bad-deploy",
    "config-change",
    "dependency-outage",
    "traffic-surge",
    "memory-leak",
    "crash-loop",
    "image-pull",
    "certificate-expiry",
    "resource-limits",
    "readiness-probe",
]


class Entity(Strict):
    """An entity of the world, as ITBench's ground truth names one (kind, namespace, name)."""

    kind: EntityKind
    namespace: Name | None = None
    name: Name
    revision: int | None = Field(default=None, ge=1)

    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace or "", self.name)

    def label(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        rev = f"@{self.revision}" if self.revision is not None else ""
        return f"{self.kind} {where}{self.name}{rev}"


ActionKind = Literal["rollback", "scale", "restart", "silence_alert", "escalate"]


class Action(Strict):
    action: ActionKind
    namespace: Name | None = None
    deployment: Name | None = None
    to_revision: int | None = Field(default=None, ge=1)
    note: str = ""


class Propagation(Strict):
    source: str
    target: str
    effect: str


class GroundTruth(Strict):
    """ITBench's shape: the root cause, its equivalent names, how it propagated, what to do and not do."""

    root_cause: Entity
    category: Category
    condition: str = Field(description="What is wrong with the root cause, in a sentence")
    aliases: list[Entity] = Field(default_factory=list)
    propagation: list[Propagation] = Field(default_factory=list)
    recommended_actions: list[Action] = Field(default_factory=list)
    wrong_actions: list[Action] = Field(default_factory=list)


class Recovery(Strict):
    """Which action ends the incident, or that none opsgate can take does (a human must act)."""

    action: Action | None = None
    human: str | None = Field(default=None, description="What a person must do when no tool can end it")


class Scenario(Strict):
    id: Name
    title: str
    summary: str = ""
    fault_class: str
    seed: int = 7
    time_of_day: str = Field(default="14:00", pattern=r"^\d{2}:\d{2}$", description="Local hour at time 0 (UTC)")
    namespaces: list[Name] = Field(min_length=1)
    services: list[Service] = Field(min_length=1)
    dependencies: list[Dependency] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    pod_behaviours: list[PodBehaviour] = Field(default_factory=list)
    logs: list[LogTemplate] = Field(default_factory=list)
    runbooks: list[str] = Field(default_factory=list, description="Runbook ids that apply")
    alert: Alert
    ground_truth: GroundTruth
    recovery: Recovery

    def service(self, name: str, namespace: str | None = None) -> Service | None:
        return next(
            (s for s in self.services if s.name == name and (namespace is None or s.namespace == namespace)), None
        )

    def dependency(self, name: str) -> Dependency | None:
        return next((d for d in self.dependencies if d.name == name), None)

    def fault(self, fault_id: str) -> Fault | None:
        return next((f for f in self.faults if f.id == fault_id), None)

    def candidates(self) -> list[Entity]:
        """Every entity an investigator could name: the candidate set of AC@k's chance level."""
        out: list[Entity] = []
        for s in self.services:
            out.append(Entity(kind="Deployment", namespace=s.namespace, name=s.name))
        for d in self.dependencies:
            out.append(Entity(kind="Dependency", name=d.name))
            if d.certificate_expires is not None:
                out.append(Entity(kind="Certificate", name=d.name))
        out.extend(Entity(kind="Load", namespace=s.namespace, name=s.name) for s in self.services)
        return out

    @property
    def rollback_is_wrong(self) -> bool:
        """No rollback is among the recommended actions: rolling anything back is the wrong answer."""
        return not any(a.action == "rollback" for a in self.ground_truth.recommended_actions)


# -- loading and checking ---------------------------------------------------------------------------


class ScenarioError(ValueError):
    """A scenario cannot be used: names the file, the path inside it and the rule."""

    def __init__(self, file: str, path: str, rule: str) -> None:
        self.file, self.path, self.rule = file, path, rule
        super().__init__(f"{file}: {path or '(top level)'}: {rule}")


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def scenario_path(name_or_file: str | Path) -> Path:
    """A scenario name under `scenarios/` (`checkout-bad-deploy`) or a path to a YAML file."""
    candidate = Path(name_or_file)
    if candidate.suffix in (".yaml", ".yml") or candidate.parent != Path():
        return candidate
    return SCENARIO_DIR / f"{name_or_file}.yaml"


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_file: str | Path) -> Scenario:
    path = scenario_path(name_or_file)
    if not path.is_file():
        known = ", ".join(scenario_names())
        raise ScenarioError(str(path), "", f"no such scenario file (shipped scenarios: {known})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(str(path), "", f"not valid YAML: {exc}") from None
    return parse_scenario(data, str(path))


def parse_scenario(data: Any, file: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(file, "", "a scenario is a mapping (id, title, namespaces, services, ...)")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        rule = "unknown field (not part of the scenario schema)" if first["type"] == "extra_forbidden" else first["msg"]
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ScenarioError(file, _path(loc), rule + more) from None
    problems = list(check(scenario))
    if problems:
        path, rule = problems[0]
        raise ScenarioError(file, path, rule)
    return scenario


def _target_problems(scenario: Scenario, target: Target, where: str) -> Iterator[tuple[str, str]]:
    if target.namespace is not None and target.namespace not in scenario.namespaces:
        yield f"{where}.namespace", f"namespace {target.namespace!r} is not in the world's namespaces"
    dependency = target.dependency
    if dependency is not None and scenario.dependency(dependency) is None and scenario.service(dependency) is None:
        yield f"{where}.dependency", f"dependency {target.dependency!r} is not a declared dependency or service"
    if target.service is None:
        if target.revision is not None or target.pods is not None:
            yield where, "a revision or pods target needs a service"
        if target.namespace is None and target.dependency is None:
            yield where, "a target names a service, a dependency or a namespace"
        return
    service = scenario.service(target.service, target.namespace)
    if service is None:
        yield f"{where}.service", f"service {target.service!r} does not exist in the world"
        return
    if target.revision is not None and service.deployment.revision(target.revision) is None:
        yield f"{where}.revision", f"{service.name} has no revision {target.revision}"
    if target.pods is not None and any(p < 0 or p >= service.deployment.replicas for p in target.pods):
        yield f"{where}.pods", f"pod ordinals must be in 0..{service.deployment.replicas - 1}"


def _entity_problems(scenario: Scenario, entity: Entity, where: str) -> Iterator[tuple[str, str]]:
    if entity.kind in ("Deployment", "Load"):
        service = scenario.service(entity.name, entity.namespace)
        if service is None:
            yield f"{where}.name", f"the world has no service {entity.namespace}/{entity.name}"
        elif entity.revision is not None and service.deployment.revision(entity.revision) is None:
            yield f"{where}.revision", f"{entity.name} has no revision {entity.revision}"
    elif entity.kind in ("Dependency", "Certificate"):
        dependency = scenario.dependency(entity.name)
        if dependency is None:
            yield f"{where}.name", f"the world has no dependency {entity.name!r}"
        elif entity.kind == "Certificate" and dependency.certificate_expires is None:
            yield f"{where}.name", f"dependency {entity.name!r} declares no certificate_expires"


def _action_problems(scenario: Scenario, action: Action, where: str) -> Iterator[tuple[str, str]]:
    if action.deployment is None:
        return
    service = scenario.service(action.deployment, action.namespace)
    if service is None:
        yield f"{where}.deployment", f"the world has no Deployment {action.namespace}/{action.deployment}"
    elif action.to_revision is not None and service.deployment.revision(action.to_revision) is None:
        yield f"{where}.to_revision", f"{action.deployment} has no revision {action.to_revision}"


def check(scenario: Scenario) -> Iterator[tuple[str, str]]:
    """Cross-reference rules: (path, rule) for each violation, in file order."""
    seen: set[tuple[str, str]] = set()
    names = {d.name for d in scenario.dependencies}
    for i, service in enumerate(scenario.services):
        where = f"services[{i}]"
        if service.namespace not in scenario.namespaces:
            yield f"{where}.namespace", f"namespace {service.namespace!r} is not in the world's namespaces"
        if (service.namespace, service.name) in seen:
            yield f"{where}.name", f"service {service.name!r} is declared twice in {service.namespace}"
        seen.add((service.namespace, service.name))
        for j, dep in enumerate(service.dependencies):
            if dep not in names and scenario.service(dep) is None:
                yield f"{where}.dependencies[{j}]", f"{dep!r} is neither a service nor a declared dependency"
        previous: tuple[int, float] | None = None
        for j, revision in enumerate(service.deployment.revisions):
            at = parse_offset(revision.at)
            path = f"{where}.deployment.revisions[{j}]"
            if at > 0:
                yield f"{path}.at", "a revision cannot roll out after the anchor (time 0)"
            if previous is not None and revision.revision <= previous[0]:
                yield (
                    f"{path}.revision",
                    (
                        f"revisions overlap: revision {revision.revision} follows revision {previous[0]} "
                        "(numbers must increase)"
                    ),
                )
            if previous is not None and at <= previous[1]:
                yield (
                    f"{path}.at",
                    (
                        f"time runs backwards: revision {revision.revision} rolls out at {revision.at}, "
                        "not after the revision before it"
                    ),
                )
            previous = (revision.revision, at)
    for i, dependency in enumerate(scenario.dependencies):
        if scenario.service(dependency.name) is not None:
            yield f"dependencies[{i}].name", f"{dependency.name!r} is already a service"
    fault_ids: set[str] = set()
    for i, fault in enumerate(scenario.faults):
        where = f"faults[{i}]"
        if fault.id in fault_ids:
            yield f"{where}.id", f"fault id {fault.id!r} is used twice"
        fault_ids.add(fault.id)
        yield from _target_problems(scenario, fault.target, f"{where}.target")
        if fault.start is None and fault.target.revision is None:
            yield f"{where}.start", "a fault needs a start unless it is bound to a revision"
        if fault.end is not None:
            start = fault_start(scenario, fault)
            if start is not None and parse_offset(fault.end) <= start:
                yield f"{where}.end", f"time runs backwards: the fault ends at {fault.end}, before it starts"
    for i, behaviour in enumerate(scenario.pod_behaviours):
        where = f"pod_behaviours[{i}]"
        yield from _target_problems(scenario, behaviour.target, f"{where}.target")
        if behaviour.target.service is None:
            yield f"{where}.target.service", "a pod behaviour is bound to a service's pods"
    for i, template in enumerate(scenario.logs):
        where = f"logs[{i}]"
        owner = scenario.service(template.service)
        if owner is None:
            yield f"{where}.service", f"service {template.service!r} does not exist in the world"
        else:
            for number in template.revisions or []:
                if owner.deployment.revision(number) is None:
                    yield f"{where}.revisions", f"{owner.name} has no revision {number}"
        if template.during is not None and template.during not in fault_ids:
            yield f"{where}.during", f"no fault with id {template.during!r}"
        for var in re.findall(r"{(\w+)}", template.template):
            if var not in template.vars:
                yield f"{where}.template", f"placeholder {{{var}}} has no entry in vars"
        if template.secret is not None and template.secret not in template.template:
            yield f"{where}.secret", "the secret must appear in the template text"
    alert = scenario.alert
    if alert.namespace not in scenario.namespaces:
        yield "alert.namespace", f"namespace {alert.namespace!r} is not in the world's namespaces"
    if alert.service is not None and scenario.service(alert.service) is None:
        yield "alert.service", f"service {alert.service!r} does not exist in the world"
    if parse_offset(alert.starts_at) > 0:
        yield "alert.starts_at", "the alert must be firing when the investigation starts (at or before 0)"
    truth = scenario.ground_truth
    yield from _entity_problems(scenario, truth.root_cause, "ground_truth.root_cause")
    for i, alias in enumerate(truth.aliases):
        yield from _entity_problems(scenario, alias, f"ground_truth.aliases[{i}]")
    for i, action in enumerate(truth.recommended_actions):
        yield from _action_problems(scenario, action, f"ground_truth.recommended_actions[{i}]")
    for i, action in enumerate(truth.wrong_actions):
        yield from _action_problems(scenario, action, f"ground_truth.wrong_actions[{i}]")
    if scenario.recovery.action is not None:
        yield from _action_problems(scenario, scenario.recovery.action, "recovery.action")
    elif not scenario.recovery.human:
        yield "recovery", "say which action ends the incident, or what a human must do (human)"


def revision_start(scenario: Scenario, service: str, revision: int) -> float | None:
    found = scenario.service(service)
    rev = found.deployment.revision(revision) if found else None
    return parse_offset(rev.at) if rev else None


def fault_start(scenario: Scenario, fault: Fault) -> float | None:
    """When the fault's effects begin (before the ramp), in seconds from the anchor."""
    if fault.start is not None:
        base: float | None = parse_offset(fault.start)
    elif fault.target.service is not None and fault.target.revision is not None:
        base = revision_start(scenario, fault.target.service, fault.target.revision)
    else:
        base = None
    return None if base is None else base + parse_offset(fault.lag)


def json_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://opsgate.dev/schemas/scenario.schema.json"
    return schema


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m opsgate.sandbox.scenario --schema` prints the JSON Schema; with files, checks them."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--schema"]:
        print(json.dumps(json_schema(), indent=2))
        return 0
    failed = 0
    for name in args or scenario_names():
        try:
            load_scenario(name)
            print(f"ok {name}")
        except ScenarioError as exc:
            print(exc, file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
