"""The incident sandbox world: one story told consistently by the cluster, the logs and the metrics.

The story: in namespace `shop`, `checkout` was deployed at revision 8 (image `...checkout:v8`) about
twenty minutes ago. Its pods run, but the new version is slow and fails requests: p99 latency and the
5xx ratio jump at the deploy, and the pods log new error templates (a dependency timeout, an exception
in new code). Revision 7 was healthy. A frontend rollout ninety minutes earlier was harmless, so the
correlation is not trivial. Rolling checkout back to revision 7 ends the incident.

Three parts of the sandbox read the same facts:

- the cluster: the loopback Kubernetes API (`opsgate.sandbox.kube_api`) seeded with those histories;
  the rollback capability talks to it with the real `kubernetes` client;
- the logs: each pod's log is generated from the image it runs (`pod_log_lines`), served by the same
  loopback API's `pods/{name}/log`, so the Kubernetes logs backend reads them;
- the metrics: `opsgate.sandbox.series` evaluates the shop's series from a `SandboxTimeline`;
  `TimelineFollower` keeps a timeline in step with the cluster through its API (the deploy moment is
  the bad ReplicaSet's creation; the recovery starts when the Deployment stops running the bad
  image), so metrics recover because the cluster was rolled back, not because a script says so.

    with SandboxWorld() as world:                      # the cluster on 127.0.0.1
        print(world.api_url, world.incident.bad_image)
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import httpx

from opsgate.sandbox.kube_api import (
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    ControllerConfig,
    DeploymentSeed,
    KubeApiServer,
    KubeCluster,
    LogLine,
    PodRef,
    seed_namespace,
)
from opsgate.sandbox.series import SandboxTimeline

logger = logging.getLogger(__name__)

NAMESPACE = "shop"
SERVICE = "checkout"
GOOD_REVISION = 7
BAD_REVISION = 8
LOG_INTERVAL_S = 4.0
LOG_HORIZON = timedelta(hours=2)


@dataclass(frozen=True)
class Incident:
    """The facts of the story, for the demo's narration and for tests."""

    namespace: str
    service: str
    good_revision: int
    bad_revision: int
    good_image: str
    bad_image: str
    deployed_at: datetime


def _seeds() -> list[tuple[DeploymentSeed, timedelta]]:
    """Each Deployment with the span its history is spread over (the newest revision lands span/revisions ago)."""
    return [
        (DeploymentSeed(SERVICE, revisions=BAD_REVISION, replicas=3), timedelta(minutes=20) * BAD_REVISION),
        (DeploymentSeed("frontend", revisions=5, replicas=3), timedelta(minutes=90) * 5),
        (DeploymentSeed("payments", revisions=3, replicas=2), timedelta(hours=9)),
        (DeploymentSeed("inventory", revisions=4, replicas=2), timedelta(hours=30)),
    ]


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from its arguments (log content must not depend on run order)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


_BAD_LINES = (
    (0.22, "error", 'POST /api/checkout 503 upstream=payments error="context deadline exceeded" duration_ms={ms}'),
    (0.12, "error", "unhandled NullPointerException in PromoPricing.apply (cart={cart}) promo-engine=v2"),
    (0.10, "warn", "slow query on carts: {ms}ms (select ... for update)"),
)
_GOOD_LINES = ((0.02, "warn", "retrying payments call (attempt 2) after {ms}ms"),)


def pod_log_lines(ref: PodRef, *, bad_image: str, now: datetime) -> list[LogLine]:
    """The pod's log from its start (or the last two hours) until `now`: request lines, and for the
    bad image the error templates of the incident. JSON lines with `ts`, `level` and `msg`."""
    start = max(ref.started, now - LOG_HORIZON)
    bad = ref.image == bad_image
    lines: list[LogLine] = []
    step = 0
    moment = start
    while moment <= now:
        roll = _unit(ref.pod, step)
        size = _unit(ref.pod, step, "size")
        level, text = "info", "POST /api/checkout 200 duration_ms={ms}"
        ms = int(120 + 260 * size)
        threshold = 0.0
        for share, candidate_level, template in _BAD_LINES if bad else _GOOD_LINES:
            threshold += share
            if roll < threshold:
                level, text = candidate_level, template
                ms = int(2000 + 40 * size) if "deadline" in template else int(900 + 2500 * size)
                break
        if bad and level == "info":
            ms = int(ms * 3.2)
        message = text.format(ms=ms, cart=f"c-{int(size * 1e6):06d}")
        stamp = moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = f'{{"ts":"{stamp}","level":"{level}","service":"{ref.labels.get("app", ref.container)}",'
        body += f'"pod":"{ref.pod}","msg":"{_json_escape(message)}"}}'
        lines.append(LogLine(moment, body))
        step += 1
        moment = start + timedelta(seconds=LOG_INTERVAL_S * step)
    return lines


def _json_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


