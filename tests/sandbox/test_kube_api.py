"""The loopback emulation of the Kubernetes API, driven with the real `kubernetes` client.

Tests that take only `kube_client`/`kube_namespace` also run against a real cluster when
`OPSGATE_TEST_KUBECONFIG` is set (see tests/support/kube.py); the others need the emulation's hooks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes.client
import kubernetes.config
import kubernetes_validate
import pytest
import urllib3
from kubernetes.client import AppsV1Api, CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from opsgate.sandbox.kube_api import (
    CHANGE_CAUSE_ANNOTATION,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DeploymentSeed,
    KubeApiServer,
    LogLine,
    PodRef,
    deployment_manifest,
    seed_namespace_via_api,
)

K8S_VERSION = "1.37"
_SCHEMA_DIR = f"kubernetes-json-schema/v{K8S_VERSION}.0-local-strict"
_META_SCHEMAS = {
    "Status": "status",
    "APIResourceList": "apiresourcelist",
    "APIGroupList": "apigrouplist",
    "APIVersions": "apiversions",
    "APIGroup": "apigroup",
}


def validate_served(obj: dict[str, Any]) -> None:
    """Validate against the official OpenAPI schemas (strict: no unknown fields)."""
    if obj.get("kind") in _META_SCHEMAS:
        # kubernetes_validate looks schemas up by apiVersion; meta/v1 kinds say "v1", so load directly
        schema = schema_contents(f"{_SCHEMA_DIR}/{_META_SCHEMAS[obj['kind']]}-meta-v1.json", K8S_VERSION)
        definitions = schema_contents(f"{_SCHEMA_DIR}/_definitions.json", K8S_VERSION)
        registry: Registry[Any] = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
        jsonschema.validators.Draft202012Validator(schema, registry=registry).validate(obj)
        return
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def raw(call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The JSON body the server sent for a client call, bypassing model deserialization."""
    response = call(*args, _preload_content=False, **kwargs)
    body: dict[str, Any] = json.loads(response.data)
    return body


def get_text(client: kubernetes.client.ApiClient, path: str, **query: str) -> str:
    """GET through the client's own transport; for query parameters its generated API lacks (the
    pod-log `sinceTime` is not in the OpenAPI spec, so `read_namespaced_pod_log` has no `since_time`)."""
    method, url, headers, body, post = client.param_serialize("GET", path, query_params=list(query.items()))
    response = client.call_api(method, url, headers, body, post)
    response.read()  # type: ignore[no-untyped-call]  # the client's RESTResponse.read is unannotated
    assert response.status == 200 and response.data is not None, response.data
    return response.data.decode()


def status_body(error: ApiException) -> dict[str, Any]:
    assert error.body, "the error response has no body"
    body: dict[str, Any] = json.loads(error.body)
    return body


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def progressing_reason(apps: AppsV1Api, namespace: str, name: str) -> str | None:
    deployment = apps.read_namespaced_deployment_status(name, namespace)
    assert deployment.status is not None
    for condition in deployment.status.conditions or []:
        if condition.type == "Progressing":
            return condition.reason
    return None


def rollout_complete(apps: AppsV1Api, namespace: str, name: str) -> bool:
    deployment = apps.read_namespaced_deployment(name, namespace)
    status, spec = deployment.status, deployment.spec
    assert status is not None and spec is not None and deployment.metadata is not None
    return (
        status.observed_generation == deployment.metadata.generation
        and status.updated_replicas == spec.replicas == status.available_replicas == status.replicas
        and progressing_reason(apps, namespace, name) == "NewReplicaSetAvailable"
    )


def replica_sets_by_revision(apps: AppsV1Api, namespace: str, app: str) -> dict[int, kubernetes.client.V1ReplicaSet]:
    items = apps.list_namespaced_replica_set(namespace, label_selector=f"app={app}").items
    return {int((rs.metadata.annotations or {})[REVISION_ANNOTATION]): rs for rs in items if rs.metadata}


