"""The probe kinds, one module per way of probing; PROBE_CLASSES says which class runs each kind.
A new kind is a class here and a name in netlab.probe.spec.KINDS."""
from __future__ import annotations

from ..spec import KINDS
from .base import Probe, Retry
from .http import HttpProbe
from .raw import RawProbe
from .udp_app import UdpAppProbe

PROBE_CLASSES = {"icmp": RawProbe, "tcp": RawProbe, "udp": RawProbe,
                  "http": HttpProbe, "udp-app": UdpAppProbe}

assert set(PROBE_CLASSES) == set(KINDS), "every probe kind needs a class"

__all__ = ["PROBE_CLASSES", "HttpProbe", "Probe", "RawProbe", "Retry", "UdpAppProbe"]
