"""A loopback endpoint that answers like Azure Monitor's metrics batch API (`metrics:getBatch`).

It serves the test incident in the response format the SDK deserializes (values -> value -> timeseries
-> data with timeStamp/average), honours `metricnames`, `interval`, `starttime`/`endtime`, `aggregation`
and `filter` (`dim eq 'value'` / `dim eq '*'`), answers an unknown metric the way the service does
(400 BadRequest), and can be told to throttle (429 + Retry-After) or fail (5xx) the next requests.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import isodate
import numpy as np

from opsgate.sandbox.series import SandboxSeries
from tests.support.loopback import LoopbackServer, Reply, Route, json_reply

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/shop-rg"
RESOURCE_ID = f"{RESOURCE_GROUP}/providers/Microsoft.ContainerService/managedClusters/shop-aks"
NAMESPACE = "Microsoft.ContainerService/managedClusters"
DIMENSIONS = ("namespace", "service", "pod")
TOKEN = "loopback-test-token"


class AzureLoopback:
    def __init__(self, series: SandboxSeries) -> None:
        self.series = series
        self.requests: list[dict[str, Any]] = []
        self.failures: list[tuple[int, dict[str, str]]] = []  # served (and consumed) before any answer
        self.always_fail: tuple[int, dict[str, str]] | None = None
        self.lock = threading.Lock()
        self.url = ""

    def next_failure(self) -> tuple[int, dict[str, str]] | None:
        with self.lock:
            if self.failures:
                return self.failures.pop(0)
            return self.always_fail

    def answer(self, query: dict[str, list[str]], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        metric = query["metricnames"][0]
        if metric not in {k.metric for k in self.series.keys}:
            valid = ", ".join(sorted({k.metric for k in self.series.keys}))
            return 400, {
                "error": {
                    "code": "BadRequest",
                    "message": f"Failed to find metric configuration for provider: Microsoft.ContainerService, "
                    f"resource Type: managedClusters, metric: {metric}, Valid metrics: {valid}",
                }
            }
        aggregation = query.get("aggregation", ["average"])[0].lower()
        grain = isodate.parse_duration(query.get("interval", ["PT1M"])[0]).total_seconds()
        start = datetime.fromisoformat(query["starttime"][0].replace("Z", "+00:00")).timestamp()
        end = datetime.fromisoformat(query["endtime"][0].replace("Z", "+00:00")).timestamp()
        wanted: dict[str, str] = {}
        for dim, value in re.findall(r"(\w+) eq '((?:[^']|'')*)'", query.get("filter", [""])[0]):
            wanted[dim] = value.replace("''", "'")
        first = -(-start // grain) * grain
        times = [first + i * grain for i in range(int((end - first) // grain) + 1) if first + i * grain < end]
        keys = [
            k
            for k in self.series.keys_of(metric)
            if all(v == "*" or k.label_dict.get(d) == v for d, v in wanted.items())
        ]
        values = self.series.values(keys, np.array(times, dtype=np.float64)) if keys else np.empty((0, len(times)))
        timeseries = [
            {
                "metadatavalues": [
                    {"name": {"value": d, "localizedValue": d}, "value": k.label_dict[d]}
                    for d in wanted
                    if d in DIMENSIONS
                ],
                "data": [
                    {"timeStamp": datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z"), aggregation: v}
                    for t, v in zip(times, row.tolist(), strict=True)
                ],
            }
            for k, row in zip(keys, values, strict=True)
        ]
        values_out = [
            {
                "starttime": query["starttime"][0],
                "endtime": query["endtime"][0],
                "interval": query.get("interval", ["PT1M"])[0],
                "namespace": query["metricnamespace"][0],
                "resourceregion": "westeurope",
                "resourceid": rid,
                "value": [
                    {
                        "id": f"{rid}/providers/Microsoft.Insights/metrics/{metric}",
                        "type": "Microsoft.Insights/metrics",
                        "name": {"value": metric, "localizedValue": metric},
                        "displayDescription": "",
                        "unit": "Unspecified",
                        "timeseries": timeseries,
                        "errorCode": "Success",
                    }
                ],
            }
            for rid in body.get("resourceids", [])
        ]
        return 200, {"values": values_out}


def _route(loopback: AzureLoopback) -> Route:
    def route(method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        parsed = urlparse(path)
        body = json.loads(raw or b"{}")
        query = parse_qs(parsed.query)
        with loopback.lock:
            loopback.requests.append(
                {"path": parsed.path, "query": query, "body": body, "auth": headers.get("authorization")}
            )
        if method != "POST":
            return json_reply(405, {"error": {"code": "MethodNotAllowed", "message": method}})
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return json_reply(401, {"error": {"code": "InvalidAuthenticationToken", "message": "bad token"}})
        if not re.fullmatch(rf"/subscriptions/{SUBSCRIPTION}/metrics:getBatch", parsed.path):
            return json_reply(404, {"error": {"code": "NotFound", "message": f"no route {parsed.path}"}})
        failure = loopback.next_failure()
        if failure is not None:
            status, extra = failure
            code = "Throttled" if status == 429 else "ServerError"
            status, reply_headers, payload = json_reply(
                status, {"error": {"code": code, "message": f"loopback says {status}"}}
            )
            return status, {**reply_headers, **extra}, payload
        return json_reply(*loopback.answer(query, body))

    return route


@contextmanager
def serve(series: SandboxSeries) -> Iterator[AzureLoopback]:
    loopback = AzureLoopback(series)
    with LoopbackServer(_route(loopback)) as server:
        loopback.url = server.url
        yield loopback
