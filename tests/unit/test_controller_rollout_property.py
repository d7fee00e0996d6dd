"""Property test of Kubernetes' rolling-update promise over random strategies, kubelet speeds and
rollover moments: never more than replicas + maxSurge pods, never fewer than replicas -
maxUnavailable ready ones, and the rollout always ends on the last template. Derandomized (the same
cases on every run) unless NETLAB_FUZZ_RANDOM=1."""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlab.controllers import deployutil as du
from netlab.controllers.verbs import rollout_status

from .ctrl_sim import Sim, deployment

EXAMPLES = int(os.environ.get("NETLAB_ROLLOUT_EXAMPLES", "25"))
int_or_pct = st.one_of(st.integers(0, 4), st.integers(0, 100).map(lambda p: f"{p}%"))


def literally_zero(v):
    return v in (0, "0%")


@settings(max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("NETLAB_FUZZ_RANDOM") != "1",
          database=None, suppress_health_check=[HealthCheck.too_slow])
@given(replicas=st.integers(1, 8), surge=int_or_pct, unavailable=int_or_pct,
       start=st.sampled_from([0.5, 1, 2]), ready=st.sampled_from([0.5, 1, 3]),
       rollover_after=st.one_of(st.none(), st.integers(0, 6)), step=st.sampled_from([0.25, 0.5, 1]))
def test_rolling_update_bounds(replicas, surge, unavailable, start, ready, rollover_after, step):
    if literally_zero(surge) and literally_zero(unavailable):
        surge = 1  # validation rejects both 0
    sim = Sim(nodes=("n1", "n2"), start=start, ready=ready)
    sim.store.create(deployment(replicas=replicas, surge=surge, unavailable=unavailable))
    for _ in range(8):
        sim.tick(1)
    d = sim.get("Deployment", "web")
    max_total, min_ready = replicas + du.max_surge(d), replicas - du.max_unavailable(d)
    sim.set_template("web", "v2")
    final = "v2"
    for i in range(400):
        if rollover_after is not None and i == rollover_after:
            sim.set_template("web", "v3")
            final = "v3"
        sim.tick(step)
        active = sim.pods()
        n_ready = sum(1 for p in active if any(c["type"] == "Ready" and c["status"] == "True"
                                               for c in p["status"].get("conditions", [])))
        assert len(active) <= max_total, (i, len(active), max_total)
        assert n_ready >= min_ready, (i, n_ready, min_ready)
        if i > 10 and rollout_status(sim.get("Deployment", "web"))[1]:
            break
    assert sorted(sim.image_of(p) for p in sim.pods()) == [final] * replicas
    assert rollout_status(sim.get("Deployment", "web"))[1]
