"""The sandbox world: one scenario told consistently by the cluster, the pod logs and the metrics.

`SandboxWorld(scenario)` replays a scenario (`opsgate.sandbox.scenario`) on loopback:

- the cluster: the Kubernetes API emulation (`opsgate.sandbox.kube_api`) seeded with the scenario's
  Deployments and revision histories (`seeding`), pods with the container statuses and Events the pod
  behaviours produce; the rollback and logs capabilities talk to it with the real `kubernetes` client;
- the logs: each pod's log comes from the scenario's templates for the revision it runs (`engine`),
  served by the same API's `pods/{name}/log`;
- the metrics: one series per pod, from the scenario's baselines and faults (`engine`), served by a
  Prometheus-compatible API (`promapi`) that the metrics capability reads with its Prometheus backend.

The pods the series and logs describe are the cluster's own (plus the pods of earlier revisions, which
the cluster has deleted), so when an agent rolls a Deployment back, the bad revision's pods go away and
their errors and latency with them: the world recovers because the cluster changed, not because a script
says so.

Time: scenario time 0 (the anchor) is the moment the world starts. A `live` world then runs on the wall
clock (after the first change to a Deployment its metric time runs `speed` times faster, so a recovery
shows in seconds); a `frozen` world keeps the cluster's clock and the logs at the anchor, so a run that
reads it within its first minute sees exactly the same world every time (`opsgate eval`).

    with SandboxWorld("checkout-bad-deploy") as world:
        print(world.api_url, world.prometheus_url)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import numpy as np

from opsgate.sandbox.engine import METRIC_NAMES, REQUEST_METRICS, Engine, FloatArray, PodLife
from opsgate.sandbox.kube.objects import POD_TEMPLATE_HASH_LABEL, parse_time
from opsgate.sandbox.kube_api import (
    DEPLOYMENTS,
    PODS,
    ControllerConfig,
    KubeApiServer,
    KubeCluster,
    LogLine,
    PodRef,
)
from opsgate.sandbox.promapi import PromApiServer
from opsgate.sandbox.scenario import (
    DEFAULT_SCENARIO,
    Scenario,
    load_scenario,
    parse_offset,
    scenario_path,
)
from opsgate.sandbox.seeding import apply_behaviours, seed_scenario

logger = logging.getLogger(__name__)

Mode = Literal["live", "frozen"]


@dataclass(frozen=True)
class Incident:
    """The facts of a rollback-shaped story, for the demo's narration and for tests."""

    namespace: str
    service: str
    good_revision: int
    bad_revision: int
    good_image: str
    bad_image: str
    deployed_at: datetime


def _as_scenario(scenario: Scenario | str | Path) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


