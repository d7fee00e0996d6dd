"""netlab: a Kubernetes network dataplane emulator built from real Linux network namespaces."""
__version__ = "0.1.0"
