"""What a scenario's world does over time: pods, faults, metric samples and log lines, as pure functions.

Everything here is a function of (scenario, seed, the pods, scenario time): scenario time is seconds from
the anchor (negative = before the investigation started), so the same scenario gives the same samples
and the same log lines on every run, whatever the wall-clock time of day. The world (`world.py`) maps
wall time to scenario time and feeds the pods the cluster runs; the Prometheus-compatible API
(`promapi.py`) and the pod-log provider read from here.

Metrics, sampled every minute. The request metrics are the service's (labels namespace, service), as a
mesh or ingress reports them, mixed over the pods serving at the time; a deploy replaces the pods but
not the service's series. The resource metrics are per pod (labels namespace, service, pod,
pod_template_hash), as cAdvisor reports them:

==========================  =======  ==============================================
``latency_p99_seconds``     gauge    99th percentile request latency
``error_ratio``             gauge    share of requests answered with a 5xx
``request_rate``            gauge    requests per second
``http_requests_total``     counter  requests served
``cpu_usage_cores``         gauge    CPU in use
``memory_usage_bytes``      gauge    resident memory
==========================  =======  ==============================================
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from opsgate.sandbox.scenario import (
    Fault,
    LogTemplate,
    LogVar,
    Resources,
    Scenario,
    Service,
    Target,
    fault_start,
    parse_offset,
)
from opsgate.sandbox.series import METRIC_NAMES as METRIC_NAMES
from opsgate.sandbox.series import METRICS as METRICS

FloatArray = NDArray[np.float64]

RESOLUTION_S = 60.0
DAY_S = 86_400.0
LOG_INTERVAL_S = 4.0
LOG_HORIZON_S = 7200.0


REQUEST_METRICS = ("latency_p99_seconds", "error_ratio", "request_rate", "http_requests_total")


@dataclass(frozen=True)
class PodLife:
    """One pod of a service: which revision it runs and when it lived (scenario seconds; end None = alive)."""

    namespace: str
    service: str
    name: str
    revision: int | None  # the scenario revision of its template; None: a template the scenario never had
    template_hash: str
    ordinal: int
    start: float
    end: float | None = None
    serving: bool = True  # False: never became ready (crash loop, image pull): no request metrics or logs

    def alive(self, t: FloatArray) -> NDArray[np.bool_]:
        on = t >= self.start
        if self.end is not None:
            on &= t < self.end
        return on

    @property
    def labels(self) -> dict[str, str]:
        return {
            "namespace": self.namespace,
            "service": self.service,
            "pod": self.name,
            "pod_template_hash": self.template_hash,
        }


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from its arguments."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _splitmix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def normal_noise(key: int, ticks: NDArray[np.int64]) -> FloatArray:
    """Standard normal noise per tick, a pure function of (key, tick)."""
    base = np.uint64(key & 0xFFFFFFFFFFFF) << np.uint64(16)
    a = _splitmix64(base ^ (ticks.astype(np.int64).view(np.uint64) * np.uint64(0x2545F4914F6CDD1D)))
    b = _splitmix64(a)
    scale = 1.0 / float(1 << 53)
    u1 = ((a >> np.uint64(11)).astype(np.float64) + 0.5) * scale
    u2 = (b >> np.uint64(11)).astype(np.float64) * scale
    out: FloatArray = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)
    return out


def _quantity(text: str) -> float:
    """A Kubernetes quantity as a float (cpu cores or bytes): 250m, 1, 512Mi, 1Gi."""
    suffixes = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}
    for suffix, factor in suffixes.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


@dataclass
class ActiveFault:
    fault: Fault
    start: float
    ramp: float
    end: float | None

    def level(self, t: FloatArray) -> FloatArray:
        ramp = max(self.ramp, 1.0)
        on: FloatArray = np.clip((t - self.start) / ramp, 0.0, 1.0)
        if self.end is not None:
            off: FloatArray = np.clip(1.0 - (t - self.end) / ramp, 0.0, 1.0)
            on = np.minimum(on, off)
        return on


@dataclass
class Engine:
    """The scenario's behaviour; pods are given by the world (seeded history plus what the cluster runs)."""

    scenario: Scenario
    faults: list[ActiveFault] = field(default_factory=list)

    def __post_init__(self) -> None:
        s = self.scenario
        self.faults = []
        for fault in s.faults:
            start = fault_start(s, fault)
            assert start is not None  # checked when the scenario was loaded
            end = parse_offset(fault.end) if fault.end is not None else None
            self.faults.append(ActiveFault(fault, start, parse_offset(fault.ramp), end))
        hh, mm = (int(x) for x in s.time_of_day.split(":"))
        self._day_phase = hh * 3600.0 + mm * 60.0

    # -- targets ---------------------------------------------------------------------------------

    def service(self, name: str) -> Service:
        found = self.scenario.service(name)
        if found is None:
            raise KeyError(name)
        return found

    def matches(self, target: Target, pod: PodLife) -> bool:
        if target.namespace is not None and target.namespace != pod.namespace:
            return False
        if target.dependency is not None:
            service = self.scenario.service(pod.service)
            return service is not None and target.dependency in service.dependencies
        if target.service is not None and target.service != pod.service:
            return False
        if target.revision is not None and target.revision != pod.revision:
            return False
        return target.pods is None or pod.ordinal in target.pods

    def faults_for(self, pod: PodLife) -> list[ActiveFault]:
        return [f for f in self.faults if self.matches(f.fault.target, pod)]

    def active_fault_ids(self, t: float) -> set[str]:
        return {f.fault.id for f in self.faults if f.level(np.array([t]))[0] > 0}

    # -- metrics ---------------------------------------------------------------------------------

    def daily(self, t: FloatArray) -> FloatArray:
        """Daily shape in [-1, 1], busiest at 14:00 and quietest at 02:00 (scenario time of day)."""
        out: FloatArray = np.cos(2.0 * math.pi * (t + self._day_phase - 14 * 3600.0) / DAY_S)
        return out

    def _daily_integral(self, t: FloatArray) -> FloatArray:
        out: FloatArray = DAY_S / (2.0 * math.pi) * np.sin(2.0 * math.pi * (t + self._day_phase - 14 * 3600.0) / DAY_S)
        return out

    def _key(self, metric: str, pod: PodLife) -> int:
        digest = hashlib.blake2b(f"{self.scenario.seed}/{metric}/{pod.name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def latency_factor(self, pod: PodLife, t: FloatArray) -> FloatArray:
        factor = np.ones_like(t)
        for f in self.faults_for(pod):
            factor = factor * (1.0 + (f.fault.effects.latency_factor - 1.0) * f.level(t))
        return factor

    def service_values(self, metric: str, service_name: str, pods: Sequence[PodLife], t: FloatArray) -> FloatArray:
        """A request metric of the service at scenario times `t`: the mix over the pods serving then."""
        ticks = np.floor(np.asarray(t, dtype=np.float64) / RESOLUTION_S).astype(np.int64)
        sample_t = ticks.astype(np.float64) * RESOLUTION_S
        service = self.service(service_name)
        base = service.baseline
        digest = hashlib.blake2b(f"{self.scenario.seed}/{metric}/{service_name}".encode(), digest_size=8).digest()
        noise = normal_noise(int.from_bytes(digest, "big"), ticks)
        daily = self.daily(sample_t)
        mine = [p for p in pods if p.service == service_name and p.serving]
        count = np.zeros_like(sample_t)
        latency_mean = np.zeros_like(sample_t)
        latency_max = np.ones_like(sample_t)
        errors = np.zeros_like(sample_t)
        rate = np.zeros_like(sample_t)
        for pod in mine:
            alive = pod.alive(sample_t).astype(np.float64)
            factor = np.ones_like(sample_t)
            added = np.zeros_like(sample_t)
            traffic = np.ones_like(sample_t)
            for f in self.faults_for(pod):
                level = f.level(sample_t)
                factor = factor * (1.0 + (f.fault.effects.latency_factor - 1.0) * level)
                added = added + f.fault.effects.error_ratio * level
                traffic = traffic * (1.0 + (f.fault.effects.request_rate_factor - 1.0) * level)
            count += alive
            latency_mean += alive * factor
            latency_max = np.maximum(latency_max, np.where(alive > 0, factor, 1.0))
            errors += alive * added
            rate += alive * traffic
        if mine:
            # before the oldest pod the scenario knows, earlier (unrecorded) revisions served it, healthily
            before = sample_t < min(p.start for p in mine)
            count = np.where(before, 1.0, count)
            latency_mean = np.where(before, 1.0, latency_mean)
            rate = np.where(before, 1.0, rate)
        with np.errstate(invalid="ignore", divide="ignore"):
            n = np.maximum(count, 1.0)
            # a p99 over a mix of pods follows its slow pods: between the mean and the worst
            latency_mult = np.sqrt(latency_mean / n * latency_max)
            error_added = errors / n
            traffic_mult = np.where(count > 0, rate / n, 1.0)
        out: FloatArray
        if metric == "latency_p99_seconds":
            out = base.latency_s * (1 + 0.25 * daily) * np.exp(0.06 * noise) * latency_mult
            out = np.where(count > 0, out, np.nan)
        elif metric == "error_ratio":
            out = base.error_ratio * (1 + 0.2 * daily) * np.exp(0.25 * noise) + error_added * (1 + 0.1 * noise)
            out = np.where(count > 0, np.clip(out, 0.0, 1.0), 1.0)
        elif metric == "request_rate":
            out = base.request_rate * (1 + 0.5 * daily) * (1 + 0.03 * noise) * traffic_mult
        elif metric == "http_requests_total":
            origin = -30 * DAY_S
            total = base.request_rate * (
                (sample_t - origin) + 0.5 * (self._daily_integral(sample_t) - self._daily_integral(np.array([origin])))
            )
            out = np.round(total)
        else:
            raise KeyError(f"{metric!r} is not a request metric")
        return out

    def values(self, metric: str, pod: PodLife, t: FloatArray) -> FloatArray:
        """The pod's samples at scenario times `t` (the last scrape at or before each; NaN when not alive)."""
        ticks = np.floor(np.asarray(t, dtype=np.float64) / RESOLUTION_S).astype(np.int64)
        sample_t = ticks.astype(np.float64) * RESOLUTION_S
        service = self.service(pod.service)
        base = service.baseline
        replicas = service.deployment.replicas
        noise = normal_noise(self._key(metric, pod), ticks)
        daily = self.daily(sample_t)
        faults = self.faults_for(pod)
        levels = [(f, f.level(sample_t)) for f in faults]
        out: FloatArray
        if metric == "latency_p99_seconds":
            out = base.latency_s * (1 + 0.25 * daily) * np.exp(0.06 * noise)
            for f, lv in levels:
                out = out * (1.0 + (f.fault.effects.latency_factor - 1.0) * lv)
        elif metric == "error_ratio":
            out = base.error_ratio * (1 + 0.2 * daily) * np.exp(0.25 * noise)
            for f, lv in levels:
                out = out + f.fault.effects.error_ratio * lv * (1 + 0.1 * noise)
            out = np.clip(out, 0.0, 1.0)
        elif metric == "request_rate":
            out = base.request_rate / replicas * (1 + 0.5 * daily) * (1 + 0.03 * noise)
            for f, lv in levels:
                out = out * (1.0 + (f.fault.effects.request_rate_factor - 1.0) * lv)
        elif metric == "http_requests_total":
            rate = base.request_rate / replicas
            lived = sample_t - pod.start
            daily_part = 0.5 * (self._daily_integral(sample_t) - self._daily_integral(np.array([pod.start])))
            out = np.round(rate * np.maximum(lived + daily_part, 0.0))
        elif metric == "cpu_usage_cores":
            out = base.cpu_cores * (1 + 0.4 * daily) * (1 + 0.05 * noise)
            limit = _quantity(self._resources(service, pod).limits.get("cpu", "1"))
            for f, lv in levels:
                out = out * (1.0 + (f.fault.effects.request_rate_factor - 1.0) * lv)
                if f.fault.effects.cpu_saturation is not None:
                    target = f.fault.effects.cpu_saturation * limit * (1 + 0.02 * noise)
                    out = out + (target - out) * lv
        elif metric == "memory_usage_bytes":
            out = base.memory_mb * 2**20 * (1 + 0.02 * noise)
            limit = _quantity(self._resources(service, pod).limits.get("memory", "1Gi"))
            for f, _lv in levels:
                growth = f.fault.effects.memory_growth_mb_per_min * 2**20
                if growth <= 0:
                    continue
                since = sample_t - max(f.start, pod.start)
                grown = growth * np.maximum(since, 0.0) / 60.0
                room = max(limit - base.memory_mb * 2**20, 1.0)
                out = out + np.mod(grown, room)  # the kernel kills it at the limit and it starts over
        else:
            raise KeyError(f"no sandbox metric named {metric!r}")
        if not pod.serving and metric in ("latency_p99_seconds", "error_ratio", "request_rate"):
            out = np.full_like(sample_t, np.nan)
        return np.where(pod.alive(sample_t), out, np.nan)

    def _resources(self, service: Service, pod: PodLife) -> Resources:
        rev = service.deployment.revision(pod.revision) if pod.revision is not None else None
        return (rev.resources if rev is not None else None) or service.deployment.resources

    # -- logs ------------------------------------------------------------------------------------

    def _template_active(self, template: LogTemplate, pod: PodLife, t: float) -> bool:
        if template.service != pod.service:
            return False
        if template.revisions is not None and pod.revision not in template.revisions:
            return False
        if template.pods is not None and pod.ordinal not in template.pods:
            return False
        if template.start is not None and t < parse_offset(template.start) + parse_offset(template.lag):
            return False
        if template.during is not None:
            found = next((f for f in self.faults if f.fault.id == template.during), None)
            return found is not None and bool(found.level(np.array([t]))[0] > 0)
        if template.start is None and template.revisions is not None and parse_offset(template.lag) > 0:
            return t >= pod.start + parse_offset(template.lag)
        return True

    def log_lines(self, pod: PodLife, start: float, end: float) -> list[tuple[float, dict[str, str]]]:
        """The pod's log records (level, service, pod, msg) with scenario times in [start, end], at most
        the last two hours."""
        if not pod.serving:
            return self._crash_lines(pod, start, end)
        first = max(start, pod.start, end - LOG_HORIZON_S)
        last = end if pod.end is None else min(end, pod.end)
        service = self.service(pod.service)
        templates = [t for t in self.scenario.logs if t.service == pod.service]
        step0 = math.ceil((first - pod.start) / LOG_INTERVAL_S)
        count = max(math.floor((last - pod.start) / LOG_INTERVAL_S) - step0 + 1, 0)
        steps = np.arange(step0, step0 + count)
        times: FloatArray = (pod.start + steps * LOG_INTERVAL_S).astype(np.float64)
        factors = self.latency_factor(pod, times)
        masks = [self._active_mask(t, pod, times) for t in templates]
        out: list[tuple[float, dict[str, str]]] = []
        for i in range(count):
            step, moment = int(steps[i]), float(times[i])
            active = [bool(m[i]) for m in masks]
            out.append((moment, self._line(pod, service, templates, active, step, moment, float(factors[i]))))
        return out

    def _active_mask(self, template: LogTemplate, pod: PodLife, t: FloatArray) -> NDArray[np.bool_]:
        """`_template_active` over many times at once."""
        static = template.service == pod.service
        static = static and (template.revisions is None or pod.revision in template.revisions)
        static = static and (template.pods is None or pod.ordinal in template.pods)
        mask = np.full(t.shape, static, dtype=bool)
        if template.start is not None:
            mask &= t >= parse_offset(template.start) + parse_offset(template.lag)
        if template.during is not None:
            found = next((f for f in self.faults if f.fault.id == template.during), None)
            mask &= found.level(t) > 0 if found is not None else False
        elif template.start is None and template.revisions is not None and parse_offset(template.lag) > 0:
            mask &= t >= pod.start + parse_offset(template.lag)
        return mask

    def _crash_lines(self, pod: PodLife, start: float, end: float) -> list[tuple[float, dict[str, str]]]:
        """A pod that never gets ready logs only what its templates say it prints before it dies."""
        templates = [
            (i, t) for i, t in enumerate(self.scenario.logs) if t.service == pod.service and t.revisions is not None
        ]
        out: list[tuple[float, dict[str, str]]] = []
        moment = max(pod.start, start, end - LOG_HORIZON_S)
        step = 0
        while moment <= end:
            for index, template in templates:
                if self._template_active(template, pod, moment):
                    text = self._render(template, pod, step, index, moment)
                    out.append(
                        (moment, {"level": template.level, "service": pod.service, "pod": pod.name, "msg": text})
                    )
            step += 1
            moment += 60.0
        return out

    def _line(
        self,
        pod: PodLife,
        service: Service,
        templates: Sequence[LogTemplate],
        active: Sequence[bool],
        step: int,
        t: float,
        factor: float,
    ) -> dict[str, str]:
        roll = unit(self.scenario.seed, pod.name, step)
        size = unit(self.scenario.seed, pod.name, step, "size")
        level, text = "info", ""
        threshold = 0.0
        for index, template in enumerate(templates):
            if not active[index]:
                continue
            threshold += template.share
            if roll < threshold:
                level = template.level
                text = self._render(template, pod, step, index, t)
                break
        if not text:
            ms = int((120 + 260 * size) * factor)
            method = "POST" if service.endpoint.startswith("/api/") else "GET"
            text = f"{method} {service.endpoint} 200 duration_ms={ms}"
        return {"level": level, "service": pod.service, "pod": pod.name, "msg": text}

    def _render(self, template: LogTemplate, pod: PodLife, step: int, index: int, t: float) -> str:
        values: dict[str, str] = {}
        for name, var in template.vars.items():
            values[name] = self._var(var, pod, step, index, name, t)
        return template.template.format(**values)

    def _var(self, var: LogVar, pod: PodLife, step: int, index: int, name: str, t: float) -> str:
        u = unit(self.scenario.seed, pod.name, step, index, name)
        if var.kind == "int":
            value = var.low + (var.high - var.low) * u
            if var.scale_with_latency:
                value *= float(self.latency_factor(pod, np.array([t]))[0])
            return str(int(value))
        if var.kind == "choice":
            return var.values[int(u * len(var.values))] if var.values else ""
        digest = hashlib.blake2b(f"{u}".encode(), digest_size=32).hexdigest()
        return digest[: var.digits]
