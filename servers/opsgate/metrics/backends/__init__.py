"""Metrics backends: Prometheus (HTTP API; also the sandbox's Prometheus-compatible API) and Azure Monitor Metrics."""
