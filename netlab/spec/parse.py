"""Parse and validate a scenario: one YAML stream with a `Cluster` document and Kubernetes manifests.

Everything here is pure: no root, no kernel. Errors are `SpecError`s that name the document and the
field, and say how to fix it.
"""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpecError
from ..workload import goflags
from .fields import IANA_SVC_NAME, Fields, check_name, shown, type_name
from .types import (BACKENDS, IPTABLES_FLAVOURS, IPVS_SCHEDULERS, NFT_CHOICES, PROTOCOLS, PROXY_MODES, ContainerPort,
                    ContainerSpec, DeploymentSpec, ExpectSpec, Networking, NodeSpec, PodSpec, PodTemplate,
                    Scenario, ServicePortSpec, ServiceSpec)

MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 200_000            # YAML nodes after alias expansion: stops "billion laughs"
MAX_DEPTH = 100                # nesting of YAML collections: deeper input crashes libyaml's composer
MAX_STREAM_NODES = 400_000     # YAML nodes in the whole file as written: composing millions takes ~10 s
MAX_DOCUMENTS = 20_000
MAX_LAB_NAME = 24
MAX_CLUSTER_NODES = 64
MAX_PODS = 5000
CLUSTER_API_VERSIONS = ("netlab.dev/v1alpha1", "kind.x-k8s.io/v1alpha4")
BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
KINDS = "Cluster, Namespace, Pod, Deployment, Service (or a List of them)"
EXPECT_OUTCOMES = ("reachable", "refused", "timeout", "unreachable", "unreachable-or-timeout")
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"


