"""A loopback emulation of the Kubernetes API (`core/v1`, `apps/v1`) for tests and the sandbox.

Not a real API server: it emulates the Deployments/ReplicaSets/Pods/Events/pod-logs surface opsgate
uses, with a deployment-controller emulation, fault injection and pod-log hooks. See `kube_api`.
"""
