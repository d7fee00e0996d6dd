"""Property-based fuzzing of scenario input (no root, no kernel).

Property (tests/hostile.py `outcome`): every input either parses and builds into a cluster the kernel
can take, or is refused with a SpecError that is one printable line with exit status 2. Never another
exception, never a hang (hypothesis' deadline: 2 s per case), never code execution (YAML is loaded
safely: the !!python tags must not run anything).

Inputs: structured scenario documents whose fields are valid or hostile (wrong types, missing fields,
huge numbers, unicode and control characters, names longer than interface and hostname limits,
overlapping subnets, shared and cyclic sub-objects that YAML writes as anchors and aliases), mutations of
the shipped scenarios, raw insertions, hand-written nasties (YAML bombs, deep nesting, unsafe tags) and
multi-megabyte files.

Examples per property come from NETLAB_FUZZ_EXAMPLES (default 1000; scripts/soak raises it); runs are
derandomized (the same cases on every CI run) unless NETLAB_FUZZ_RANDOM=1.
"""
from __future__ import annotations

import gc
import ipaddress
import os
import random
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlab.errors import SpecError
from netlab.spec.parse import CLUSTER_API_VERSIONS, MAX_BYTES, MAX_DOCUMENTS, MAX_STREAM_NODES, load_file, load_text

from .. import figures, hostile

EXAMPLES = int(os.environ.get("NETLAB_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=2000, derandomize=os.environ.get("NETLAB_FUZZ_RANDOM") != "1",
                database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                print_blob=True)


@pytest.fixture(autouse=True)
def _no_pwned():
    """The unsafe-tag inputs would create this file if YAML constructed Python objects."""
    if os.path.exists(hostile.PWNED):
        os.unlink(hostile.PWNED)
    yield
    assert not os.path.exists(hostile.PWNED), "a scenario ran code: YAML was not loaded safely"


def check(text: str) -> str:
    t0 = time.process_time()  # CPU time: a guard against runaway work, not a benchmark
    result = hostile.outcome(text)
    assert time.process_time() - t0 < 2.0, "one case took more than 2 s"
    figures.add("fuzz cases (unit, in-process)")
    figures.add(f"fuzz cases {result}")
    return result


# ------------------------------------------------------------------ strategies

def sometimes(valid: st.SearchStrategy, hostile_share: int = 3) -> st.SearchStrategy:
    """Mostly `valid`, sometimes anything at all (so validation deep inside is reached too)."""
    return st.integers(0, 9).flatmap(lambda i: anything if i < hostile_share else valid)


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
WEIRD_NAMES = st.sampled_from([
    "", " ", "-", "a-", "-a", "A", "a_b", "a.b", "a..b", "a b", "é", "0", "00", "a" * 63, "a" * 64, "a" * 253,
    "a" * 254, "x" * 1000, "$(touch /tmp/netlab-fuzz-pwned)", "`id`", "a;b", "a|b", "../x", "a/b", "a\nb", "a\tb",
    "a\x00b", "\u202eab", "nl.x", "default", "kube-system", "true", "null", "1e3", "0x1f",
])
NAMES = st.one_of(st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?\Z"), WEIRD_NAMES)
NUMBERS = st.one_of(st.integers(-3, 70000), st.integers(-2 ** 70, 2 ** 70), st.sampled_from([2 ** 31, 2 ** 63, 2 ** 64 + 1]),
                    st.floats(allow_nan=True, allow_infinity=True))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, WEIRD_NAMES)
anything = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.one_of(TEXT, st.integers(), st.booleans()), inner, max_size=4),
                        max_leaves=12)

CIDR_POOL = ["10.244.0.0/16", "10.96.0.0/16", "172.18.0.0/16", "10.0.0.0/8", "10.96.0.0/12", "0.0.0.0/0",
             "127.0.0.0/8", "224.0.0.0/4", "192.168.1.0/24", "192.168.1.0/30", "10.244.0.0/33", "10.244.0.1/16",
             "fd00::/64", "10.244.0.0/28", "172.18.0.0/29", "not-a-cidr", "10.244.0.0/0"]