def image_of(deployment: kubernetes.client.V1Deployment) -> str:
    assert deployment.spec is not None and deployment.spec.template.spec is not None
    return str(deployment.spec.template.spec.containers[0].image)


# --- reads and schema conformance ---------------------------------------------------------------


def test_seeded_history_is_listed_and_served_objects_match_the_openapi_schemas(
    kube_api: KubeApiServer, kube_client: kubernetes.client.ApiClient, kube_namespace: str
) -> None:
    apps, core = AppsV1Api(kube_client), CoreV1Api(kube_client)
    deployments = apps.list_namespaced_deployment(kube_namespace)
    assert sorted(str(d.metadata.name) for d in deployments.items if d.metadata) == ["checkout", "payments"]
    checkout = apps.read_namespaced_deployment("checkout", kube_namespace)
    assert checkout.metadata is not None and checkout.metadata.annotations is not None
    assert checkout.metadata.annotations[REVISION_ANNOTATION] == "7"
    assert image_of(checkout) == "registry.example.com/shop/checkout:v7"
    history = replica_sets_by_revision(apps, kube_namespace, "checkout")
    assert sorted(history) == list(range(1, 8))
    assert [rs.spec.replicas for _, rs in sorted(history.items()) if rs.spec] == [0, 0, 0, 0, 0, 0, 3]
    created = [
        rs.metadata.creation_timestamp
        for _, rs in sorted(history.items())
        if rs.metadata and rs.metadata.creation_timestamp
    ]
    assert len(created) == 7 and created == sorted(created) and created[-1] - created[0] > timedelta(hours=4)
    newest = history[7]
    assert newest.metadata is not None and newest.metadata.owner_references is not None
    assert newest.metadata.owner_references[0].uid == checkout.metadata.uid
    template_hash = (newest.metadata.labels or {})["pod-template-hash"]
    assert newest.metadata.name == f"checkout-{template_hash}"
    pods = core.list_namespaced_pod(kube_namespace, label_selector=f"pod-template-hash={template_hash}").items
    assert len(pods) == 3
    assert all(
        p.metadata
        and p.metadata.name
        and p.metadata.name.startswith(f"{newest.metadata.name}-")
        and len(p.metadata.name) == len(newest.metadata.name) + 6
        for p in pods
    )

    pod_name = str(pods[0].metadata.name if pods[0].metadata else "")
    served = [
        raw(apps.list_namespaced_deployment, kube_namespace),
        raw(apps.list_deployment_for_all_namespaces, label_selector="app=checkout"),
        raw(apps.read_namespaced_deployment, "checkout", kube_namespace),
        raw(apps.read_namespaced_deployment_status, "checkout", kube_namespace),
        raw(apps.list_namespaced_replica_set, kube_namespace, label_selector="app=checkout"),
        raw(apps.read_namespaced_replica_set, str(newest.metadata.name), kube_namespace),
        raw(core.list_namespaced_pod, kube_namespace),
        raw(core.read_namespaced_pod, pod_name, kube_namespace),
        raw(core.list_namespaced_event, kube_namespace, field_selector="involvedObject.name=checkout"),
        raw(core.read_namespace, kube_namespace),
        raw(kubernetes.client.ApisApi(kube_client).get_api_versions),
        raw(kubernetes.client.AppsV1Api(kube_client).get_api_resources),
        raw(kubernetes.client.CoreApi(kube_client).get_api_versions),
        raw(kubernetes.client.CoreV1Api(kube_client).get_api_resources),
    ]
    for obj in served:
        validate_served(obj)
    deployment_list = served[0]
    assert deployment_list["kind"] == "DeploymentList" and deployment_list["metadata"]["resourceVersion"]
    assert served[1]["items"][0]["metadata"]["name"] == "checkout"
    version = kubernetes.client.VersionApi(kube_client).get_code()
    assert version.major == "1"
    info_schema = schema_contents(f"{_SCHEMA_DIR}/info-pkg-version.json", K8S_VERSION)
    jsonschema.validators.Draft202012Validator(info_schema).validate(
        raw(kubernetes.client.VersionApi(kube_client).get_code)
    )


