"""Limits and constants of the scenario format, shared by the parser and the kind parsers."""

MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 200_000            # YAML nodes after alias expansion: stops "billion laughs"
MAX_DEPTH = 100                # nesting of YAML collections: deeper input crashes libyaml's composer
MAX_STREAM_NODES = 400_000     # YAML nodes in the whole file as written: composing millions takes ~10 s
MAX_DOCUMENTS = 20_000
MAX_LAB_NAME = 24
# How many nodes and pods a lab may have is not a constant: netlab/spec/capacity.py derives it from what
# the machine holds. MAX_REPLICAS is only the format's bound (Kubernetes' replicas is an int32).
MAX_REPLICAS = 2**31 - 1
CLUSTER_API_VERSIONS = ("netlab.dev/v1alpha1", "kind.x-k8s.io/v1alpha4")
BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
EXPECT_OUTCOMES = ("reachable", "refused", "denied", "timeout", "unreachable", "unreachable-or-timeout")
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"
MAX_PROBLEMS = 20              # problems reported in one run, then "and N more"
