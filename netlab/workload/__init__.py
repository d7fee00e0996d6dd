"""Workloads run inside emulated pods (built-in test servers)."""