class SandboxWorld:
    """A scenario served on loopback: the Kubernetes API and a Prometheus-compatible API."""

    def __init__(
        self,
        scenario: Scenario | str | Path = DEFAULT_SCENARIO,
        *,
        mode: Mode = "live",
        speed: float = 40.0,
        tick_seconds: float = 0.05,
    ) -> None:
        self.scenario = _as_scenario(scenario)
        self.mode = mode
        self.speed = speed
        self.engine = Engine(self.scenario)
        self._tick_seconds = tick_seconds
        self._lock = threading.RLock()
        self.anchor = time.time()
        self.cluster = KubeCluster(
            ControllerConfig(ready_after_ticks=2), clock=self._cluster_now, random_seed=self.scenario.seed
        )
        self.hashes: dict[str, dict[str, int]] = {}
        self._history: list[PodLife] = []
        self._seen: dict[str, PodLife] = {}  # cluster pods by name, with `end` once the cluster deleted them
        self._seeded_templates: dict[str, str] = {}
        self._changed_at: float | None = None  # wall time of the first change to a Deployment
        self._recovered_at: float | None = None
        self._server: KubeApiServer | None = None
        self._prometheus: PromApiServer | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- time ---------------------------------------------------------------------------------

    def _cluster_now(self) -> datetime:
        if self.mode == "frozen":
            return datetime.fromtimestamp(self.anchor, UTC)
        return datetime.now(UTC)

    def at(self, offset: float) -> datetime:
        """The datetime of scenario time `offset` (seconds from the anchor)."""
        return datetime.fromtimestamp(self.anchor + offset, UTC)

    def scenario_time(self, wall: FloatArray) -> FloatArray:
        """Scenario seconds for wall-clock unix times (metric time runs faster after a change, when live)."""
        t: FloatArray = np.asarray(wall, dtype=np.float64) - self.anchor
        start = self._changed_at
        if self.mode == "live" and start is not None and self.speed > 1:
            since = start - self.anchor
            t = np.where(t > since, since + (t - since) * self.speed, t)
        return t

    def now(self) -> float:
        """Scenario seconds now (0 in a frozen world)."""
        if self.mode == "frozen":
            return 0.0
        return float(self.scenario_time(np.array([time.time()]))[0])

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        # a whole second: the cluster's timestamps have second precision, so pod starts (and with them
        # every log line and sample) sit at the same scenario times on every run
        self.anchor = float(int(time.time()))
        self.hashes = seed_scenario(self.cluster, self.scenario, self.at)
        self._history = self._historical_pods()
        self._observe()
        apply_behaviours(self.cluster, self.scenario, self.hashes, self.at, self._pod_start)
        self._observe()
        for service in self.scenario.services:
            deployment = self.cluster.get(DEPLOYMENTS, service.namespace, service.name)
            self._seeded_templates[service.name] = _template_key(deployment)
        self.cluster.logs.set_provider(self._pod_log)
        self._server = KubeApiServer(self.cluster, tick_seconds=self._tick_seconds).start()
        self._prometheus = PromApiServer(self, clock=time.time).start()
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="sandbox-world", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        for server in (self._prometheus, self._server):
            if server is not None:
                server.stop()
        self._server = self._prometheus = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox world is not running: call start()")
        return self._server.url

    @property
    def prometheus_url(self) -> str:
        if self._prometheus is None:
            raise RuntimeError("the sandbox world is not running: call start()")
        return self._prometheus.url

    @property
    def kube_server(self) -> KubeApiServer:
        if self._server is None:
            raise RuntimeError("the sandbox world is not running: call start()")
        return self._server

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self._observe()
            except Exception:  # the world keeps serving whatever one observation hit
                logger.debug("world observation failed", exc_info=True)

    # -- pods ---------------------------------------------------------------------------------

    def _pod_start(self, pod: dict[str, Any]) -> float:
        created = parse_time(pod["metadata"]["creationTimestamp"]).timestamp()
        return float(self.scenario_time(np.array([created]))[0])

    def _historical_pods(self) -> list[PodLife]:
        """The pods of the revisions that served before the current one (the cluster deleted them)."""
        out: list[PodLife] = []
        for service in self.scenario.services:
            by_revision = {number: h for h, number in self.hashes.get(service.name, {}).items()}
            serving: list[tuple[int, float]] = []
            for revision in service.deployment.revisions:
                blocked = any(
                    b.target.service == service.name
                    and b.target.revision == revision.revision
                    and b.target.pods is None
                    and b.kind in ("crash_loop", "image_pull_backoff")
                    for b in self.scenario.pod_behaviours
                )
                if not blocked:
                    serving.append((revision.revision, parse_offset(revision.at)))
            for index, (number, start) in enumerate(serving[:-1]):
                end = serving[index + 1][1]
                template_hash = by_revision.get(number, f"r{number}")
                for ordinal in range(service.deployment.replicas):
                    suffix = _suffix(self.scenario.seed, service.name, number, ordinal)
                    out.append(
                        PodLife(
                            namespace=service.namespace,
                            service=service.name,
                            name=f"{service.name}-{template_hash}-{suffix}",
                            revision=number,
                            template_hash=template_hash,
                            ordinal=ordinal,
                            start=start,
                            end=end,
                        )
                    )
        return out

    def _observe(self) -> None:
        """Bring the pod list in step with the cluster; note the first change to any Deployment."""
        now_wall = time.time()
        pods = self.cluster.list(PODS, None)["items"]
        with self._lock:
            current: dict[str, PodLife] = {}
            groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for pod in pods:
                labels = pod["metadata"].get("labels") or {}
                service = labels.get("app")
                if service is None or self.scenario.service(service) is None:
                    continue
                groups.setdefault((service, labels.get(POD_TEMPLATE_HASH_LABEL, "")), []).append(pod)
            for (service, template_hash), members in groups.items():
                members.sort(key=lambda p: str(p["metadata"]["name"]))
                for ordinal, pod in enumerate(members):
                    name = str(pod["metadata"]["name"])
                    known = self._seen.get(name)
                    start = known.start if known is not None else self._pod_start(pod)
                    current[name] = PodLife(
                        namespace=str(pod["metadata"]["namespace"]),
                        service=service,
                        name=name,
                        revision=self.hashes.get(service, {}).get(template_hash),
                        template_hash=template_hash,
                        ordinal=ordinal,
                        start=start,
                        serving=_serving(pod),
                    )
            end = 0.0 if self.mode == "frozen" else float(self.scenario_time(np.array([now_wall]))[0])
            for name, life in self._seen.items():
                if name not in current:
                    current[name] = life if life.end is not None else _ended(life, max(end, life.start))
            self._seen = current
            if self._changed_at is None and self._seeded_templates:
                for service in self.scenario.services:
                    try:
                        deployment = self.cluster.get(DEPLOYMENTS, service.namespace, service.name)
                    except Exception:
                        continue
                    if _template_key(deployment) != self._seeded_templates.get(service.name):
                        self._changed_at = now_wall
                        break
            if self._recovered_at is None and self._seeded_templates and self._recovery_holds():
                self._recovered_at = now_wall

    def pods(self) -> list[PodLife]:
        with self._lock:
            return [*self._history, *self._seen.values()]

    # -- the series (SeriesSource for the Prometheus-compatible API) ---------------------------

    def metric_names(self) -> tuple[str, ...]:
        return METRIC_NAMES

    def series(self, metric: str) -> list[dict[str, str]]:
        if metric in REQUEST_METRICS:
            return [{"namespace": s.namespace, "service": s.name} for s in self.scenario.services]
        return [pod.labels for pod in self.pods()]

    def values(self, metric: str, series: Sequence[dict[str, str]], times: FloatArray) -> FloatArray:
        pods = self.pods()
        by_name = {pod.name: pod for pod in pods}
        t = self.scenario_time(times)
        out = np.full((len(series), t.size), np.nan)
        for row, labels in enumerate(series):
            if metric in REQUEST_METRICS:
                out[row] = self.engine.service_values(metric, labels["service"], pods, t)
                continue
            pod = by_name.get(labels.get("pod", ""))
            if pod is not None:
                out[row] = self.engine.values(metric, pod, t)
        return out

    def alerts(self) -> list[dict[str, Any]]:
        alert = self.scenario.alert
        if self.recovered():
            return []
        labels = {"alertname": alert.name, "severity": alert.severity, "namespace": alert.namespace}
        if alert.service:
            labels["service"] = alert.service
        labels.update(alert.labels)
        starts = self.at(parse_offset(alert.starts_at)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return [
            {
                "labels": labels,
                "annotations": dict(alert.annotations),
                "startsAt": starts,
                "state": "firing",
                "fingerprint": _fingerprint(labels),
            }
        ]

    # -- logs ---------------------------------------------------------------------------------

    def _pod_log(self, ref: PodRef) -> list[LogLine]:
        self._observe()
        with self._lock:
            pod = self._seen.get(ref.pod)
        if pod is None:
            return []
        now = self.now()
        lines: list[LogLine] = []
        for moment, record in self.engine.log_lines(pod, now - 7200.0, now):
            when = self.at(moment)
            stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            lines.append(LogLine(when, _json_line(stamp, record)))
        return lines

    # -- what the cluster says ----------------------------------------------------------------

    def _recovery_holds(self) -> bool:
        action = self.scenario.recovery.action
        if action is None or action.action != "rollback" or action.deployment is None:
            return False
        service = self.scenario.service(action.deployment, action.namespace)
        if service is None:
            return False
        wanted = {h for h, n in self.hashes.get(service.name, {}).items() if n == action.to_revision}
        deployment = self.cluster.get(DEPLOYMENTS, service.namespace, service.name)
        status = deployment.get("status") or {}
        replicas = int((deployment.get("spec") or {}).get("replicas") or 1)
        template_hash = _deployment_hash(self.cluster, deployment)
        if template_hash not in wanted:
            return False
        return int(status.get("updatedReplicas") or 0) >= replicas and int(status.get("readyReplicas") or 0) >= replicas

    def recovered(self) -> bool:
        """True once the scenario's recovery action has taken effect in the cluster."""
        with self._lock:
            if self._recovered_at is not None:
                return True
        holds = self._recovery_holds()
        if holds:
            with self._lock:
                self._recovered_at = self._recovered_at or time.time()
        return holds

    @property
    def incident(self) -> Incident:
        """The rollback-shaped facts (the demo's narration): which revision is bad and which is good."""
        action = self.scenario.recovery.action
        if action is None or action.deployment is None or action.to_revision is None:
            raise LookupError(f"scenario {self.scenario.id} does not end with a rollback")
        service = self.scenario.service(action.deployment, action.namespace)
        assert service is not None
        bad = service.deployment.revisions[-1]
        good = service.deployment.revision(action.to_revision)
        assert good is not None
        return Incident(
            namespace=service.namespace,
            service=service.name,
            good_revision=good.revision,
            bad_revision=bad.revision,
            good_image=good.image,
            bad_image=bad.image,
            deployed_at=self.at(parse_offset(bad.at)),
        )

    # -- wiring the capabilities ---------------------------------------------------------------

    def write_kubeconfig(self, path: Path) -> Path:
        return self.kube_server.write_kubeconfig(path)

    def config_toml(
        self,
        state_dir: Path,
        kubeconfig: Path,
        *,
        runbooks: Path | None = None,
        autonomy: str = "approved",
        caller: tuple[str, str] | None = None,
    ) -> str:
        """An opsgate config whose backends all read this world (logs, metrics, rollback, runbooks);
        `caller` is the (subject, role) the server acts for (the demo's and the eval's agent)."""
        from opsgate.config import REPO_ROOT

        namespace = self.scenario.namespaces[0]
        frozen = ""
        if self.mode == "frozen":
            frozen = f'now = "{self.at(0).isoformat().replace("+00:00", "Z")}"\n'
        who = f'\n[caller]\nsubject = "{caller[0]}"\nroles = ["{caller[1]}"]\n' if caller else ""
        return f"""# Written by the opsgate sandbox: every backend reads the world of scenario {self.scenario.id}.
state_dir = "{state_dir}"
autonomy = "{autonomy}"
{who}
[approvals]
approvers_file = "{state_dir / "approvers.yaml"}"

[runbooks]
dir = "{runbooks or REPO_ROOT / "examples" / "runbooks"}"

[logs]
backend = "kubernetes"
default_since = "30m"
{frozen}
[logs.kubernetes]
kubeconfig = "{kubeconfig}"
namespace = "{namespace}"

[metrics]
backend = "prometheus"

[metrics.prometheus]
url = "{self.prometheus_url}"

[rollback]
kubeconfig = "{kubeconfig}"
wait_s = 20
poll_s = 0.2

[workloads]
kubeconfig = "{kubeconfig}"

[alerts]
alertmanager_url = "{self.prometheus_url}"
"""


def _suffix(seed: int, service: str, revision: int, ordinal: int) -> str:
    from opsgate.sandbox.engine import unit

    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(unit(seed, service, revision, ordinal, i) * len(alphabet))] for i in range(5))