CIDRS = st.one_of(st.sampled_from(CIDR_POOL),
                  st.builds(lambda a, p: f"{ipaddress.IPv4Address(a)}/{p}", st.integers(0, 2 ** 32 - 1), st.integers(0, 33)),
                  st.builds(lambda a, p: str(ipaddress.ip_network(f"{ipaddress.IPv4Address(a)}/{p}", strict=False)),
                            st.integers(0, 2 ** 32 - 1), st.integers(8, 30)))
LABEL_KEYS = st.one_of(st.sampled_from(["app", "tier", "a", "example.com/x", "A_b.c", "-bad", "x" * 64]), NAMES)
LABELS = st.dictionaries(LABEL_KEYS, st.one_of(NAMES, st.just("")), max_size=3)


def opt(**fields) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={k: sometimes(v) for k, v in fields.items()})


NETWORKING = opt(podSubnet=CIDRS, serviceSubnet=CIDRS, nodeSubnet=CIDRS, nodeCIDRMaskSize=st.integers(0, 40),
                 backend=st.sampled_from(["vxlan", "host-gw", "udp"]), kubeProxyMode=st.sampled_from(["iptables", "ipvs", "nftables"]),
                 iptablesFlavour=st.sampled_from(["auto", "legacy", "nft", "x"]), dnsDomain=NAMES,
                 serviceNodePortRange=st.sampled_from(["30000-32767", "1-65535", "0-1", "5-4", "30000", "a-b"]),
                 mtu=st.integers(0, 100000), ipFamily=st.sampled_from(["ipv4", "ipv6", "dual"]))
NODE = opt(role=st.sampled_from(["control-plane", "worker", "master"]), name=NAMES, labels=LABELS)
EXPECT = opt(**{"from": st.sampled_from(["pod/client", "external", "node/x", "pod/", "nowhere"]),
                "to": st.sampled_from(["svc/web:80", "pod/web", "10.0.0.1:80/udp", "nodeport/web@n", ""]),
                "expect": st.sampled_from(["reachable", "refused", "timeout", "maybe"]),
                "backends": st.one_of(st.just("all"), st.integers(-2, 10))})
CLUSTER = st.builds(lambda d: dict(d, kind="Cluster"),
                    opt(apiVersion=st.sampled_from(list(CLUSTER_API_VERSIONS) + ["v1"]),
                        name=st.one_of(NAMES, st.just("t")), nodes=st.lists(NODE, max_size=5),
                        networking=NETWORKING, expectations=st.lists(EXPECT, max_size=2)))
PORT = st.builds(lambda d: d, opt(containerPort=st.integers(-2, 70000), protocol=st.sampled_from(["TCP", "UDP", "SCTP", "ICMP"]),
                                  name=NAMES))
ENV = opt(name=st.one_of(NAMES, st.just("A_B")), value=TEXT)
ARGS = st.lists(st.one_of(TEXT, st.sampled_from(["netexec", "--http-port=8080", "--udp-port=-1", "--http-port=0"])),
                max_size=4)
CONTAINER = st.builds(lambda name, rest: dict(rest, name=name), sometimes(NAMES),
                      opt(image=TEXT, command=st.one_of(st.just(["sleep", "infinity"]), ARGS), args=ARGS,
                          ports=st.lists(PORT, max_size=3), env=st.lists(ENV, max_size=2), workingDir=TEXT))
POD_SPEC = st.builds(lambda containers, rest: dict(rest, containers=containers),
                     sometimes(st.lists(CONTAINER, min_size=1, max_size=3)),
                     opt(nodeName=NAMES, nodeSelector=LABELS, hostNetwork=st.booleans(),
                         tolerations=st.lists(opt(key=st.sampled_from(["node-role.kubernetes.io/control-plane", "x"]),
                                                  effect=TEXT), max_size=2)))
