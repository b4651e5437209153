"""Benchmarks of foot-traffic (``make bench``)."""
