"""A Prometheus-compatible HTTP API over the sandbox's series, on loopback (not a Prometheus).

The metrics capability talks to it with its ordinary Prometheus backend, so the capability never imports
the sandbox: the two meet only through configuration (`[metrics] backend = "prometheus"`, `url = ...`),
exactly as they would meet a real Prometheus. It answers the PromQL the typed tools generate
(`opsgate.metrics.selection.Selection.promql`): a selector with label matchers, `rate(sel[Ns])`,
`sum|avg|min|max|count [by (labels)] (expr)` and `quantile [by (labels)] (q, expr)`; anything else is
refused as Prometheus refuses a query it cannot parse (HTTP 400, `bad_data`). It also serves
`/api/v1/series`, label names and values, `/api/v1/alerts` (Prometheus' own alerts endpoint) and
`/api/v2/alerts` (Alertmanager's), so alert tools can read the scenario's firing alert, and Alertmanager's
`/api/v2/silences` (create, list) and `/api/v2/silence/{id}` (get, expire): a silenced alert shows
`status.state: suppressed` with `silencedBy`, as Alertmanager shows it.

    with PromApiServer(source) as server:          # source: a SeriesSource
        print(server.url)                          # http://127.0.0.1:PORT
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from opsgate.sandbox.loopback import LoopbackApp

FloatArray = NDArray[np.float64]
Labels = dict[str, str]
MAX_POINTS = 11_000  # Prometheus refuses more than 11,000 points per series


class SeriesSource(Protocol):
    """What the API serves: label sets per metric and their values at any unix times (NaN: no sample)."""

    def metric_names(self) -> Sequence[str]: ...

    def series(self, metric: str) -> list[Labels]: ...

    def values(self, metric: str, series: Sequence[Labels], times: FloatArray) -> FloatArray: ...

    def alerts(self) -> list[dict[str, Any]]: ...


class PromQLError(ValueError):
    pass


# -- the PromQL subset --------------------------------------------------------------------------------

_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_SELECTOR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$", re.S)
_AGG = re.compile(r"^\s*(sum|avg|min|max|count|quantile)\s*(?:by\s*\(([^)]*)\))?\s*\((.*)\)\s*$", re.S)
_RATE = re.compile(r"^\s*rate\s*\((.*)\[(\d+)([smhd])\]\s*\)\s*$", re.S)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...]


@dataclass(frozen=True)
class Rate:
    inner: Selector
    window_s: float


@dataclass(frozen=True)
class Aggregate:
    op: str
    by: tuple[str, ...]
    inner: Selector | Rate | Aggregate
    param: float | None = None


Expr = Selector | Rate | Aggregate


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", lambda g: "\n" if g.group(1) == "n" else g.group(1), raw)


def parse_selector(text: str) -> Selector:
    match = _SELECTOR.match(text)
    if match is None:
        raise PromQLError(f"parse error: unexpected input {text.strip()[:80]!r}")
    metric, body = match.group(1), match.group(2)
    matchers: list[Matcher] = []
    rest = (body or "").strip()
    while rest:
        found = _MATCHER.match(rest)
        if found is None:
            raise PromQLError(f"parse error: bad label matcher at {rest[:60]!r}")
        name, op, value = found.group(1), found.group(2), _unescape(found.group(3))
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise PromQLError(f"invalid regular expression {value!r}: {exc}") from None
        matchers.append(Matcher(name, op, value))
        rest = rest[found.end() :].strip()
    return Selector(metric, tuple(matchers))


def parse(text: str) -> Expr:
    """The PromQL subset above; PromQLError otherwise."""
    agg = _AGG.match(text)
    if agg is not None:
        op, by_text, body = agg.group(1), agg.group(2), agg.group(3)
        by = tuple(b.strip() for b in (by_text or "").split(",") if b.strip())
        param: float | None = None
        if op == "quantile":
            head, sep, body = body.partition(",")
            if not sep:
                raise PromQLError("parse error: quantile needs a parameter: quantile(0.9, expr)")
            try:
                param = float(head)
            except ValueError:
                raise PromQLError(f"parse error: {head.strip()!r} is not a number") from None
        return Aggregate(op, by, parse(body), param)
    rate = _RATE.match(text)
    if rate is not None:
        return Rate(parse_selector(rate.group(1)), float(rate.group(2)) * _UNITS[rate.group(3)])
    return parse_selector(text)


# -- evaluation --------------------------------------------------------------------------------------


def _select(source: SeriesSource, selector: Selector, times: FloatArray) -> tuple[list[Labels], FloatArray]:
    if selector.metric not in source.metric_names():
        return [], np.empty((0, times.size))
    keys = [k for k in source.series(selector.metric) if all(m.matches(k) for m in selector.matchers)]
    if not keys:
        return [], np.empty((0, times.size))
    return [{**k, "__name__": selector.metric} for k in keys], source.values(selector.metric, keys, times)


def evaluate(source: SeriesSource, expr: Expr, times: FloatArray) -> tuple[list[Labels], FloatArray]:
    if isinstance(expr, Selector):
        return _select(source, expr, times)
    if isinstance(expr, Rate):
        keys, now = _select(source, expr.inner, times)
        _, before = _select(source, expr.inner, times - expr.window_s)
        if not keys:
            return [], now
        delta = np.where(now >= before, now - before, now)  # a counter reset starts over
        rated: FloatArray = delta / expr.window_s
        return [{k: v for k, v in labels.items() if k != "__name__"} for labels in keys], rated
    keys, values = evaluate(source, expr.inner, times)
    groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for index, labels in enumerate(keys):
        group = tuple((name, labels[name]) for name in expr.by if name in labels)
        groups.setdefault(group, []).append(index)
    out_keys: list[Labels] = []
    rows: list[FloatArray] = []
    with np.errstate(all="ignore"):
        for group, members in groups.items():
            block = values[members]
            present = ~np.isnan(block)
            row: FloatArray
            any_present = present.any(axis=0)
            if expr.op == "sum":
                row = np.nansum(block, axis=0)
            elif expr.op == "avg":
                row = np.nansum(block, axis=0) / np.maximum(present.sum(axis=0), 1)
            elif expr.op == "max":
                row = np.nanmax(np.where(present, block, -np.inf), axis=0)
            elif expr.op == "min":
                row = np.nanmin(np.where(present, block, np.inf), axis=0)
            elif expr.op == "count":
                row = present.sum(axis=0).astype(np.float64)
            else:
                row = np.nanquantile(block, float(expr.param or 0.0), axis=0) if block.size else block
            out_keys.append(dict(group))
            rows.append(np.where(any_present, row, np.nan))
    return out_keys, (np.vstack(rows) if rows else np.empty((0, times.size)))


def _fmt(value: float) -> str:
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _error(message: str, status: int = 400, kind: str = "bad_data") -> JSONResponse:
    return JSONResponse({"status": "error", "errorType": kind, "error": message}, status_code=status)


def _success(data: Any) -> JSONResponse:
    return JSONResponse({"status": "success", "data": data})


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = {k: request.query_params.getlist(k) for k in request.query_params}
    if request.method == "POST":
        form = await request.form()
        for key in form:
            params.setdefault(key, []).extend(str(v) for v in form.getlist(key))
    return params


def _one(params: dict[str, Any], key: str, default: str | None = None) -> str:
    values = params.get(key) or []
    if not values:
        if default is None:
            raise PromQLError(f"missing parameter {key!r}")
        return default
    return str(values[0])


def _time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        from datetime import datetime

        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise PromQLError(f'cannot parse "{text}" to a valid timestamp') from None


# -- Alertmanager's silences ---------------------------------------------------------------------------

_FILTER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?((?:[^"\\]|\\.)*?)"?\s*$', re.S)


def _iso(unix: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _filter_matcher(text: str) -> Matcher:
    """One Alertmanager `filter` parameter: `name="value"`, `name=~"regex"`, `name!="value"`, `name!~"regex"`."""
    found = _FILTER.match(text)
    if found is None:
        raise PromQLError(f"bad matcher format: {text[:80]}")
    name, op, value = found.group(1), found.group(2), _unescape(found.group(3))
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise PromQLError(f"bad matcher format: invalid regular expression {value!r}: {exc}") from None
    return Matcher(name, op, value)


def _silence_matcher(matcher: Mapping[str, Any]) -> Matcher:
    regex, equal = bool(matcher.get("isRegex")), matcher.get("isEqual", True) is not False
    op = ("=~" if equal else "!~") if regex else ("=" if equal else "!=")
    return Matcher(str(matcher["name"]), op, str(matcher["value"]))


def _postable_silence(body: Any) -> dict[str, Any]:
    """A postableSilence checked as Alertmanager checks it; PromQLError (HTTP 400) otherwise."""
    if not isinstance(body, dict):
        raise PromQLError("silence invalid: body must be an object")
    missing = [k for k in ("matchers", "startsAt", "endsAt", "createdBy", "comment") if k not in body]
    if missing:
        raise PromQLError(f"silence invalid: {', '.join(missing)} in body is required")
    raw = body["matchers"]
    if not isinstance(raw, list) or not raw:
        raise PromQLError("silence invalid: at least one matcher required")
    matchers = []
    for item in raw:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("value"), str)
        ):
            raise PromQLError("silence invalid: a matcher needs a string name and value")
        if item.get("isRegex"):
            try:
                re.compile(item["value"])
            except re.error as exc:
                raise PromQLError(f"silence invalid: invalid regular expression {item['value']!r}: {exc}") from None
        matchers.append(
            {
                "name": item["name"],
                "value": item["value"],
                "isRegex": bool(item.get("isRegex")),
                "isEqual": item.get("isEqual", True) is not False,
            }
        )
    if all(_silence_matcher(m).matches({}) for m in matchers):
        raise PromQLError("silence invalid: at least one matcher must not match the empty string")
    starts, ends = _time(str(body["startsAt"])), _time(str(body["endsAt"]))
    if ends < starts:
        raise PromQLError("silence invalid: end time must not be before start time")
    return {
        "matchers": matchers,
        "startsAt": _iso(starts),
        "endsAt": _iso(ends),
        "createdBy": str(body["createdBy"]),
        "comment": str(body["comment"]),
    }


def create_app(source: SeriesSource, clock: Callable[[], float]) -> Starlette:
    async def query(request: Request) -> Response:
        try:
            params = await _params(request)
            expr = parse(_one(params, "query"))
            at = _time(_one(params, "time", repr(clock())))
        except PromQLError as exc:
            return _error(str(exc))
        keys, values = evaluate(source, expr, np.array([at], dtype=np.float64))
        result = [
            {"metric": labels, "value": [at, _fmt(float(row[0]))]}
            for labels, row in zip(keys, values, strict=True)
            if not np.isnan(row[0])
        ]
        return _success({"resultType": "vector", "result": result})

    async def query_range(request: Request) -> Response:
        try:
            params = await _params(request)
            expr = parse(_one(params, "query"))
            start, end, step = _time(_one(params, "start")), _time(_one(params, "end")), float(_one(params, "step"))
        except (PromQLError, ValueError) as exc:
            return _error(str(exc))
        if step <= 0:
            return _error("zero or negative query resolution step widths are not accepted. Try a positive integer")
        if end < start:
            return _error("end timestamp must not be before start time")
        if (end - start) / step > MAX_POINTS:
            return _error(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        times = start + step * np.arange(int((end - start) // step) + 1, dtype=np.float64)
        keys, values = evaluate(source, expr, times)
        result = []
        for labels, row in zip(keys, values, strict=True):
            points = [[float(t), _fmt(float(v))] for t, v in zip(times, row, strict=True) if not np.isnan(v)]
            if points:
                result.append({"metric": labels, "values": points})
        return _success({"resultType": "matrix", "result": result})

    async def series(request: Request) -> Response:
        params = await _params(request)
        found: list[Labels] = []
        try:
            selectors = [parse_selector(text) for text in params.get("match[]") or []]
        except PromQLError as exc:
            return _error(str(exc))
        if not selectors:
            return _error("no match[] parameter provided")
        for selector in selectors:
            if selector.metric in source.metric_names():
                for labels in source.series(selector.metric):
                    if all(m.matches(labels) for m in selector.matchers):
                        found.append({"__name__": selector.metric, **labels})
        return _success(found)

    async def labels(_request: Request) -> Response:
        names = {"__name__"}
        for metric in source.metric_names():
            for labels in source.series(metric):
                names.update(labels)
        return _success(sorted(names))

    async def label_values(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "__name__":
            return _success(sorted(source.metric_names()))
        values = {labels[name] for m in source.metric_names() for labels in source.series(m) if name in labels}
        return _success(sorted(values))

    async def alerts(_request: Request) -> Response:
        out = [
            {
                "labels": a["labels"],
                "annotations": a["annotations"],
                "state": a.get("state", "firing"),
                "activeAt": a["startsAt"],
                "value": a.get("value", "1e+00"),
            }
            for a in source.alerts()
        ]
        return _success({"alerts": out})

    silences: dict[str, dict[str, Any]] = {}

    def silence_state(silence: Mapping[str, Any], now: float) -> str:
        if _time(silence["endsAt"]) <= now:
            return "expired"
        return "pending" if _time(silence["startsAt"]) > now else "active"

    def silenced_by(labels: Mapping[str, str], now: float) -> list[str]:
        return sorted(
            sid
            for sid, silence in silences.items()
            if silence_state(silence, now) == "active"
            and all(_silence_matcher(m).matches(labels) for m in silence["matchers"])
        )

    async def alertmanager_alerts(request: Request) -> Response:
        try:
            filters = [_filter_matcher(text) for text in request.query_params.getlist("filter")]
        except PromQLError as exc:
            return JSONResponse(str(exc), status_code=400)
        flags = {k: request.query_params.get(k, "true").lower() != "false" for k in ("active", "silenced")}
        now = clock()
        out = []
        for a in source.alerts():
            if a.get("state", "firing") != "firing" or not all(m.matches(a["labels"]) for m in filters):
                continue
            by = silenced_by(a["labels"], now)
            if not flags["silenced" if by else "active"]:
                continue
            out.append(
                {
                    "labels": a["labels"],
                    "annotations": a["annotations"],
                    "startsAt": a["startsAt"],
                    "endsAt": a.get("endsAt", "0001-01-01T00:00:00Z"),
                    "updatedAt": a["startsAt"],
                    "fingerprint": a.get("fingerprint", ""),
                    "generatorURL": a.get("generatorURL", ""),
                    "receivers": [{"name": "sandbox"}],
                    "status": {
                        "state": "suppressed" if by else "active",
                        "silencedBy": by,
                        "inhibitedBy": [],
                        "mutedBy": [],
                    },
                }
            )
        return JSONResponse(out)

    def gettable(sid: str, silence: Mapping[str, Any], now: float) -> dict[str, Any]:
        return {"id": sid, "status": {"state": silence_state(silence, now)}, **silence}

    async def post_silence(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse("body is not valid JSON", status_code=400)
        try:
            silence = _postable_silence(body)
        except PromQLError as exc:
            return JSONResponse(str(exc), status_code=400)
        now = clock()
        if _time(silence["endsAt"]) <= now:
            return JSONResponse("silence invalid: end time can't be in the past", status_code=400)
        sid = str(body.get("id") or "")
        if sid and sid not in silences:
            return JSONResponse(f"silence {sid} not found", status_code=404)
        if not sid:
            sid = str(uuid.uuid4())
        silence["updatedAt"] = _iso(now)
        silences[sid] = silence
        return JSONResponse({"silenceID": sid})

    async def list_silences(request: Request) -> Response:
        try:
            filters = [_filter_matcher(text) for text in request.query_params.getlist("filter")]
        except PromQLError as exc:
            return JSONResponse(str(exc), status_code=400)
        now = clock()
        out = []
        for sid, silence in silences.items():
            as_labels = {m["name"]: m["value"] for m in silence["matchers"]}
            if all(f.matches(as_labels) for f in filters):
                out.append(gettable(sid, silence, now))
        return JSONResponse(out)

    async def get_silence(request: Request) -> Response:
        sid = request.path_params["sid"]
        if sid not in silences:
            return JSONResponse(f"silence {sid} not found", status_code=404)
        return JSONResponse(gettable(sid, silences[sid], clock()))

    async def expire_silence(request: Request) -> Response:
        sid = request.path_params["sid"]
        silence = silences.get(sid)
        if silence is None:
            return JSONResponse(f"silence {sid} not found", status_code=404)
        now = clock()
        if silence_state(silence, now) == "expired":
            return JSONResponse(f"silence {sid} already expired", status_code=500)
        silence["endsAt"] = _iso(now)
        if _time(silence["startsAt"]) > now:
            silence["startsAt"] = silence["endsAt"]
        silence["updatedAt"] = silence["endsAt"]
        return Response(status_code=200)

    async def ready(_request: Request) -> Response:
        return Response("Prometheus Server is Ready.\n")

    return Starlette(
        routes=[
            Route("/api/v1/query", query, methods=["GET", "POST"]),
            Route("/api/v1/query_range", query_range, methods=["GET", "POST"]),
            Route("/api/v1/series", series, methods=["GET", "POST"]),
            Route("/api/v1/labels", labels, methods=["GET", "POST"]),
            Route("/api/v1/label/{name}/values", label_values, methods=["GET"]),
            Route("/api/v1/alerts", alerts, methods=["GET"]),
            Route("/api/v2/alerts", alertmanager_alerts, methods=["GET"]),
            Route("/api/v2/silences", post_silence, methods=["POST"]),
            Route("/api/v2/silences", list_silences, methods=["GET"]),
            Route("/api/v2/silence/{sid}", get_silence, methods=["GET"]),
            Route("/api/v2/silence/{sid}", expire_silence, methods=["DELETE"]),
            Route("/-/ready", ready, methods=["GET"]),
            Route("/-/healthy", ready, methods=["GET"]),
        ]
    )


class PromApiServer(LoopbackApp):
    def __init__(self, source: SeriesSource, clock: Callable[[], float], port: int = 0) -> None:
        super().__init__(create_app(source, clock), "sandbox-prometheus-api", port)