META = st.builds(lambda name, rest: dict(rest, name=name), sometimes(NAMES),
                 opt(namespace=st.sampled_from(["default", "kube-system", "team", "nope"]), labels=LABELS))


def _obj(api: str, kind: str, spec: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(lambda a, m, s: {"apiVersion": a, "kind": kind, "metadata": m, "spec": s},
                     sometimes(st.just(api), 1), sometimes(META, 1), sometimes(spec, 2))


def _deployment_spec(template_spec, replicas, labels):
    # the same labels object in selector and template: yaml.safe_dump writes it as an anchor and alias
    return {"replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": template_spec}}


DEPLOYMENT_SPEC = st.builds(_deployment_spec, POD_SPEC, st.one_of(st.integers(0, 12), st.integers(-5, 10 ** 6), NUMBERS),
                            st.one_of(st.just({"app": "web"}), LABELS))
SERVICE_SPEC = opt(type=st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "Weird"]),
                   selector=st.one_of(st.just({"app": "web"}), LABELS, st.none()),
                   clusterIP=st.sampled_from(["None", "", "10.96.0.10", "10.96.255.255", "1.2.3.4", "x"]),
                   ports=st.lists(opt(name=NAMES, port=st.integers(-1, 70000), targetPort=st.one_of(st.integers(-1, 70000), NAMES),
                                      nodePort=st.integers(0, 70000), protocol=st.sampled_from(["TCP", "UDP", "SCTP", "x"])),
                                  max_size=3),
                   externalIPs=st.lists(st.sampled_from(["1.2.3.4", "300.1.1.1", "x"]), max_size=2),
                   sessionAffinity=st.sampled_from(["None", "ClientIP", "Sticky"]),
                   externalTrafficPolicy=st.sampled_from(["Cluster", "Local", "x"]),
                   externalName=TEXT)
POD = _obj("v1", "Pod", POD_SPEC)
DEPLOYMENT = _obj("apps/v1", "Deployment", DEPLOYMENT_SPEC)
SERVICE = _obj("v1", "Service", SERVICE_SPEC)
NAMESPACE = st.builds(lambda m: {"apiVersion": "v1", "kind": "Namespace", "metadata": m}, META)
OBJECT = st.one_of(POD, DEPLOYMENT, SERVICE, NAMESPACE)
LIST = st.builds(lambda items: {"apiVersion": "v1", "kind": "List", "items": items}, st.lists(OBJECT, max_size=3))


@st.composite
def scenarios(draw) -> list:
    docs = draw(st.lists(st.one_of(OBJECT, LIST, anything), max_size=5))
    if draw(st.booleans()):
        docs.insert(draw(st.integers(0, len(docs))), draw(CLUSTER))
    if docs and draw(st.integers(0, 9)) == 0:  # a cycle: a document that contains itself
        victim = draw(st.sampled_from([d for d in docs if isinstance(d, dict)] or [{}]))
        victim["self"] = victim
    return docs


# ------------------------------------------------------------------ properties

@FUZZ
@given(scenarios())
def test_generated_scenarios(docs):
    try:
        text = yaml.safe_dump_all(docs, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, RecursionError, ValueError):
        return  # not representable as YAML (the fuzzer made something PyYAML cannot write)
    check(text)


@FUZZ
@given(st.sampled_from(hostile.shipped_texts()), st.randoms(use_true_random=False))
def test_mutated_shipped_scenarios(text, rng):
    check(hostile.mutate(text, rng))


@FUZZ
@given(st.sampled_from(hostile.shipped_texts()), st.lists(st.tuples(st.integers(0, 4000), st.text(max_size=12)),
                                                      min_size=1, max_size=4))
def test_arbitrary_insertions(text, edits):
    for pos, piece in edits:
        pos %= len(text) + 1
        text = text[:pos] + piece + text[pos:]
    check(text)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text):
    check(text)