class SandboxWorld:
    """The cluster of the story, served on loopback; the logs come from the same cluster."""

    def __init__(self, *, tick_seconds: float = 0.05, now: datetime | None = None) -> None:
        self.cluster = KubeCluster(ControllerConfig(ready_after_ticks=2, progress_deadline_seconds=30))
        self._now = now
        self._server: KubeApiServer | None = None
        self._tick_seconds = tick_seconds
        checkout = _seeds()[0][0]
        self.incident = Incident(
            namespace=NAMESPACE,
            service=SERVICE,
            good_revision=GOOD_REVISION,
            bad_revision=BAD_REVISION,
            good_image=checkout.image(GOOD_REVISION),
            bad_image=checkout.image(BAD_REVISION),
            deployed_at=datetime.now(UTC),  # replaced by the seeded moment in start()
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        end = self._now or self.cluster.now()
        for seed, span in _seeds():
            seed_namespace(self.cluster, NAMESPACE, [seed], span=span, now=end)
        bad_image = self.incident.bad_image
        self.cluster.logs.set_provider(lambda ref: pod_log_lines(ref, bad_image=bad_image, now=self.cluster.now()))
        deployed_at = _replica_set_created(self.cluster, bad_image)
        self.incident = Incident(**{**self.incident.__dict__, "deployed_at": deployed_at})
        self._server = KubeApiServer(self.cluster, tick_seconds=self._tick_seconds).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

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

    # -- what the cluster says ----------------------------------------------------------------

    def running_images(self) -> list[str]:
        """The images of the service's ready pods (what serves traffic now)."""
        pods = self.cluster.list(PODS, NAMESPACE, label_selector_text=f"app={SERVICE}")["items"]
        images: list[str] = []
        for pod in pods:
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (pod.get("status") or {}).get("conditions") or []
            )
            if ready:
                images.extend(c["image"] for c in pod["spec"]["containers"])
        return images

    def recovered(self) -> bool:
        """True when the service runs only the good image, on all its replicas."""
        deployment = self.cluster.get(DEPLOYMENTS, NAMESPACE, SERVICE)
        images = self.running_images()
        wanted = int((deployment.get("spec") or {}).get("replicas") or 1)
        return len(images) >= wanted and all(image != self.incident.bad_image for image in images)


def _replica_set_created(cluster: KubeCluster, image: str) -> datetime:
    for rs in cluster.list(REPLICASETS, NAMESPACE)["items"]:
        containers = rs["spec"]["template"]["spec"]["containers"]
        if any(c.get("image") == image for c in containers):
            return datetime.fromisoformat(rs["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    raise LookupError(f"no ReplicaSet runs {image}")


# -- the metrics side: a timeline that follows the cluster --------------------------------------


def _images_of(deployment: dict[str, Any]) -> list[str]:
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return [str(c.get("image")) for c in containers]


class FastForwardClock:
    """Wall-clock time until `fast_forward_from(t)`, then time that runs `speed` times faster.

    The sandbox's series are scraped once a minute and a rollback's effect fades over two scrapes, so
    a recovery takes minutes of metric time. After the rollback the demo's metrics read this clock, so
    a few seconds of waiting show minutes of recovery. Times before the moment are unchanged, so the
    deploy and the rollback line up with the cluster's timestamps.
    """

    def __init__(self, speed: float = 40.0, real: Callable[[], float] = time.time) -> None:
        if speed < 1:
            raise ValueError("speed must be at least 1")
        self.speed = speed
        self._real = real
        self._from: float | None = None

    @property
    def fast_forwarding(self) -> bool:
        return self._from is not None

    def fast_forward_from(self, moment: float) -> None:
        if self._from is None:
            self._from = moment

    def __call__(self) -> float:
        now = self._real()
        start = self._from
        if start is None or now <= start:
            return now
        return start + (now - start) * self.speed


class TimelineFollower:
    """Keeps a `SandboxTimeline` in step with the cluster, read through its HTTP API.

    Runs wherever the metrics are served (e.g. inside the demo's server process), so it needs only the
    API URL. When the Deployment stops running the bad image it marks the rollback on the timeline and
    starts fast-forwarding `clock`, if one is given.
    """

    def __init__(
        self,
        api_url: str,
        timeline: SandboxTimeline,
        *,
        clock: FastForwardClock | None = None,
        namespace: str = NAMESPACE,
        deployment: str = SERVICE,
        bad_image: str | None = None,
        poll_s: float = 0.2,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeline = timeline
        self.namespace = namespace
        self.deployment = deployment
        self.bad_image = bad_image or DeploymentSeed(SERVICE).image(BAD_REVISION)
        self.poll_s = poll_s
        self.clock = clock
        self._deploy_synced = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(base_url=self.api_url, timeout=5.0)

    def sync(self) -> None:
        """Read the Deployment and its ReplicaSets once and update the timeline."""
        base = f"/apis/apps/v1/namespaces/{self.namespace}"
        deployment = self._client.get(f"{base}/deployments/{self.deployment}").raise_for_status().json()
        if not self._deploy_synced:
            sets = self._client.get(f"{base}/replicasets").raise_for_status().json()["items"]
            created = [rs["metadata"]["creationTimestamp"] for rs in sets if self.bad_image in _images_of(rs)]
            if created:
                deployed = datetime.fromisoformat(min(created).replace("Z", "+00:00"))
                self.timeline.service = self.deployment
                self.timeline.set(deploy_at=deployed.timestamp())
                self._deploy_synced = True
        runs_bad = self.bad_image in _images_of(deployment)
        if not runs_bad and self.timeline.deploy_at is not None and self.timeline.rollback_at is None:
            moment = time.time()
            self.timeline.roll_back(at=moment)
            if self.clock is not None:
                self.clock.fast_forward_from(moment)

    def start(self) -> Self:
        self.sync()
        self._thread = threading.Thread(target=self._run, name="sandbox-timeline", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.sync()
            except (httpx.HTTPError, KeyError, ValueError):  # the cluster may be gone at shutdown
                logger.debug("timeline sync failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._client.close()