def test_events_filter_by_involved_object(kube_client: kubernetes.client.ApiClient, kube_namespace: str) -> None:
    events = (
        CoreV1Api(kube_client)
        .list_namespaced_event(
            kube_namespace, field_selector="involvedObject.name=checkout,involvedObject.kind=Deployment"
        )
        .items
    )
    assert events, "the deployment controller recorded no events for checkout"
    assert {e.involved_object.name for e in events} == {"checkout"}
    assert all(e.reason == "ScalingReplicaSet" for e in events)


# --- writes -------------------------------------------------------------------------------------


def test_dry_run_patch_returns_the_result_and_persists_nothing(
    kube_client: kubernetes.client.ApiClient, kube_namespace: str
) -> None:
    apps = AppsV1Api(kube_client)
    before = apps.read_namespaced_deployment("checkout", kube_namespace)
    replica_sets_before = len(replica_sets_by_revision(apps, kube_namespace, "checkout"))
    v8 = {"name": "checkout", "image": "registry.example.com/shop/checkout:v8"}
    patch = {"spec": {"template": {"spec": {"containers": [v8]}}}}

    result = apps.patch_namespaced_deployment("checkout", kube_namespace, patch, dry_run="All")
    validate_served(raw(apps.patch_namespaced_deployment, "checkout", kube_namespace, patch, dry_run="All"))

    assert image_of(result) == "registry.example.com/shop/checkout:v8"
    assert result.metadata and before.metadata and before.metadata.generation is not None
    assert result.metadata.generation == before.metadata.generation + 1
    after = apps.read_namespaced_deployment("checkout", kube_namespace)
    assert image_of(after) == image_of(before)
    assert after.metadata and after.metadata.resource_version == before.metadata.resource_version
    assert after.metadata.generation == before.metadata.generation
    assert len(replica_sets_by_revision(apps, kube_namespace, "checkout")) == replica_sets_before


def test_template_change_creates_a_revision_and_rolls_out(kube_api: KubeApiServer, kube_namespace: str) -> None:
    apps, core = AppsV1Api(kube_api.api_client()), CoreV1Api(kube_api.api_client())
    image = "registry.example.com/shop/checkout:v8"
    patch = {
        "metadata": {"annotations": {CHANGE_CAUSE_ANNOTATION: "release v8 of checkout"}},
        "spec": {"template": {"spec": {"containers": [{"name": "checkout", "image": image}]}}},
    }
    written = apps.patch_namespaced_deployment("checkout", kube_namespace, patch)
    assert written.metadata is not None and written.metadata.generation == 8

    history = replica_sets_by_revision(apps, kube_namespace, "checkout")
    assert sorted(history) == list(range(1, 9))
    newest = history[8]
    assert newest.metadata is not None and newest.spec is not None and newest.spec.template is not None
    assert newest.spec.template.spec is not None and newest.spec.template.spec.containers[0].image == image
    ports = newest.spec.template.spec.containers[0].ports or []
    assert [port.container_port for port in ports] == [8080], "strategic merge lost the container's ports"
    assert (newest.metadata.annotations or {})[CHANGE_CAUSE_ANNOTATION] == "release v8 of checkout"
    wait_for(lambda: rollout_complete(apps, kube_namespace, "checkout"), what="the v8 rollout")
    deployment = apps.read_namespaced_deployment("checkout", kube_namespace)
    assert deployment.metadata and (deployment.metadata.annotations or {})[REVISION_ANNOTATION] == "8"
    history = replica_sets_by_revision(apps, kube_namespace, "checkout")
    assert {revision: rs.spec.replicas for revision, rs in history.items() if rs.spec}[7] == 0
    pods = core.list_namespaced_pod(kube_namespace, label_selector="app=checkout").items
    assert len(pods) == 3 and all(
        p.metadata and str(p.metadata.name).startswith(str(newest.metadata.name)) for p in pods
    )