def test_corpus_sweep():
    """The deterministic corpus the CLI test also uses, in full: the nasties and 5000 mutations."""
    n = int(os.environ.get("NETLAB_FUZZ_CORPUS", "5000"))
    outcomes = {"ok": 0, "rejected": 0}
    for text in hostile.corpus(n, seed=1):
        outcomes[check(text)] += 1
    assert outcomes["rejected"] > n // 2 and outcomes["ok"] > 0, outcomes


ACCEPTED_NASTIES: set[str] = set()  # odd keys are unknown fields; no objects is refused, as kubectl does


@pytest.mark.parametrize("name", sorted(hostile.NASTY))
def test_nasty(name):
    assert check(hostile.NASTY[name]) == ("ok" if name in ACCEPTED_NASTIES else "rejected")


@pytest.mark.parametrize("text", [
    "!!python/object/apply:os.system ['touch /tmp/netlab-fuzz-pwned']",
    "kind: !!python/object/new:subprocess.Popen [[touch, /tmp/netlab-fuzz-pwned]]",
    "kind: !!python/object:__main__.X {}",
    "kind: !!python/module:os",
])
def test_yaml_never_constructs_objects(text):
    with pytest.raises(SpecError) as e:
        load_text(text)
    assert "could not determine a constructor" in str(e.value) or "not valid YAML" in str(e.value)


def test_multi_megabyte_files_are_refused_fast(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (MAX_BYTES + 1024 * 1024) + "\n")   # 9 MB
    t0 = time.process_time()  # CPU time: a guard against runaway work, not a benchmark
    with pytest.raises(SpecError) as e:
        load_file(big)
    assert time.process_time() - t0 < 1.0
    assert "more than" in str(e.value)
    with pytest.raises(SpecError):
        load_text(big.read_text())


def _hostile_text(shape: str, scale: float) -> str:
    size = int((MAX_BYTES - 4096) * scale)
    if shape == "nodes-just-under":
        return "kind: Cluster\nx: [" + "1," * int((MAX_STREAM_NODES - 10) * scale) + "1]\n"
    if shape == "docs-just-under":
        return "".join(f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: n{i}}}\n"
                       for i in range(int((MAX_DOCUMENTS - 1) * scale)))
    if shape == "comment":
        return "kind: Cluster\n# " + "x" * size + "\n"
    if shape == "flow-list":
        return "kind: Cluster\nx: [" + "1," * (size // 2) + "1]\n"
    if shape == "many-docs":
        return "---\n" * (size // 4)
    return "kind: Cluster\nname: " + "a" * size + "\n"


@pytest.mark.parametrize("shape", ["comment", "flow-list", "many-docs", "long-scalar", "nodes-just-under",
                                   "docs-just-under"])
def test_just_under_the_limit_is_handled_in_linear_time(shape):
    """Input just under each limit is parsed or refused with work that grows linearly with its size: the
    CPU time of the whole input is compared with that of half of it (a quadratic parser takes 4 times as
    long, a linear one twice), so the guard holds on a slow machine as on a fast one (an absolute limit of
    5 s failed once on a slow CI machine, at 5.4 s)."""
    cpu = {}
    for scale in (0.5, 1.0):
        text = _hostile_text(shape, scale)
        gc.collect()
        gc.disable()   # (the cyclic collector's passes grow with what is alive, the test's too: not the parser's)
        try:
            t0 = time.process_time()
            result = hostile.outcome(text)
            cpu[scale] = time.process_time() - t0
        finally:
            gc.enable()
        assert result in ("ok", "rejected")
    took = f"{shape}: {cpu[0.5]:.2f} s for half, {cpu[1.0]:.2f} s for all"
    print(took)
    assert cpu[1.0] < 3 * cpu[0.5] + 0.2, took


def test_mutations_are_deterministic():
    a = hostile.mutate(hostile.shipped_texts()[0], random.Random(5))
    b = hostile.mutate(hostile.shipped_texts()[0], random.Random(5))
    assert a == b