def load_file(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise SpecError("", f"cannot read scenario {path}: {e.strerror}", "give the path of a YAML file") from None
    if size > MAX_BYTES:
        raise SpecError(str(path), f"is {size} bytes, more than the {MAX_BYTES} a scenario may have",
                        "split it or remove what netlab does not need")
    if not p.is_file():
        raise SpecError("", f"scenario {path} is not a file", "give the path of a YAML file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError(str(path), "is not UTF-8 text", "save the scenario as UTF-8 YAML") from None
    except OSError as e:
        raise SpecError("", f"cannot read scenario {path}: {e.strerror}", "check the path") from None
    return load_text(text, str(path))


def load_text(text: str, source: str = "<scenario>") -> Scenario:
    if len(text) > MAX_BYTES:
        raise SpecError(source, f"is more than {MAX_BYTES} bytes", "split it")
    docs = _yaml_documents(text, source)
    return parse_documents(docs, source)


def _yaml_documents(text: str, source: str) -> list[Any]:
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_depth(loader_cls(text), source)
        loader = loader_cls(text)
        try:
            nodes = []
            while loader.check_node():
                nodes.append(loader.get_node())
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        raise _yaml_error(e, source) from None
    except (ValueError, RecursionError) as e:
        raise SpecError(source, f"is not valid YAML: {e}", "fix the YAML syntax") from None
    docs = []
    for node in nodes:
        size = _expanded_size(node, {}, 0)
        if size > MAX_NODES:
            raise SpecError(source, f"a document expands to more than {MAX_NODES} YAML nodes (aliases?)",
                            "write the values out instead of nesting aliases")
        try:
            docs.append(yaml.constructor.SafeConstructor.construct_document(_Constructor(), node))
        except yaml.YAMLError as e:
            raise _yaml_error(e, source) from None
        except (ValueError, TypeError, RecursionError, IndexError, AttributeError, KeyError, OverflowError) as e:
            # PyYAML's constructors fail like this on some tagged values (`!!float ''` is an IndexError)
            first = (str(e).splitlines() or [type(e).__name__])[0]
            raise SpecError(source, f"is not valid YAML: {first}", "fix the YAML") from None
    return docs


def _yaml_error(e: yaml.YAMLError, source: str) -> SpecError:
    """The problem and its position, not the context line ("while constructing a mapping")."""
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(e, "problem", None) or (str(e).splitlines() or [type(e).__name__])[0]
    return SpecError(source, f"is not valid YAML{where}: {problem}", "fix the YAML syntax")


def _check_depth(loader: Any, source: str) -> None:
    """Refuse deeply nested collections before composing: the C composer recurses without a limit
    (a few ten thousand '[' overflow the stack and kill the process). Also refuse, while only reading
    events (fast), a stream with too many nodes or documents: composing an 8 MB file of millions of
    tiny nodes would take many seconds before the limits below could say no."""
    try:
        depth = nodes = docs = 0
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > MAX_STREAM_NODES:
                    raise SpecError(source, f"has more than {MAX_STREAM_NODES} YAML nodes",
                                    "a scenario this large is not useful; split it or write less")
            elif isinstance(event, yaml.DocumentStartEvent):
                docs += 1
                if docs > MAX_DOCUMENTS:
                    raise SpecError(source, f"has more than {MAX_DOCUMENTS} YAML documents", "split it")
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise SpecError(source, f"nests collections more than {MAX_DEPTH} levels deep at line "
                                    f"{mark.line + 1}, column {mark.column + 1}", "flatten the YAML")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError as e:
        # libyaml (in PyYAML >= 6.0.4's wheels) has a nesting limit of its own, and its scanner reads
        # far ahead in flow context, so it may stop before the events above reach netlab's limit: the
        # message is netlab's either way.
        problem = str(getattr(e, "problem", None) or e)
        if "nesting" not in problem:
            raise
        mark = getattr(e, "problem_mark", None)
        where = f" (the YAML library stopped at line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(source, f"nests collections more than {MAX_DEPTH} levels deep{where}",
                        "flatten the YAML") from None
    finally:
        loader.dispose()


class _Constructor(yaml.constructor.SafeConstructor):
    pass


def _expanded_size(node: Any, memo: dict[int, int], depth: int) -> int:
    """Number of nodes the document has once aliases are expanded (memoised, so it is cheap)."""
    if depth > 200:
        return MAX_NODES + 1
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_NODES + 1  # a cycle counts as too big
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(n, memo, depth + 1) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1)
                        for k, v in node.value)
    else:
        total = 1
    memo[key] = min(total, MAX_NODES + 1)
    return memo[key]


def _describe(doc: dict, index: int) -> str:
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) else None
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) else None
    ns = meta.get("namespace") if isinstance(meta.get("namespace"), str) else None
    if kind and name:
        if kind in ("Pod", "Deployment", "Service"):
            return f"{kind} {ns or 'default'}/{shown(name)[1:-1]}"
        return f"{kind} {shown(name)[1:-1]}"
    if kind:
        return f"{kind} (document {index + 1})"
    return f"document {index + 1}"