def test_rollback_by_template_reuses_the_old_replica_set_and_bumps_its_revision(
    kube_api: KubeApiServer, kube_namespace: str
) -> None:
    apps = AppsV1Api(kube_api.api_client())
    target = replica_sets_by_revision(apps, kube_namespace, "checkout")[6]
    assert target.metadata is not None and target.spec is not None
    template = raw(apps.read_namespaced_replica_set, str(target.metadata.name), kube_namespace)["spec"]["template"]
    template["metadata"]["labels"].pop("pod-template-hash")
    annotations = {CHANGE_CAUSE_ANNOTATION: (target.metadata.annotations or {})[CHANGE_CAUSE_ANNOTATION]}
    # what `kubectl rollout undo --to-revision=6` sends: a JSON patch replacing template and annotations
    undo = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
    apps.patch_namespaced_deployment("checkout", kube_namespace, undo)

    history = replica_sets_by_revision(apps, kube_namespace, "checkout")
    assert sorted(history) == [1, 2, 3, 4, 5, 7, 8], "the rollback created a ReplicaSet instead of re-using one"
    reused = history[8]
    assert reused.metadata is not None and reused.metadata.uid == target.metadata.uid
    assert (reused.metadata.annotations or {})[REVISION_HISTORY_ANNOTATION] == "6"
    assert (reused.metadata.annotations or {})[CHANGE_CAUSE_ANNOTATION] == "release v6 of checkout"
    deployment = apps.read_namespaced_deployment("checkout", kube_namespace)
    assert deployment.metadata and (deployment.metadata.annotations or {})[REVISION_ANNOTATION] == "8"
    assert image_of(deployment) == "registry.example.com/shop/checkout:v6"
    wait_for(lambda: rollout_complete(apps, kube_namespace, "checkout"), what="the rollback to v6")
    final = replica_sets_by_revision(apps, kube_namespace, "checkout")
    assert final[8].spec and final[8].spec.replicas == 3 and final[7].spec and final[7].spec.replicas == 0


def test_paused_deployment_holds_template_changes_until_resumed(kube_api: KubeApiServer, kube_namespace: str) -> None:
    apps = AppsV1Api(kube_api.api_client())
    apps.patch_namespaced_deployment("payments", kube_namespace, {"spec": {"paused": True}})
    v4 = {"name": "payments", "image": "registry.example.com/shop/payments:v4"}
    apps.patch_namespaced_deployment("payments", kube_namespace, {"spec": {"template": {"spec": {"containers": [v4]}}}})
    time.sleep(0.1)  # several controller ticks
    assert sorted(replica_sets_by_revision(apps, kube_namespace, "payments")) == [1, 2, 3]
    assert progressing_reason(apps, kube_namespace, "payments") == "DeploymentPaused"

    apps.patch_namespaced_deployment("payments", kube_namespace, {"spec": {"paused": False}})
    assert sorted(replica_sets_by_revision(apps, kube_namespace, "payments")) == [1, 2, 3, 4]
    wait_for(lambda: rollout_complete(apps, kube_namespace, "payments"), what="the resumed rollout")


def test_merge_patch_and_replace_with_optimistic_concurrency(
    kube_client: kubernetes.client.ApiClient, kube_namespace: str
) -> None:
    apps = AppsV1Api(kube_client)
    patched = apps.patch_namespaced_deployment(
        "payments",
        kube_namespace,
        {"metadata": {"annotations": {"team": "payments"}}},
        _content_type="application/merge-patch+json",
    )
    assert patched.metadata and (patched.metadata.annotations or {})["team"] == "payments"
    stale = apps.read_namespaced_deployment("payments", kube_namespace)
    assert stale.metadata is not None
    apps.patch_namespaced_deployment("payments", kube_namespace, {"metadata": {"labels": {"tier": "backend"}}})

    with pytest.raises(ApiException) as conflict:
        apps.replace_namespaced_deployment("payments", kube_namespace, stale)
    assert conflict.value.status == 409
    body = status_body(conflict.value)
    validate_served(body)
    assert body["reason"] == "Conflict" and body["code"] == 409 and "payments" in body["message"]

    fresh = apps.read_namespaced_deployment("payments", kube_namespace)
    assert fresh.metadata is not None
    fresh.metadata.annotations = {**(fresh.metadata.annotations or {}), "owner": "sre"}
    replaced = apps.replace_namespaced_deployment("payments", kube_namespace, fresh)
    assert replaced.metadata and (replaced.metadata.annotations or {})["owner"] == "sre"
    assert replaced.metadata.generation == fresh.metadata.generation  # metadata-only change


