"""netlab: a Kubernetes network dataplane emulator built from real Linux network namespaces.

`netlab.Lab` and its result classes (netlab/api.py) are loaded when first used, so `import netlab`
and the `netlab` command stay fast."""
__version__ = "0.1.0"

_API = ("Lab", "ExecResult", "ProbeResult", "Pod", "Node", "Service", "ServicePort", "Endpoint")


def __getattr__(name: str):
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'netlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