def _fingerprint(labels: dict[str, str]) -> str:
    """A function of the labels, as Alertmanager's is (not `hash()`, which Python salts per process)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def _json_line(stamp: str, record: dict[str, str]) -> str:
    import json

    return json.dumps({"ts": stamp, **record}, separators=(",", ":"))


def _ended(life: PodLife, end: float) -> PodLife:
    from dataclasses import replace

    return replace(life, end=end)


def _serving(pod: dict[str, Any]) -> bool:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"):
            return False
    return True


def _template_key(deployment: dict[str, Any]) -> str:
    import json

    return json.dumps(((deployment.get("spec") or {}).get("template") or {}), sort_keys=True)


def _deployment_hash(cluster: KubeCluster, deployment: dict[str, Any]) -> str | None:
    """The pod-template-hash of the ReplicaSet that runs the Deployment's current template."""
    from opsgate.sandbox.kube_api import REPLICASETS, REVISION_ANNOTATION

    revision = (deployment["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)
    name = deployment["metadata"]["name"]
    for rs in cluster.list(REPLICASETS, deployment["metadata"]["namespace"], label_selector_text=f"app={name}")[
        "items"
    ]:
        if (rs["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
            return str((rs["metadata"].get("labels") or {}).get(POD_TEMPLATE_HASH_LABEL))
    return None


__all__ = ["Incident", "Mode", "SandboxWorld", "scenario_path"]
