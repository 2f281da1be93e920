"""The workloads capability: `workload_status` and `k8s_events` over the Kubernetes API (read only)."""
