"""The ASGI app of the loopback Kubernetes API emulation: `core/v1` and `apps/v1` REST paths in the
real wire format (JSON objects, `{Kind}List`s, `metav1.Status` errors), plus discovery documents."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from opsgate.sandbox.kube.cluster import KubeCluster
from opsgate.sandbox.kube.errors import (
    KubeApiError,
    bad_request,
    method_not_allowed,
    path_not_found,
    unsupported_media_type,
)
from opsgate.sandbox.kube.logs import LogOptions
from opsgate.sandbox.kube.objects import (
    CONTROLLERREVISIONS,
    DAEMONSETS,
    DEPLOYMENTS,
    EVENTS,
    EVENTS_V1,
    NAMESPACES,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    ResourceType,
    parse_time,
)
from opsgate.sandbox.kube.patches import PATCH_TYPES
from opsgate.sandbox.kube.tables import table, wants_table
from opsgate.sandbox.kube.watch import watch_response

EMULATED_VERSION = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0-opsgate-emulation",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_CORE_RESOURCES = [
    {
        "name": "namespaces",
        "singularName": "namespace",
        "namespaced": False,
        "kind": "Namespace",
        "verbs": ["create", "get", "list", "watch"],
        "shortNames": ["ns"],
    },
    {
        "name": "pods",
        "singularName": "pod",
        "namespaced": True,
        "kind": "Pod",
        "verbs": ["get", "list", "watch"],
        "shortNames": ["po"],
        "categories": ["all"],
    },
    {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
    {
        "name": "events",
        "singularName": "event",
        "namespaced": True,
        "kind": "Event",
        "verbs": ["get", "list", "watch"],
        "shortNames": ["ev"],
    },
]
_EVENTS_RESOURCES = [
    {
        "name": "events",
        "singularName": "event",
        "namespaced": True,
        "kind": "Event",
        "verbs": ["get", "list", "watch"],
        "shortNames": ["ev"],
    },
]
_EVENTS_GROUP = {
    "name": "events.k8s.io",
    "versions": [{"groupVersion": "events.k8s.io/v1", "version": "v1"}],
    "preferredVersion": {"groupVersion": "events.k8s.io/v1", "version": "v1"},
}
_APPS_RESOURCES = [
    {
        "name": "deployments",
        "singularName": "deployment",
        "namespaced": True,
        "kind": "Deployment",
        "verbs": ["create", "get", "list", "patch", "update", "watch"],
        "shortNames": ["deploy"],
        "categories": ["all"],
    },
    {"name": "deployments/status", "singularName": "", "namespaced": True, "kind": "Deployment", "verbs": ["get"]},
    {
        "name": "replicasets",
        "singularName": "replicaset",
        "namespaced": True,
        "kind": "ReplicaSet",
        "verbs": ["get", "list", "watch"],
        "shortNames": ["rs"],
        "categories": ["all"],
    },
    {
        "name": "statefulsets",
        "singularName": "statefulset",
        "namespaced": True,
        "kind": "StatefulSet",
        "verbs": ["create", "get", "list", "patch", "update", "watch"],
        "shortNames": ["sts"],
        "categories": ["all"],
    },
    {"name": "statefulsets/status", "singularName": "", "namespaced": True, "kind": "StatefulSet", "verbs": ["get"]},
    {
        "name": "daemonsets",
        "singularName": "daemonset",
        "namespaced": True,
        "kind": "DaemonSet",
        "verbs": ["create", "get", "list", "patch", "update", "watch"],
        "shortNames": ["ds"],
        "categories": ["all"],
    },
    {"name": "daemonsets/status", "singularName": "", "namespaced": True, "kind": "DaemonSet", "verbs": ["get"]},
    {
        "name": "controllerrevisions",
        "singularName": "controllerrevision",
        "namespaced": True,
        "kind": "ControllerRevision",
        "verbs": ["get", "list", "watch"],
    },
]
_APPS_GROUP = {
    "name": "apps",
    "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
    "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
}

Handler = Callable[[Request], Awaitable[Response]]


def _query_bool(request: Request, key: str) -> bool:
    return request.query_params.get(key, "").lower() in ("true", "1")


def _query_int(request: Request, key: str) -> int | None:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as error:
        raise bad_request(f"{key}: invalid integer {raw!r}") from error


def _dry_run(request: Request) -> bool:
    values = request.query_params.getlist("dryRun")
    if any(value != "All" for value in values):
        raise bad_request(f'dryRun: Unsupported value: {values!r}: supported values: "All"')
    return bool(values)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except json.JSONDecodeError as error:
        raise bad_request(f"the body of the request could not be decoded as JSON: {error}") from error


def _log_options(request: Request) -> LogOptions:
    since_time_text = request.query_params.get("sinceTime")
    try:
        since_time = parse_time(since_time_text) if since_time_text else None
    except ValueError as error:
        raise bad_request(f"sinceTime: invalid RFC 3339 time {since_time_text!r}") from error
    options = LogOptions(
        container=request.query_params.get("container") or None,
        since_time=since_time,
        since_seconds=_query_int(request, "sinceSeconds"),
        tail_lines=_query_int(request, "tailLines"),
        timestamps=_query_bool(request, "timestamps"),
        limit_bytes=_query_int(request, "limitBytes"),
    )
    if options.since_time is not None and options.since_seconds is not None:
        raise KubeApiError(422, "Invalid", "at most one of sinceTime or sinceSeconds may be specified")
    for key, value in (
        ("sinceSeconds", options.since_seconds),
        ("tailLines", options.tail_lines),
        ("limitBytes", options.limit_bytes),
    ):
        if value is not None and value < (1 if key != "tailLines" else 0):
            raise KubeApiError(422, "Invalid", f"{key}: Invalid value: {value}: must be greater than 0")
    return options


def create_app(cluster: KubeCluster) -> Starlette:
    """Build the ASGI app serving `cluster`."""

    def endpoint(
        verb: str, resource: ResourceType, subresource: str = ""
    ) -> Callable[[Callable[[Request, str, str], Awaitable[Any]]], Handler]:
        """Wrap a handler with fault injection and Status rendering of errors."""
        resource_name = f"{resource.plural}/{subresource}" if subresource else resource.plural

        def wrap(handler: Callable[[Request, str, str], Awaitable[Any]]) -> Handler:
            async def run(request: Request) -> Response:
                namespace = str(request.path_params.get("namespace", ""))
                name = str(request.path_params.get("name", ""))
                try:
                    faults = cluster.faults.take(verb, resource_name, namespace, name)
                    delay = sum(fault.delay_seconds for fault in faults)
                    if delay:
                        await asyncio.sleep(delay)
                    for fault in faults:
                        error = fault.error(verb, resource_name, namespace, name)
                        if error is not None:
                            raise error
                    result = await handler(request, namespace, name)
                except KubeApiError as error:
                    return JSONResponse(error.to_status(), status_code=error.code)
                if isinstance(result, Response):
                    return result
                status_code = 201 if verb == "create" else 200
                return JSONResponse(result, status_code=status_code)

            return run

        return wrap

    def list_handler(resource: ResourceType) -> Handler:
        @endpoint("list", resource)
        async def handler(request: Request, namespace: str, _name: str) -> Any:
            if _query_bool(request, "watch"):
                return watch_response(cluster, resource, namespace or None, request)
            found = cluster.list(
                resource,
                namespace or None,
                label_selector_text=request.query_params.get("labelSelector"),
                field_selector_text=request.query_params.get("fieldSelector"),
            )
            if wants_table(request.headers.get("accept", "")):
                items = [{**item, "kind": resource.kind, "apiVersion": resource.api_version} for item in found["items"]]
                return table(
                    resource.kind,
                    items,
                    cluster.now(),
                    resource_version=found["metadata"]["resourceVersion"],
                    include_object=request.query_params.get("includeObject", "PartialObjectMetadata"),
                )
            return found

        return handler

    def get_handler(resource: ResourceType, subresource: str = "") -> Handler:
        @endpoint("get", resource, subresource)
        async def handler(request: Request, namespace: str, name: str) -> Any:
            found = cluster.get(resource, namespace, name)
            if not subresource and wants_table(request.headers.get("accept", "")):
                return table(
                    resource.kind,
                    [found],
                    cluster.now(),
                    resource_version=found["metadata"].get("resourceVersion"),
                    include_object=request.query_params.get("includeObject", "PartialObjectMetadata"),
                )
            return found

        return handler

    @endpoint("create", NAMESPACES)
    async def create_namespace(request: Request, _namespace: str, _name: str) -> Any:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise bad_request("the request body must be a Namespace object")
        return cluster.create_namespace(body, dry_run=_dry_run(request))

    @endpoint("create", DEPLOYMENTS)
    async def create_deployment(request: Request, namespace: str, _name: str) -> Any:
        return cluster.create_deployment(namespace, await _json_body(request), dry_run=_dry_run(request))

    @endpoint("update", DEPLOYMENTS)
    async def replace_deployment(request: Request, namespace: str, name: str) -> Any:
        return cluster.replace_deployment(namespace, name, await _json_body(request), dry_run=_dry_run(request))

    @endpoint("patch", DEPLOYMENTS)
    async def patch_deployment(request: Request, namespace: str, name: str) -> Any:
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type not in PATCH_TYPES:
            raise unsupported_media_type(content_type)
        body = await _json_body(request)
        return cluster.patch_deployment(namespace, name, body, content_type, dry_run=_dry_run(request))

    @endpoint("get", PODS, "log")
    async def pod_log(request: Request, namespace: str, name: str) -> Any:
        text = cluster.pod_logs(namespace, name, _log_options(request))
        return PlainTextResponse(text)

    async def deployment_item(request: Request) -> Response:
        handlers = {"GET": get_deployment, "PUT": replace_deployment, "PATCH": patch_deployment}
        return await handlers[request.method](request)

    get_deployment = get_handler(DEPLOYMENTS)

    async def deployment_collection(request: Request) -> Response:
        return await (create_deployment if request.method == "POST" else list_deployments)(request)

    list_deployments = list_handler(DEPLOYMENTS)

    async def namespace_collection(request: Request) -> Response:
        return await (create_namespace if request.method == "POST" else list_namespaces)(request)

    list_namespaces = list_handler(NAMESPACES)

    def workload_set_routes(resource: ResourceType) -> list[Route]:
        """CRUD (no delete), list and watch for StatefulSets or DaemonSets."""

        @endpoint("create", resource)
        async def create(request: Request, namespace: str, _name: str) -> Any:
            return cluster.create_workload_set(
                resource, namespace, await _json_body(request), dry_run=_dry_run(request)
            )

        @endpoint("update", resource)
        async def replace(request: Request, namespace: str, name: str) -> Any:
            body = await _json_body(request)
            return cluster.replace_workload_set(resource, namespace, name, body, dry_run=_dry_run(request))

        @endpoint("patch", resource)
        async def patch(request: Request, namespace: str, name: str) -> Any:
            content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if content_type not in PATCH_TYPES:
                raise unsupported_media_type(content_type)
            body = await _json_body(request)
            return cluster.patch_workload_set(resource, namespace, name, body, content_type, dry_run=_dry_run(request))

        listing, getting = list_handler(resource), get_handler(resource)

        async def collection(request: Request) -> Response:
            return await (create if request.method == "POST" else listing)(request)

        async def one(request: Request) -> Response:
            return await {"GET": getting, "PUT": replace, "PATCH": patch}[request.method](request)

        base = f"/apis/apps/v1/namespaces/{{namespace}}/{resource.plural}"
        return [
            Route(f"/apis/apps/v1/{resource.plural}", listing),
            Route(base, collection, methods=["GET", "POST"]),
            Route(f"{base}/{{name}}", one, methods=["GET", "PUT", "PATCH"]),
            Route(f"{base}/{{name}}/status", get_handler(resource, "status")),
        ]

    def document(body: dict[str, Any]) -> Handler:
        async def handler(_request: Request) -> Response:
            return JSONResponse(body)

        return handler

    async def api_versions(request: Request) -> Response:
        server = f"{request.url.hostname}:{request.url.port}"
        return JSONResponse(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
            }
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        error = method_not_allowed(request.method) if code == 405 else path_not_found()
        return JSONResponse(error.to_status(), status_code=error.code)

    core = "/api/v1"
    apps = "/apis/apps/v1"
    events_v1 = "/apis/events.k8s.io/v1"
    item = "/namespaces/{namespace}"
    routes = [
        Route("/version", document(EMULATED_VERSION)),
        Route("/api", api_versions),
        Route(
            core,
            document(
                {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": _CORE_RESOURCES}
            ),
        ),
        Route("/apis", document({"kind": "APIGroupList", "apiVersion": "v1", "groups": [_APPS_GROUP, _EVENTS_GROUP]})),
        Route("/apis/events.k8s.io", document({"kind": "APIGroup", "apiVersion": "v1", **_EVENTS_GROUP})),
        Route(
            events_v1,
            document(
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": "events.k8s.io/v1",
                    "resources": _EVENTS_RESOURCES,
                }
            ),
        ),
        Route("/apis/apps", document({"kind": "APIGroup", "apiVersion": "v1", **_APPS_GROUP})),
        Route(
            apps,
            document(
                {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": _APPS_RESOURCES}
            ),
        ),
        Route(f"{core}/namespaces", namespace_collection, methods=["GET", "POST"]),
        Route(f"{core}/namespaces/{{name}}", get_handler(NAMESPACES)),
        Route(f"{core}/pods", list_handler(PODS)),
        Route(f"{core}{item}/pods", list_handler(PODS)),
        Route(f"{core}{item}/pods/{{name}}", get_handler(PODS)),
        Route(f"{core}{item}/pods/{{name}}/log", pod_log),
        Route(f"{core}/events", list_handler(EVENTS)),
        Route(f"{core}{item}/events", list_handler(EVENTS)),
        Route(f"{core}{item}/events/{{name}}", get_handler(EVENTS)),
        Route(f"{events_v1}/events", list_handler(EVENTS_V1)),
        Route(f"{events_v1}{item}/events", list_handler(EVENTS_V1)),
        Route(f"{events_v1}{item}/events/{{name}}", get_handler(EVENTS_V1)),
        Route(f"{apps}/deployments", list_deployments),
        Route(f"{apps}{item}/deployments", deployment_collection, methods=["GET", "POST"]),
        Route(f"{apps}{item}/deployments/{{name}}", deployment_item, methods=["GET", "PUT", "PATCH"]),
        Route(f"{apps}{item}/deployments/{{name}}/status", get_handler(DEPLOYMENTS, "status")),
        Route(f"{apps}/replicasets", list_handler(REPLICASETS)),
        Route(f"{apps}{item}/replicasets", list_handler(REPLICASETS)),
        Route(f"{apps}{item}/replicasets/{{name}}", get_handler(REPLICASETS)),
        *workload_set_routes(STATEFULSETS),
        *workload_set_routes(DAEMONSETS),
        Route(f"{apps}/controllerrevisions", list_handler(CONTROLLERREVISIONS)),
        Route(f"{apps}{item}/controllerrevisions", list_handler(CONTROLLERREVISIONS)),
        Route(f"{apps}{item}/controllerrevisions/{{name}}", get_handler(CONTROLLERREVISIONS)),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
