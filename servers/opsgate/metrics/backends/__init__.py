"""Metrics backends: Prometheus (HTTP API), Azure Monitor Metrics, and the embedded sandbox."""