def parse_documents(docs: list[Any], source: str = "<scenario>") -> Scenario:
    flat: list[tuple[int, dict]] = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise SpecError(f"document {i + 1}", f"must be a mapping with apiVersion and kind, not {type_name(doc)}",
                            "each YAML document must be a Kubernetes-style object")
        if doc.get("kind") == "List":
            items = doc.get("items")
            if not isinstance(items, list):
                raise SpecError(f"List (document {i + 1})", "items must be a list", "write items as '- item' lines")
            for item in items:
                if not isinstance(item, dict):
                    raise SpecError(f"List (document {i + 1})", f"items must be objects, not {type_name(item)}",
                                    "each item must be a Kubernetes-style object")
                if item.get("kind") == "List":
                    raise SpecError(f"List (document {i + 1})", "has a List inside its items",
                                    "move the inner List's items into the outer List")
                flat.append((i, item))
        else:
            flat.append((i, doc))
    ignored: list[str] = []
    clusters = [(i, d) for i, d in flat if d.get("kind") == "Cluster"]
    if len(clusters) > 1:
        raise SpecError(_describe(clusters[1][1], clusters[1][0]), "is a second Cluster document",
                        "a scenario has exactly one Cluster document")
    if clusters:
        i, d = clusters[0]
        name, nodes, networking, expectations = _parse_cluster(d, _describe(d, i), ignored)
    else:
        name, nodes, networking, expectations = _parse_cluster({"kind": "Cluster"}, "Cluster", ignored)

    namespaces: list[str] = []
    pods: list[PodSpec] = []
    deployments: list[DeploymentSpec] = []
    services: list[ServiceSpec] = []
    seen: dict[tuple, str] = {}
    for i, doc in flat:
        kind = doc.get("kind")
        where = _describe(doc, i)
        if kind == "Cluster":
            continue
        if kind is None or kind == "":
            raise SpecError(where, "has no kind", f"set kind to one of {KINDS}")
        if not isinstance(kind, str):
            raise SpecError(where, f"kind {shown(kind)} is not supported", f"netlab understands {KINDS}")
        api = doc.get("apiVersion")
        expected = {"Namespace": "v1", "Pod": "v1", "Service": "v1", "Deployment": "apps/v1"}.get(kind)
        if expected is None:
            raise SpecError(where, f"kind {shown(kind)} is not supported", f"netlab understands {KINDS}")
        if api != expected:
            raise SpecError(where, f"apiVersion {shown(api) if api is not None else 'is missing and'} "
                            f"does not match kind {kind}", f"use apiVersion: {expected}")
        top = Fields(doc, where, "", ignored)
        top.skip("apiVersion", "kind", "status")
        meta = top.map("metadata")
        obj_name = meta.name("name", subdomain=kind != "Namespace")
        namespace = None
        if kind != "Namespace":
            namespace = meta.name("namespace", required=False, default="default")
        meta.skip("annotations", "uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
                  "selfLink", "ownerReferences")
        key = (kind, namespace, obj_name)
        if key in seen:
            raise SpecError(where, f"is defined twice (also {seen[key]})", "give each object its own name")
        seen[key] = where
        if kind == "Namespace":
            meta.skip("labels")
            meta.done()
            top.skip("spec")
            top.done()
            namespaces.append(obj_name)
            continue
        labels = meta.strmap("labels")
        meta.done()
        spec = top.map("spec")
        if kind == "Pod":
            if len(obj_name) > 63:
                raise meta.error("name", f"{shown(obj_name)} is longer than 63 characters",
                                 "netlab uses the pod name as the pod's hostname: shorten it")
            pods.append(PodSpec(namespace, obj_name, _parse_pod_spec(spec, labels)))
        elif kind == "Deployment":
            deployments.append(_parse_deployment(spec, namespace, obj_name))
        elif kind == "Service":
            services.append(_parse_service(spec, namespace, obj_name, labels, networking))
        top.done()

    known_ns = set(BUILTIN_NAMESPACES) | set(namespaces)
    for obj, kind in [(p, "Pod") for p in pods] + [(d, "Deployment") for d in deployments] + \
                     [(s, "Service") for s in services]:
        if obj.namespace not in known_ns:
            raise SpecError(f"{kind} {obj.namespace}/{obj.name}", f"metadata.namespace '{obj.namespace}' does not exist",
                            f"add a Namespace document named {obj.namespace}")
    node_names = {n.name for n in nodes}
    for obj, where in [(p.template, f"Pod {p.namespace}/{p.name}") for p in pods] + \
                      [(d.template, f"Deployment {d.namespace}/{d.name}") for d in deployments]:
        path = "spec.nodeName" if where.startswith("Pod") else "spec.template.spec.nodeName"
        if obj.node_name is not None and obj.node_name not in node_names:
            raise SpecError(where, f"{path} '{obj.node_name}' is not a node of this cluster",
                            f"use one of: {', '.join(sorted(node_names))}")
    total = len(pods) + sum(d.replicas for d in deployments)
    if total > MAX_PODS:
        raise SpecError("scenario", f"asks for {total} pods, more than netlab's limit of {MAX_PODS}",
                        "lower the replicas")
    return Scenario(name=name, nodes=nodes, networking=networking, namespaces=namespaces, pods=pods,
                    deployments=deployments, services=services, expectations=expectations,
                    ignored=ignored, source=source)