def test_create_through_the_api_and_seeding_via_the_api(kube_api: KubeApiServer) -> None:
    client = kube_api.api_client()
    apps = AppsV1Api(client)
    seed_namespace_via_api(client, "staging", [DeploymentSeed("cart", revisions=3, replicas=2)], timeout=10)

    history = replica_sets_by_revision(apps, "staging", "cart")
    assert sorted(history) == [1, 2, 3]
    assert all(
        (rs.metadata.annotations or {})[CHANGE_CAUSE_ANNOTATION] == f"release v{revision} of cart"
        for revision, rs in history.items()
        if rs.metadata
    )
    wait_for(lambda: rollout_complete(apps, "staging", "cart"), what="the seeded cart rollout")

    def cart(namespace: str) -> kubernetes.client.V1Deployment:
        model = kubernetes.client.V1Deployment.from_dict(deployment_manifest(DeploymentSeed("cart"), namespace, 1))
        assert model is not None
        return model

    with pytest.raises(ApiException) as exists:
        apps.create_namespaced_deployment("staging", cart("staging"))
    assert exists.value.status == 409 and status_body(exists.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as no_namespace:
        apps.create_namespaced_deployment("nowhere", cart("nowhere"))
    assert no_namespace.value.status == 404


# --- errors and faults --------------------------------------------------------------------------


def test_missing_objects_are_404_in_the_status_shape(
    kube_client: kubernetes.client.ApiClient, kube_namespace: str
) -> None:
    with pytest.raises(ApiException) as missing:
        AppsV1Api(kube_client).read_namespaced_deployment("nope", kube_namespace)
    assert missing.value.status == 404
    body = status_body(missing.value)
    validate_served(body)
    assert body["reason"] == "NotFound" and body["message"] == 'deployments.apps "nope" not found'
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


def test_invalid_update_is_422_naming_the_field(kube_client: kubernetes.client.ApiClient, kube_namespace: str) -> None:
    apps = AppsV1Api(kube_client)
    before = apps.read_namespaced_deployment("checkout", kube_namespace)
    with pytest.raises(ApiException) as invalid:
        apps.patch_namespaced_deployment(
            "checkout", kube_namespace, [{"op": "replace", "path": "/spec/replicas", "value": -1}]
        )
    assert invalid.value.status == 422
    body = status_body(invalid.value)
    validate_served(body)
    assert body["reason"] == "Invalid"
    assert [cause["field"] for cause in body["details"]["causes"]] == ["spec.replicas"]
    after = apps.read_namespaced_deployment("checkout", kube_namespace)
    assert after.metadata and before.metadata and after.metadata.resource_version == before.metadata.resource_version


def test_injected_faults_forbidden_conflict_and_timeout(kube_api: KubeApiServer, kube_namespace: str) -> None:
    apps = AppsV1Api(kube_api.api_client())
    kube_api.cluster.faults.forbid("patch", "deployments", namespace=kube_namespace)
    with pytest.raises(ApiException) as denied:
        apps.patch_namespaced_deployment("checkout", kube_namespace, {"metadata": {"labels": {"x": "y"}}})
    assert denied.value.status == 403
    body = status_body(denied.value)
    validate_served(body)
    assert body["reason"] == "Forbidden"
    assert 'cannot patch resource "deployments" in API group "apps"' in body["message"]
    apps.read_namespaced_deployment("checkout", kube_namespace)  # reads are still allowed

    kube_api.cluster.faults.clear()
    kube_api.cluster.faults.conflict("update", "deployments", name="checkout")
    current = apps.read_namespaced_deployment("checkout", kube_namespace)
    with pytest.raises(ApiException) as conflicted:
        apps.replace_namespaced_deployment("checkout", kube_namespace, current)
    assert conflicted.value.status == 409 and status_body(conflicted.value)["reason"] == "Conflict"
    apps.replace_namespaced_deployment("checkout", kube_namespace, current)  # fires once by default

    kube_api.cluster.faults.delay(0.6, "get", "deployments", times=1)
    configuration = kube_api.client_configuration()
    configuration.retries = False
    slow_apps = AppsV1Api(kubernetes.client.ApiClient(configuration))
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        slow_apps.read_namespaced_deployment("checkout", kube_namespace, _request_timeout=0.2)


def test_bad_revision_never_becomes_available_and_exceeds_its_progress_deadline(
    kube_api: KubeApiServer, kube_namespace: str
) -> None:
    apps, core = AppsV1Api(kube_api.api_client()), CoreV1Api(kube_api.api_client())
    bad_image = "registry.example.com/shop/checkout:v8"
    kube_api.cluster.faults.mark_image_bad(bad_image)
    apps.patch_namespaced_deployment(
        "checkout",
        kube_namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "checkout", "image": bad_image}]}}}},
    )
    wait_for(
        lambda: progressing_reason(apps, kube_namespace, "checkout") == "ProgressDeadlineExceeded",
        what="ProgressDeadlineExceeded",
    )
    deployment = apps.read_namespaced_deployment("checkout", kube_namespace)
    status = deployment.status
    assert status is not None
    assert status.updated_replicas == 1 and status.available_replicas == 3 and status.unavailable_replicas == 1
    new_rs = replica_sets_by_revision(apps, kube_namespace, "checkout")[8]
    assert new_rs.status is not None and not new_rs.status.ready_replicas
    template_hash = (new_rs.metadata.labels or {})["pod-template-hash"] if new_rs.metadata else ""
    pods = core.list_namespaced_pod(kube_namespace, label_selector=f"pod-template-hash={template_hash}").items
    assert len(pods) == 1
    assert pods[0].status and pods[0].status.container_statuses
    waiting = pods[0].status.container_statuses[0].state.waiting if pods[0].status.container_statuses[0].state else None
    assert waiting is not None and waiting.reason == "CrashLoopBackOff"
    validate_served(
        raw(core.read_namespaced_pod, str(pods[0].metadata.name if pods[0].metadata else ""), kube_namespace)
    )
    validate_served(raw(apps.read_namespaced_deployment, "checkout", kube_namespace))
    warnings = core.list_namespaced_event(kube_namespace, field_selector="type=Warning,reason=BackOff").items
    assert warnings and warnings[0].involved_object.kind == "Pod"


