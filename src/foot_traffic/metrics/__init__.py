"""Prometheus metrics and the /healthz endpoint."""