# ---------------------------------------------------------------- Cluster

def _parse_cluster(doc: dict, where: str, ignored: list[str]):
    top = Fields(doc, where, "", ignored)
    top.skip("kind")
    api = top.str("apiVersion")
    if api is not None and api not in CLUSTER_API_VERSIONS:
        raise top.error("apiVersion", f"{shown(api)} is not a Cluster API version",
                        f"use {CLUSTER_API_VERSIONS[0]}")
    name = top.str("name", "netlab")
    if len(name) > MAX_LAB_NAME or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name):
        raise top.error("name", f"{shown(name)} is not a valid lab name",
                        f"use at most {MAX_LAB_NAME} lowercase letters, digits and '-'")
    if top.has("metadata"):  # tolerate a metadata.name for the lab, as some tools write it
        meta = top.map("metadata")
        meta_name = meta.str("name")
        meta.done()
        if meta_name and top.data.get("name") is None:
            name = meta_name
            check_name(name, where, "metadata.name", max_len=MAX_LAB_NAME)

    net = top.map("networking")
    pod_subnet = net.network("podSubnet", "10.244.0.0/16", 8, 28)
    service_subnet = net.network("serviceSubnet", "10.96.0.0/16", 8, 28)
    node_subnet = net.network("nodeSubnet", "172.18.0.0/16", 8, 29)
    mask = net.int("nodeCIDRMaskSize", 24, lo=pod_subnet.prefixlen, hi=29)
    backend = net.choice("backend", BACKENDS, "vxlan")
    proxy_mode = net.choice("kubeProxyMode", PROXY_MODES, "iptables")
    flavour = net.choice("iptablesFlavour", IPTABLES_FLAVOURS, "auto")
    scheduler = net.choice("ipvsScheduler", IPVS_SCHEDULERS, "rr")
    nft_choice = net.choice("nftablesEndpointChoice", NFT_CHOICES, "vmap")
    domain = net.str("dnsDomain", "cluster.local")
    check_name(domain, where, "networking.dnsDomain", subdomain=True)
    mtu = net.int("mtu", 1500, lo=1280, hi=9000)
    npr = net.str("serviceNodePortRange", "30000-32767")
    m = re.match(r"^(\d+)-(\d+)$", npr or "")
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2)) <= 65535):
        raise net.error("serviceNodePortRange", f"{shown(npr)} is not a port range", "write it like 30000-32767")
    ipfam = net.str("ipFamily", "ipv4")
    if ipfam != "ipv4":
        raise net.error("ipFamily", f"{shown(ipfam)} is not supported", "netlab emulates IPv4 clusters: use ipv4")
    net.skip("disableDefaultCNI", "apiServerAddress", "apiServerPort", "dnsSearch")
    net.done()

    nets = {"networking.podSubnet": pod_subnet, "networking.serviceSubnet": service_subnet,
            "networking.nodeSubnet": node_subnet}
    items = list(nets.items())
    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            if items[a][1].overlaps(items[b][1]):
                raise SpecError(where, f"{items[b][0]} {items[b][1]} overlaps {items[a][0]} {items[a][1]}",
                                "give the pod, service and node networks separate ranges")
    for key, subnet in nets.items():
        if subnet.overlaps(ipaddress.ip_network("127.0.0.0/8")) or subnet.overlaps(ipaddress.ip_network("224.0.0.0/3")):
            raise SpecError(where, f"{key} {subnet} overlaps loopback or multicast space", "use a private range")

    nodes: list[NodeSpec] = []
    counters = {"control-plane": 0, "worker": 0}
    node_docs = list(top.maps("nodes")) if top.has("nodes") else None
    if node_docs is not None and not node_docs:
        raise top.error("nodes", "is empty", "list at least one node, e.g. '- role: control-plane'")
    if node_docs is None:
        node_docs = [Fields({"role": "control-plane"}, where, "nodes[0]", ignored),
                     Fields({"role": "worker"}, where, "nodes[1]", ignored)]
    if len(node_docs) > MAX_CLUSTER_NODES:
        raise top.error("nodes", f"lists {len(node_docs)} nodes, more than {MAX_CLUSTER_NODES}", "use fewer nodes")
    for nd in node_docs:
        role = nd.choice("role", ("control-plane", "worker"), "control-plane")
        node_name = nd.name("name", required=False)
        if node_name is None:  # kind-like: <lab>-worker, <lab>-worker2, ... counting only unnamed nodes
            counters[role] += 1
            node_name = f"{name}-{role}" + (str(counters[role]) if counters[role] > 1 else "")
        labels = nd.strmap("labels")
        nd.skip("image", "extraMounts", "extraPortMappings", "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902")
        nd.done()
        if any(n.name == node_name for n in nodes):
            raise nd.error("name", f"'{node_name}' is used by two nodes", "give each node its own name")
        nodes.append(NodeSpec(node_name, role, labels))
    has_workers = any(n.role == "worker" for n in nodes)
    for n in nodes:
        n.labels.setdefault("kubernetes.io/hostname", n.name)
        n.labels.setdefault("kubernetes.io/os", "linux")
        if n.role == "control-plane":
            n.labels.setdefault(CONTROL_PLANE_TAINT, "")
            n.schedulable = not has_workers

    cidrs = 2 ** (mask - pod_subnet.prefixlen)
    if len(nodes) > cidrs:
        raise SpecError(where, f"networking.podSubnet {pod_subnet} holds {cidrs} /{mask} node ranges "
                        f"but the cluster has {len(nodes)} nodes", "use a larger podSubnet or a longer nodeCIDRMaskSize")
    if len(nodes) + 2 > node_subnet.num_addresses - 2:  # nodes, the gateway (.1), the external host (last)
        raise SpecError(where, f"networking.nodeSubnet {node_subnet} is too small for {len(nodes)} nodes, "
                        "its gateway and the external host", "use a larger nodeSubnet")
    if service_subnet.num_addresses < 16:
        raise SpecError(where, f"networking.serviceSubnet {service_subnet} is too small", "use at least a /28")

    expectations = []
    for ex in top.maps("expectations"):
        src = ex.str("from", required=True)
        dst = ex.str("to", required=True)
        outcome = ex.choice("expect", EXPECT_OUTCOMES, "reachable")
        backends = ex.raw("backends")
        if backends is not None and backends != "all" and (isinstance(backends, bool) or not isinstance(backends, int)):
            raise ex.error("backends", f"{shown(backends)} is not 'all' or a number", "use backends: all")
        proto = ex.choice("protocol", ("TCP", "UDP", "ICMP"), None)
        ex.done()
        expectations.append(ExpectSpec(src, dst, outcome, backends, proto))
    top.done()
    networking = Networking(pod_subnet, service_subnet, node_subnet, mask, backend, proxy_mode, flavour,
                            scheduler, domain, (int(m.group(1)), int(m.group(2))), mtu, nft_choice=nft_choice)
    return name, nodes, networking, expectations


