"""Controllers as pure decisions over a store snapshot (see docs/controllers.md).

Every controller is ``decide(snapshot, now) -> [Action]`` and never touches the store or the
kernel; ``runner.Runner`` applies one controller sync per store transaction and runs them until
quiet (``serve()`` in a lab's control-loop process).

  deployment, deployutil   Deployment -> ReplicaSets (RollingUpdate, Recreate, revisions, status)
  replicaset               ReplicaSet -> Pods (creation, deletion ranking, status)
  statefulset              StatefulSet -> Pods <name>-<ordinal> (ordered, reverse-order updates, revisions)
  scheduler                Pod -> Node binding (taints, nodeSelector, spreading)
  endpointslice            Service + Pods -> EndpointSlices (ready/serving/terminating)
  nodelifecycle            Node health from leases, taints, taint-based eviction, cordon
  gc                       cascading deletion by ownerReferences, pods of deleted Nodes
  kubelet                  the kubelet's decisions (probes, back-off, statuses, termination timing)
  simkubelet               a simulated kubelet for tests and dry runs
  validation, verbs        one-line validation errors, API defaults, kubectl's client-side verbs
  printers                 kubectl's tables
"""
