"""Hostile and broken scenario input, shared by the hypothesis fuzzer (tests/unit/test_fuzz_hypothesis.py)
and the CLI run of rejected inputs (tests/integration/test_reliability.py).

`outcome(text)` is the property every input must satisfy: parsing and building either succeed with a
cluster the kernel can take (names within interface and hostname limits, addresses inside their
subnets, nothing duplicated, every renderer runs) or raise a SpecError whose message is one printable
line with exit status 2. Anything else (another exception, a hang, a message spanning lines or
carrying control characters) is a bug.

`corpus(n, seed)` gives n deterministic hostile texts: hand-written nasties (YAML bombs, unsafe tags,
deep nesting, cycles) and seeded mutations of the shipped scenarios.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

from netlab.errors import SpecError
from netlab.model.build import build
from netlab.spec.parse import MAX_PROBLEMS, load_text

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "scenarios").glob("*.yaml")) + [REPO / "netlab" / "data" / "default.yaml"]
PWNED = "/tmp/netlab-fuzz-pwned"

IFNAMSIZ = 15          # usable bytes of a Linux interface name
HOST_NAME_MAX = 64
NAME_MAX = 255         # a file name (namespace files, UTS mounts, logs)


class Unrenderable(AssertionError):
    """A scenario was accepted but the kernel could not take it."""


def check_cluster(cluster) -> None:
    """What `up` needs from an accepted scenario; raises Unrenderable otherwise."""
    from netlab.render import fabric as fab
    from netlab.render.iptables import node_rules

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise Unrenderable(what)

    seen_ips = set()
    for node in cluster.nodes:
        need(len(node.underlay_veth.encode()) <= IFNAMSIZ, f"node veth {node.underlay_veth!r} too long")
        need(len(node.netns.encode()) <= NAME_MAX and "/" not in node.netns, f"node netns {node.netns!r}")
        need(node.ip in cluster.networking.node_subnet, f"node ip {node.ip}")
        need(node.ip not in seen_ips, f"node ip {node.ip} twice")
        seen_ips.add(node.ip)
        need(node.pod_cidr.subnet_of(cluster.networking.pod_subnet), f"podCIDR {node.pod_cidr}")
    pod_ips = set()
    for pod in cluster.pods:
        node = cluster.node(pod.node)
        need(len(pod.host_veth.encode()) <= IFNAMSIZ, f"pod veth {pod.host_veth!r} too long")
        need(len(pod.name.encode()) < HOST_NAME_MAX, f"pod hostname {pod.name!r} too long")
        need(len(pod.netns.encode()) <= NAME_MAX and "/" not in pod.netns, f"pod netns {pod.netns!r}")
        need(len(f"{pod.namespace}.{pod.name}".encode()) <= NAME_MAX, "uts file name too long")
        need(pod.ip in node.pod_cidr and pod.ip not in (node.pod_cidr.network_address, node.gateway,
                                                        node.pod_cidr.broadcast_address), f"pod ip {pod.ip}")
        need(pod.ip not in pod_ips, f"pod ip {pod.ip} twice")
        pod_ips.add(pod.ip)
        for _cname, argv in pod.commands:
            need(bool(argv) and all("\0" not in a for a in argv), f"argv {argv!r}")
    cips = set()
    for svc in cluster.services:
        if svc.cluster_ip is not None:
            need(svc.cluster_ip in cluster.networking.service_subnet, f"clusterIP {svc.cluster_ip}")
            need(svc.cluster_ip not in cips, f"clusterIP {svc.cluster_ip} twice")
            cips.add(svc.cluster_ip)
    for node in cluster.nodes:
        fab.describe(cluster, node)
        if cluster.networking.proxy_mode == "iptables":
            node_rules(cluster, node)


def outcome(text: str) -> str:
    """'ok' or 'rejected'; raises AssertionError (or the unexpected exception) otherwise."""
    try:
        cluster = build(load_text(text, "<fuzz>"))
    except SpecError as e:
        msg = str(e)
        assert e.exit_code == 2, msg
        lines = msg.split("\n")  # several problems: one line each, at most MAX_PROBLEMS and "and N more"
        assert msg and len(lines) <= MAX_PROBLEMS + 1, f"{len(lines)} lines: {msg!r}"
        for line in lines:
            assert line and line.isprintable(), f"not one printable line: {line!r}"
            assert len(line) < 2000, f"message of {len(line)} characters"
        return "rejected"
    check_cluster(cluster)
    return "ok"


# ------------------------------------------------------------------ hand-written nasties

def _laughs(levels: int, width: int) -> str:
    lines = ["a0: &a0 [lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


NASTY: dict[str, str] = {
    "billion-laughs": _laughs(10, 10),
    "laughs-in-pod-labels": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: &l {a: b}\n"
                            "spec: {containers: [{name: c}], nodeSelector: *l}\n" + _laughs(9, 9),
    "unsafe-python-object": f"!!python/object/apply:os.system ['touch {PWNED}']\n",
    "unsafe-python-name": "kind: !!python/name:os.system Cluster\n",
    "unsafe-in-field": f"kind: Cluster\nname: !!python/object/new:os.system [touch {PWNED}]\n",
    "binary-name": "apiVersion: v1\nkind: Pod\nmetadata: {name: !!binary aGVsbG8=}\nspec: {containers: [{name: c}]}\n",
    "set-containers": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: !!set {a, b}}\n",
    "timestamp-name": "apiVersion: v1\nkind: Pod\nmetadata: {name: 2001-12-14}\nspec: {containers: [{name: c}]}\n",
    "recursive-list": "kind: Cluster\nnodes: &n [*n]\n",
    "recursive-map": "kind: Cluster\nnetworking: &n {x: *n}\n",
    "recursive-merge": "a: &a\n  <<: *a\n",
    "undefined-alias": "kind: Cluster\nnodes: *nope\n",
    "deep-brackets": "[" * 50000,
    "deep-braces": "{a: " * 5000 + "1" + "}" * 5000,
    "deep-indent": "".join(f"{' ' * i}- \n" for i in range(0, 400, 2)),
    "nul-byte": "kind: Cluster\nname: a\x00b\n",
    "bom-and-controls": "\ufeffkind: Cluster\nname: \"\\x07\\x1b[31mred\"\n",
    "rtl-override-name": "apiVersion: v1\nkind: Pod\nmetadata: {name: \"ab\\u202ecd\"}\nspec: {containers: [{name: c}]}\n",
    "newline-in-name": "apiVersion: v1\nkind: Pod\nmetadata: {name: \"a\\nb\"}\nspec: {containers: [{name: c}]}\n",
    "line-separator-kind": "apiVersion: v1\nkind: \"Pod\\u2028x\"\nmetadata: {name: p}\n",
    "shell-pod-name": f"apiVersion: v1\nkind: Pod\nmetadata: {{name: '$(touch {PWNED})'}}\nspec: {{containers: [{{name: c}}]}}\n",
    "shell-lab-name": f"kind: Cluster\nname: '`touch {PWNED}`'\n",
    "shell-namespace": f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: ';touch {PWNED}'}}\nspec: {{containers: [{{name: c}}]}}\n",
    "long-pod-name": "apiVersion: v1\nkind: Pod\nmetadata: {name: " + "a" * 64 + "}\nspec: {containers: [{name: c}]}\n",
    "long-node-name": "kind: Cluster\nnodes: [{name: " + "n" * 300 + "}]\n",
    "long-lab-name": "kind: Cluster\nname: " + "l" * 25 + "\n",
    "long-deployment": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + "d" * 47 + "}\nspec:\n"
                       "  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c}]}}\n",
    "huge-replicas": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 99999999999999999999999\n"
                     "  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c}]}}\n",
    "float-replicas": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: .inf\n"
                      "  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c}]}}\n",
    "negative-port": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, ports: [{containerPort: -1}]}]}\n",
    "huge-port": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, ports: [{containerPort: 18446744073709551617}]}]}\n",
    "overlap-pod-svc": "kind: Cluster\nnetworking: {podSubnet: 10.0.0.0/8, serviceSubnet: 10.96.0.0/12}\n",
    "overlap-node-pod": "kind: Cluster\nnetworking: {podSubnet: 172.16.0.0/12, nodeSubnet: 172.18.0.0/16}\n",
    "everything-subnet": "kind: Cluster\nnetworking: {podSubnet: 0.0.0.0/0}\n",
    "ipv6-subnet": "kind: Cluster\nnetworking: {podSubnet: 'fd00::/64'}\n",
    "mask-too-small": "kind: Cluster\nnetworking: {podSubnet: 10.244.0.0/16, nodeCIDRMaskSize: 8}\n",
    "mtu-absurd": "kind: Cluster\nnetworking: {mtu: 100000000}\n",
    # beyond the underlay bridge's ports (the kernel's BR_MAX_PORTS): no machine holds it
    "too-many-nodes": "kind: Cluster\nnodes: [" + ", ".join(["{role: worker}"] * 1100) + "]\n",
    "node-port-range-reversed": "kind: Cluster\nnetworking: {serviceNodePortRange: 32767-30000}\n",
    "two-clusters": "kind: Cluster\n---\nkind: Cluster\n",
    "list-in-list": "kind: List\nitems: [{kind: List, items: []}]\n",
    "scalar-doc": "just a string\n",
    "list-doc": "- a\n- b\n",
    "empty-key": "? ''\n: x\nkind: Cluster\n",
    "complex-key": "? [a, b]\n: c\nkind: Cluster\n",
    "int-keys": "kind: Cluster\nnodes: [{1: 2}]\n",
    "tabs": "kind: Cluster\nnodes:\n\t- role: worker\n",
    "directive": "%YAML 9.9\n---\nkind: Cluster\n",
    "unterminated": "kind: Cluster\nname: \"abc\n",
    "only-separators": "---\n---\n...\n---\n",
    "cyclic-selector": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: &s {selector: *s, ports: [{port: 80}]}\n",
    "service-port-zero": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 0}]}\n",
    "clusterip-outside": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: 1.2.3.4, ports: [{port: 80}]}\n",
    "expectation-garbage": "kind: Cluster\nexpectations: [{from: 1, to: [], expect: maybe, backends: -3}]\n",
}


# ------------------------------------------------------------------ mutations

TOKENS = [
    "\x00", "\x07", "\x1b[2J", "\x7f", "\u0085", "\u2028", "\u202e", "\ufeff", "\ud7ff", "\U0001f4a5", "é",
    "&a ", "*a", "*undefined", "<<: *a\n", "&a [*a]", "!!python/object/apply:os.system ['touch " + PWNED + "']",
    "!!binary aGk=", "!!set {a}", "!!str ", "!!int ", "!!float ", "!!map ", "!!seq ", "!<tag:yaml.org,2002:str> ",
    "{", "}", "[", "]", "'", '"', ": ", "- ", "? ", "---\n", "...\n", "%YAML 1.1\n", "\t", "|\n", ">-\n", "#",
    "1e999", "-0", "0x7fffffffffffffff", "99999999999999999999999999", ".nan", "-.inf", "~", "null", "yes", "no",
    "on", "=", "@", "`", "$(touch " + PWNED + ")", "; touch " + PWNED, "../../etc/passwd", "a" * 70, "b" * 300,
    "10.0.0.0/8", "0.0.0.0/0", "10.244.0.0/33", "fe80::/64", "255.255.255.255", "-1", "0", "65536", "4294967296",
]
SCALAR = re.compile(r"(?<=: )[^\s{}\[\],#][^\n{}\[\],#]*")


def mutate(text: str, rng: random.Random, rounds: int | None = None) -> str:
    """1-4 random edits: spans deleted or duplicated, tokens inserted, scalars and keys replaced,
    lines re-indented, swapped or cut."""
    for _ in range(rounds or rng.randint(1, 4)):
        op = rng.randrange(9)
        n = len(text)
        lines = text.split("\n")
        if op == 0 and n:
            a = rng.randrange(n)
            text = text[:a] + text[a + rng.randint(1, 40):]
        elif op == 1 and lines:
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
            text = "\n".join(lines)
        elif op == 2:
            a = rng.randrange(n + 1)
            text = text[:a] + rng.choice(TOKENS) + text[a:]
        elif op == 3:
            spans = [m.span() for m in SCALAR.finditer(text)]
            if spans:
                a, b = rng.choice(spans)
                text = text[:a] + rng.choice(TOKENS) + text[b:]
        elif op == 4 and lines:
            i = rng.randrange(len(lines))
            lines[i] = " " * rng.choice([0, 1, 3, 8]) + lines[i].lstrip()
            text = "\n".join(lines)
        elif op == 5 and len(lines) > 1:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif op == 6 and n:
            text = text[:rng.randrange(n)]
        elif op == 7:
            keys = [m.span(1) for m in re.finditer(r"^\s*-?\s*([A-Za-z][\w]*):", text, re.M)]
            if keys:
                a, b = rng.choice(keys)
                text = text[:a] + rng.choice(["name", "kind", "nodes", "spec", "replicas", "x", "<<", "", "1"]) + text[b:]
        else:
            # replicate a whole document (duplicate names) or append a nasty one
            docs = text.split("\n---\n")
            text = text + "\n---\n" + (rng.choice(docs) if rng.random() < 0.5 else rng.choice(list(NASTY.values())))
    return text


def shipped_texts() -> list[str]:
    return [p.read_text() for p in SHIPPED]


def corpus(n: int, seed: int = 1) -> list[str]:
    """n hostile texts: every hand-written nasty first, then seeded mutations of the shipped scenarios."""
    rng = random.Random(seed)
    out = list(NASTY.values())[:n]
    base = shipped_texts()
    while len(out) < n:
        out.append(mutate(rng.choice(base), rng))
    return out