# ---------------------------------------------------------------- Pods and Deployments

def _parse_pod_spec(spec: Fields, labels: dict[str, str]) -> PodTemplate:
    if spec.bool("hostNetwork"):
        raise spec.error("hostNetwork", "true is not supported", "remove hostNetwork: netlab gives every pod its own namespace")
    node_name = spec.str("nodeName")
    node_selector = spec.strmap("nodeSelector")
    tolerate = False
    for tol in spec.maps("tolerations"):
        key = tol.str("key")
        tol.skip("operator", "effect", "value", "tolerationSeconds")
        tol.done()
        if key in (CONTROL_PLANE_TAINT, "node-role.kubernetes.io/master") or key is None:
            tolerate = True
    containers: list[ContainerSpec] = []
    used_ports: dict[tuple[int, str], str] = {}
    port_names: set[str] = set()
    cdocs = list(spec.maps("containers"))
    if not cdocs:
        raise spec.error("containers", "must list at least one container",
                         "add '- name: app' (with no command netlab runs its built-in test server)")
    for c in cdocs:
        cname = c.name("name")
        if any(x.name == cname for x in containers):
            raise c.error("name", f"'{cname}' is used by two containers", "give each container its own name")
        image = c.str("image")
        command = c.strlist("command")
        args = c.strlist("args")
        ports = []
        for p in c.maps("ports"):
            num = p.int("containerPort", required=True, lo=1, hi=65535)
            proto = p.str("protocol", "TCP")
            if proto not in PROTOCOLS:
                raise p.error("protocol", f"{shown(proto)} is not supported", "use TCP, UDP or SCTP")
            pname = p.str("name")
            if pname is not None:
                if len(pname) > 15 or not IANA_SVC_NAME.match(pname) or not re.search("[a-z]", pname):
                    raise p.error("name", f"{shown(pname)} is not a valid port name",
                                  "use at most 15 lowercase letters, digits and '-', with at least one letter")
                if pname in port_names:
                    raise p.error("name", f"'{pname}' is used by two ports of this pod", "give each port its own name")
                port_names.add(pname)
            if (num, proto) in used_ports:
                raise p.error("containerPort", f"{num}/{proto} is also declared by {used_ports[(num, proto)]}",
                              "declare each port once per pod")
            used_ports[(num, proto)] = f"container {cname}"
            p.skip("hostPort", "hostIP")
            p.done()
            ports.append(ContainerPort(num, proto, pname))
        # agnhost's netexec, as Kubernetes' own network tests run it: netlab's built-in server.
        try:
            netexec = _netexec_ports(command + args)
        except goflags.FlagError as e:
            raise c.error("args", f"of container {cname}: netexec {e}",
                          "use agnhost netexec's flags, e.g. --http-port=8080 --udp-port=8081") from None
        if netexec is not None:
            for port in netexec:
                if (port.port, port.protocol) not in used_ports:
                    ports.append(port)
                    used_ports[(port.port, port.protocol)] = f"container {cname}"
            command, args = [], []
        env = {}
        for e in c.maps("env"):
            ename = e.str("name", required=True)
            if not re.match(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", ename):
                raise e.error("name", f"{shown(ename)} is not a valid environment variable name",
                              "use letters, digits, '_', '-' and '.', not starting with a digit")
            if e.has("valueFrom"):  # secrets, field refs: nothing to resolve them from
                e.raw("valueFrom")
                e.ignored.append(f"{e.where}: {e.at('valueFrom')}")
            env[ename] = e.str("value", "")
            e.done()
        working_dir = c.str("workingDir")
        # no meaning for a network dataplane: accepted without a word
        c.skip("imagePullPolicy", "terminationMessagePath", "terminationMessagePolicy", "stdin", "stdinOnce", "tty")
        c.done()
        containers.append(ContainerSpec(cname, image, command, args, ports, env, working_dir))
    # no meaning for a network dataplane: accepted without a word (resources, probes, volumes, affinity,
    # securityContext, dnsPolicy... are reported as ignored: they would change behaviour on a real cluster)
    spec.skip("restartPolicy", "terminationGracePeriodSeconds", "serviceAccountName", "serviceAccount",
              "schedulerName", "imagePullSecrets", "enableServiceLinks", "automountServiceAccountToken", "priority",
              "priorityClassName")
    spec.done()
    return PodTemplate(labels, node_name, node_selector, containers, tolerate)


def _netexec_ports(argv: list[str]) -> list[ContainerPort] | None:
    """agnhost args like ["netexec", "--http-port", "8080", "--udp-port=8081"] -> the ports it serves.

    Accepted spellings: `netexec ...`, `/agnhost netexec ...`, `agnhost netexec ...`; the flags are read as
    Go's flag package reads them (netlab.workload.goflags, which also says what each flag does here).
    Raises goflags.FlagError for a command line netexec or netlab refuses."""
    ports = goflags.netexec_ports(argv)
    return None if ports is None else [ContainerPort(port, proto, None) for port, proto in ports]


def _parse_deployment(spec: Fields, namespace: str, name: str) -> DeploymentSpec:
    if len(name) > 46:  # name + '-' + 10-character template hash + '-' + 5-character suffix <= 63
        raise SpecError(spec.where, f"metadata.name {shown(name)} is longer than 46 characters",
                        "shorten it: pod names (name-hash-suffix) must fit in 63")
    replicas = spec.int("replicas", 1, lo=0, hi=MAX_PODS)
    sel = spec.map("selector")
    match = sel.strmap("matchLabels")
    if sel.list("matchExpressions"):
        raise sel.error("matchExpressions", "is not supported", "use matchLabels")
    sel.done()
    tmpl = spec.map("template")
    tmeta = tmpl.map("metadata")
    tlabels = tmeta.strmap("labels")
    tmeta.skip("annotations", "name", "creationTimestamp")
    tmeta.done()
    if not match:
        raise spec.error("selector.matchLabels", "is required", "select the template's labels, e.g. app: web")
    for k, v in match.items():
        if tlabels.get(k) != v:
            raise spec.error("selector.matchLabels", f"{k}={v} does not match spec.template.metadata.labels",
                             "the selector must match the template's labels")
    template = _parse_pod_spec(tmpl.map("spec"), tlabels)
    tmpl.done()
    spec.skip("strategy", "revisionHistoryLimit", "progressDeadlineSeconds", "minReadySeconds", "paused")
    spec.done()
    return DeploymentSpec(namespace, name, replicas, match, template)


# ---------------------------------------------------------------- Services

def _parse_service(spec: Fields, namespace: str, name: str, labels: dict[str, str], net: Networking) -> ServiceSpec:
    check_name(name, spec.where, "metadata.name")  # a Service name is a DNS-1123 label (at most 63)
    stype = spec.choice("type", ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"), "ClusterIP")
    selector = spec.strmap("selector") if spec.has("selector") else None
    spec.skip("selector")  # `selector: null` is a service without a selector, not an ignored field
    cluster_ip = spec.str("clusterIP")
    if cluster_ip is not None and cluster_ip not in ("None", ""):
        try:
            ip = ipaddress.ip_address(cluster_ip)
        except ValueError:
            raise spec.error("clusterIP", f"{shown(cluster_ip)} is not an IPv4 address", "give an address or None") from None
        if ip not in net.service_subnet:
            raise spec.error("clusterIP", f"{cluster_ip} is outside the service subnet {net.service_subnet}",
                             "pick an address inside it or leave clusterIP out")
        if ip in (net.service_subnet.network_address, net.service_subnet.broadcast_address):
            raise spec.error("clusterIP", f"{cluster_ip} is the subnet's network or broadcast address",
                             "pick another address")
    if cluster_ip == "":
        cluster_ip = None
    spec.skip("clusterIPs", "ipFamilies", "ipFamilyPolicy", "publishNotReadyAddresses", "allocateLoadBalancerNodePorts",
              "loadBalancerClass", "loadBalancerSourceRanges", "healthCheckNodePort")
    ports: list[ServicePortSpec] = []
    pdocs = list(spec.maps("ports"))
    if stype != "ExternalName" and not pdocs and cluster_ip != "None":
        raise spec.error("ports", "must list at least one port", "add '- port: 80'")
    lo, hi = net.nodeport_range
    for p in pdocs:
        pname = p.str("name")
        if pname is not None:
            check_name(pname, p.where, p.at("name"))
        port = p.int("port", required=True, lo=1, hi=65535)
        proto = p.str("protocol", "TCP")
        if proto not in PROTOCOLS:
            raise p.error("protocol", f"{shown(proto)} is not supported", "use TCP, UDP or SCTP")
        raw_target = p.raw("targetPort")
        if raw_target is None:
            target: int | str = port
        elif isinstance(raw_target, int) and not isinstance(raw_target, bool):
            target = p.int("targetPort", lo=1, hi=65535)
        elif isinstance(raw_target, str) and re.fullmatch(r"[0-9]+", raw_target):
            target = p.int("targetPort", lo=1, hi=65535)
        elif isinstance(raw_target, str):
            if len(raw_target) > 15 or not IANA_SVC_NAME.match(raw_target):
                raise p.error("targetPort", f"{shown(raw_target)} is not a port number or port name",
                              "use a number or the name of a containerPort")
            target = raw_target
        else:
            raise p.error("targetPort", f"must be a number or a name, not {type_name(raw_target)}",
                          "use a number or the name of a containerPort")
        node_port = p.int("nodePort", lo=1, hi=65535)
        if node_port is not None:
            if stype not in ("NodePort", "LoadBalancer"):
                raise p.error("nodePort", f"is set but the service type is {stype}", "use type: NodePort or drop nodePort")
            if not lo <= node_port <= hi:
                raise p.error("nodePort", f"{node_port} is outside the node port range {lo}-{hi}",
                              "pick a port in the range or leave nodePort out")
        p.skip("appProtocol")
        p.done()
        if len(pdocs) > 1 and pname is None:
            raise p.error("name", "is required when a Service has more than one port", "name every port")
        if pname is not None and any(x.name == pname for x in ports):
            raise p.error("name", f"'{pname}' is used by two ports", "give each port its own name")
        if any(x.port == port and x.protocol == proto for x in ports):
            raise p.error("port", f"{port}/{proto} is listed twice", "list each port once")
        ports.append(ServicePortSpec(pname, port, proto, target, node_port))
    ext_ips = []
    for i, e in enumerate(spec.strlist("externalIPs")):
        try:
            ipaddress.IPv4Address(e)
        except ValueError:
            raise spec.error(f"externalIPs[{i}]", f"{shown(e)} is not an IPv4 address", "fix the address") from None
        ext_ips.append(e)
    lb_ip = spec.str("loadBalancerIP")
    if lb_ip is not None:
        try:
            ipaddress.IPv4Address(lb_ip)
        except ValueError:
            raise spec.error("loadBalancerIP", f"{shown(lb_ip)} is not an IPv4 address", "fix the address") from None
    affinity = spec.choice("sessionAffinity", ("None", "ClientIP"), "None")
    timeout = spec.map("sessionAffinityConfig").map("clientIP").int("timeoutSeconds", 10800, lo=1, hi=86400)
    spec.seen.add("sessionAffinityConfig")
    etp = spec.choice("externalTrafficPolicy", ("Cluster", "Local"), "Cluster")
    itp = spec.choice("internalTrafficPolicy", ("Cluster", "Local"), "Cluster")
    ext_name = spec.str("externalName")
    if stype == "ExternalName" and not ext_name:
        raise spec.error("externalName", "is required for type ExternalName", "give a DNS name")
    spec.done()
    return ServiceSpec(namespace, name, stype, selector, ports, cluster_ip, ext_ips, lb_ip, affinity, timeout,
                       etp, itp, ext_name, labels)
