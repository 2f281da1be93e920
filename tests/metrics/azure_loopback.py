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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import isodate
import numpy as np

from opsgate.sandbox.series import SandboxSeries

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


def _handler(loopback: AzureLoopback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            parsed = urlparse(self.path)
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            query = parse_qs(parsed.query)
            with loopback.lock:
                loopback.requests.append(
                    {"path": parsed.path, "query": query, "body": body, "auth": self.headers.get("Authorization")}
                )
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"error": {"code": "InvalidAuthenticationToken", "message": "bad token"}})
                return
            if not re.fullmatch(rf"/subscriptions/{SUBSCRIPTION}/metrics:getBatch", parsed.path):
                self._send(404, {"error": {"code": "NotFound", "message": f"no route {parsed.path}"}})
                return
            failure = loopback.next_failure()
            if failure is not None:
                status, headers = failure
                self._send(
                    status,
                    {
                        "error": {
                            "code": "Throttled" if status == 429 else "ServerError",
                            "message": f"loopback says {status}",
                        }
                    },
                    headers,
                )
                return
            status, doc = loopback.answer(query, body)
            self._send(status, doc)

    return Handler


@contextmanager
def serve(series: SandboxSeries) -> Iterator[AzureLoopback]:
    loopback = AzureLoopback(series)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(loopback))
    loopback.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield loopback
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class LoopbackCredential:
    """An async token credential for tests: one fixed token, and the scopes it was asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(datetime.now(UTC).timestamp()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> LoopbackCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