# --- pod logs -----------------------------------------------------------------------------------


def test_pod_logs_honour_since_time_tail_lines_timestamps_and_limit_bytes(
    kube_api: KubeApiServer, kube_namespace: str
) -> None:
    core = CoreV1Api(kube_api.api_client())
    pod = core.list_namespaced_pod(kube_namespace, label_selector="app=checkout").items[0]
    assert pod.metadata is not None
    name = str(pod.metadata.name)
    start = datetime(2026, 11, 23, 4, 0, 0, 123456, tzinfo=UTC)
    kube_api.cluster.logs.put(
        kube_namespace, name, [LogLine(start + timedelta(minutes=i), f"line {i}") for i in range(10)]
    )

    assert core.read_namespaced_pod_log(name, kube_namespace).splitlines() == [f"line {i}" for i in range(10)]
    since = (start + timedelta(minutes=7)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    log_path = f"/api/v1/namespaces/{kube_namespace}/pods/{name}/log"
    assert get_text(kube_api.api_client(), log_path, sinceTime=since).splitlines() == ["line 7", "line 8", "line 9"]
    tail = core.read_namespaced_pod_log(name, kube_namespace, tail_lines=2, timestamps=True, container="checkout")
    assert tail.splitlines() == ["2026-11-23T04:08:00.123456Z line 8", "2026-11-23T04:09:00.123456Z line 9"]
    assert core.read_namespaced_pod_log(name, kube_namespace, limit_bytes=13) == "line 0\nline 1"

    with pytest.raises(ApiException) as wrong_container:
        core.read_namespaced_pod_log(name, kube_namespace, container="sidecar")
    assert wrong_container.value.status == 400


def test_pod_log_provider_sees_the_pod_and_since_seconds_filters(kube_api: KubeApiServer, kube_namespace: str) -> None:
    core = CoreV1Api(kube_api.api_client())
    seen: list[PodRef] = []

    def provider(ref: PodRef) -> list[LogLine]:
        seen.append(ref)
        now = datetime.now(UTC)
        return [LogLine(now - timedelta(minutes=5), "old"), LogLine(now - timedelta(seconds=2), f"hello {ref.image}")]

    kube_api.cluster.logs.set_provider(provider)
    pod = core.list_namespaced_pod(kube_namespace, label_selector="app=payments").items[0]
    assert pod.metadata is not None
    text = core.read_namespaced_pod_log(str(pod.metadata.name), kube_namespace, since_seconds=60)
    assert text == "hello registry.example.com/shop/payments:v3\n"
    assert seen[0].container == "payments" and seen[0].labels["app"] == "payments"


def test_strategic_merge_adds_and_deletes_containers_by_name(kube_api: KubeApiServer, kube_namespace: str) -> None:
    apps, core = AppsV1Api(kube_api.api_client()), CoreV1Api(kube_api.api_client())
    sidecar = {"name": "proxy", "image": "registry.example.com/mesh/proxy:1.2"}
    apps.patch_namespaced_deployment(
        "payments", kube_namespace, {"spec": {"template": {"spec": {"containers": [sidecar]}}}}
    )
    deployment = apps.read_namespaced_deployment("payments", kube_namespace)
    assert deployment.spec and deployment.spec.template and deployment.spec.template.spec
    assert [c.name for c in deployment.spec.template.spec.containers] == ["payments", "proxy"]
    wait_for(lambda: rollout_complete(apps, kube_namespace, "payments"), what="the sidecar rollout")
    pod = core.list_namespaced_pod(kube_namespace, label_selector="app=payments").items[0]
    with pytest.raises(ApiException) as ambiguous:
        core.read_namespaced_pod_log(str(pod.metadata.name if pod.metadata else ""), kube_namespace)
    assert ambiguous.value.status == 400
    assert "choose one of: [payments proxy]" in status_body(ambiguous.value)["message"]

    delete = {"spec": {"template": {"spec": {"containers": [{"name": "proxy", "$patch": "delete"}]}}}}
    apps.patch_namespaced_deployment("payments", kube_namespace, delete)
    deployment = apps.read_namespaced_deployment("payments", kube_namespace)
    assert deployment.spec and deployment.spec.template and deployment.spec.template.spec
    assert [c.name for c in deployment.spec.template.spec.containers] == ["payments"]
    # the template equals revision 3's again, so that ReplicaSet is re-used as revision 5
    assert sorted(replica_sets_by_revision(apps, kube_namespace, "payments")) == [1, 2, 4, 5]


def test_written_kubeconfig_loads_with_the_official_loader(kube_kubeconfig: Path, kube_namespace: str) -> None:
    client = kubernetes.config.new_client_from_config(config_file=str(kube_kubeconfig))  # type: ignore[no-untyped-call]
    names = [d.metadata.name for d in AppsV1Api(client).list_namespaced_deployment(kube_namespace).items if d.metadata]
    assert "checkout" in names


# --- pod behaviours, events.k8s.io, watches -------------------------------------------------------


def _one_per_kind_and_reason(items: list[dict[str, Any]], ref: str) -> list[dict[str, Any]]:
    chosen: dict[tuple[str, str, str, bool], dict[str, Any]] = {}
    for item in items:
        key = (item[ref]["kind"], item["reason"], item["type"], "series" in item or int(item.get("count") or 1) > 1)
        chosen.setdefault(key, item)
    return list(chosen.values())


def test_pod_behaviours_give_the_statuses_and_events_a_kubelet_would(
    kube_api: KubeApiServer, kube_namespace: str
) -> None:
    """OOMKilled restarts, an image that does not pull, a config error and flapping readiness: every
    pod and event validates against the official schemas and the kubernetes client reads them."""
    from opsgate.sandbox.kube.kubelet import PodBehavior

    cluster = kube_api.cluster
    cluster.behaviors.add(
        PodBehavior(image="registry.example.com/shop/payments:v3", exits="OOMKilled", run_seconds=120)
    )
    cluster.behaviors.add(
        PodBehavior(image="registry.example.com/shop/checkout:v7", waiting="CreateContainerConfigError", share=0.5)
    )
    cluster.tick()
    core = CoreV1Api(kube_api.api_client())
    payments = core.list_namespaced_pod(kube_namespace, label_selector="app=payments").items
    for pod in payments:
        status = pod.status.container_statuses[0]
        assert status.restart_count > 0
        assert status.last_state.terminated.reason == "OOMKilled" and status.last_state.terminated.exit_code == 137
    checkout = core.list_namespaced_pod(kube_namespace, label_selector="app=checkout").items
    reasons = {
        (p.status.container_statuses[0].state.waiting.reason if p.status.container_statuses[0].state.waiting else None)
        for p in checkout
    }
    assert "CreateContainerConfigError" in reasons and None in reasons, "share=0.5 must split the pods"
    for pod in payments + checkout:
        assert pod.metadata is not None
        validate_served(raw(core.read_namespaced_pod, pod.metadata.name, kube_namespace))
    listed = raw(core.list_namespaced_event, kube_namespace)
    for item in _one_per_kind_and_reason(listed["items"], "involvedObject"):  # validation is slow: one of each
        validate_served({**item, "apiVersion": "v1", "kind": "Event"})
    back_offs = [e for e in listed["items"] if e["reason"] == "BackOff" and e["involvedObject"]["kind"] == "Pod"]
    assert back_offs and all(e["count"] >= 1 and e["firstTimestamp"] <= e["lastTimestamp"] for e in back_offs)
    events_api = kubernetes.client.EventsV1Api(kube_api.api_client())
    new_style = raw(events_api.list_namespaced_event, kube_namespace)
    assert new_style["kind"] == "EventList" and new_style["apiVersion"] == "events.k8s.io/v1"
    for item in _one_per_kind_and_reason(new_style["items"], "regarding"):
        validate_served({**item, "apiVersion": "events.k8s.io/v1", "kind": "Event"})
    typed = events_api.list_namespaced_event(kube_namespace, field_selector="regarding.kind=Pod,type=Warning").items
    assert typed and all(e.regarding.kind == "Pod" and e.type == "Warning" for e in typed)


def test_a_watch_streams_typed_changes_from_a_resource_version(kube_api: KubeApiServer, kube_namespace: str) -> None:
    import kubernetes.watch

    apps = AppsV1Api(kube_api.api_client())
    listed = apps.list_namespaced_deployment(kube_namespace, field_selector="metadata.name=payments")
    assert listed.metadata is not None
    apps.patch_namespaced_deployment(
        "payments", kube_namespace, {"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}}
    )
    seen: list[tuple[str, str]] = []
    watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
    for event in watch.stream(
        apps.list_namespaced_deployment,
        kube_namespace,
        field_selector="metadata.name=payments",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=10,
    ):
        obj = event["object"]
        seen.append((event["type"], obj.metadata.name))
        reason = next((c.reason for c in obj.status.conditions or [] if c.type == "Progressing"), None)
        if reason == "NewReplicaSetAvailable" and obj.status.observed_generation == obj.metadata.generation:
            watch.stop()  # type: ignore[no-untyped-call]
    assert seen and {kind for kind, _ in seen} == {"MODIFIED"} and {name for _, name in seen} == {"payments"}
