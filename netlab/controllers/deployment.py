"""The Deployment controller as a pure decision: ``decide(snapshot, now) -> [Action]``.

It follows Kubernetes' pkg/controller/deployment (sync.go, rolling.go, recreate.go, progress.go;
read for facts, written anew): one ReplicaSet per pod-template hash (name ``<deployment>-<hash>``,
label and selector ``pod-template-hash``), revisions in ``deployment.kubernetes.io/revision``,
RollingUpdate (reconcile the new ReplicaSet, then the old ones: first their unhealthy replicas, then
as far as maxUnavailable allows), Recreate (old ReplicaSets to 0, wait until their pods are gone,
then the new one), proportional scaling when the replica count changes mid-rollout or while
paused, revisionHistoryLimit clean-up, status and the Available/Progressing conditions, and the
ScalingReplicaSet events with Kubernetes' texts.

Simplifications: ReplicaSets are found by their controller reference only (no adoption or
orphaning of ReplicaSets created by someone else); the deprecated rollbackTo field is not read
(``rollout undo`` is a client-side template copy, as kubectl does it: see verbs.rollout_undo).
"""

from __future__ import annotations

import json

from netlab.controllers import deployutil as du
from netlab.controllers.base import Action, Snapshot, clone, create, delete, event, update, update_status
from netlab.store.meta import fmt_time, is_deleting, owner_reference, parse_time, selector_is_empty

COMPONENT = "deployment-controller"
KINDS = ("Deployment", "ReplicaSet", "Pod")


class _Abort(Exception):
    """End this sync early (Kubernetes returns an error and requeues)."""


def decide(snap: Snapshot, now: float) -> list[Action]:
    actions: list[Action] = []
    for d in snap.list("Deployment"):
        actions += DeploymentSync(snap, d, now).run()
    return actions


def next_deadline(snap: Snapshot) -> float | None:
    """When a progress deadline next runs out (the loop's timer; no write announces it)."""
    times = []
    for d in snap.list("Deployment"):
        deadline = du.progress_deadline(d)
        cond = du.get_cond(d.get("status") or {}, "Progressing")
        if deadline is None or d["spec"].get("paused") or cond is None:
            continue
        if cond.get("reason") in (du.NEW_RS_AVAILABLE, du.TIMED_OUT) or cond.get("status") != "True":
            continue
        times.append(parse_time(cond["lastUpdateTime"]) + deadline)
    return min(times) if times else None


def _dump(x) -> str:
    return json.dumps(x, sort_keys=True)


class DeploymentSync:
    """One sync of one Deployment; works on copies and returns the writes."""

    def __init__(self, snap: Snapshot, d: dict, now: float):
        self.snap, self.orig, self.now = snap, d, now
        self.d = clone(d)
        self.d.setdefault("spec", {})
        self.d.setdefault("status", {})
        self.rss = [clone(rs) for rs in snap.owned_by("ReplicaSet", d)]
        self._orig_rs = {rs["metadata"]["name"]: _dump(rs) for rs in self.rss}
        self.created: list[dict] = []
        self.deleted: list[dict] = []
        self.events: list[Action] = []

    # ------------------------------------------------------------------ driver
    def run(self) -> list[Action]:
        try:
            self._sync()
        except _Abort:
            pass
        return self._actions()

    def _sync(self):
        d = self.d
        if is_deleting(d):
            new, olds = self.get_all(False)
            return self.sync_status(olds + [new], new)
        if selector_is_empty((d.get("spec") or {}).get("selector")):
            generation = d["metadata"].get("generation", 1)
            if d["status"].get("observedGeneration") != generation:  # once per spec change
                self.event("Warning", "SelectingAll",
                           "This deployment is selecting all pods. A non-empty selector is required.")
                d["status"]["observedGeneration"] = generation
            return None
        self.check_paused_conditions()
        if d["spec"].get("paused"):
            return self.sync()
        if self.is_scaling_event():
            return self.sync()
        if du.strategy_type(d) == "Recreate":
            return self.rollout_recreate()
        return self.rollout_rolling()

    def _actions(self) -> list[Action]:
        out = [create(rs) for rs in self.created]
        created = {rs["metadata"]["name"] for rs in self.created}
        gone = {rs["metadata"]["name"] for rs in self.deleted}
        for rs in self.rss:
            name = rs["metadata"]["name"]
            if name not in created and name not in gone and _dump(rs) != self._orig_rs.get(name):
                out.append(update(rs))
        out += [delete(rs) for rs in self.deleted]
        if _dump(self.d["metadata"]) != _dump(self.orig["metadata"]) and not is_deleting(self.orig):
            out.append(update(self.d))
        if _dump(self.d.get("status") or {}) != _dump(self.orig.get("status") or {}):
            out.append(update_status(self.d))
        return out + self.events

    def event(self, etype, reason, message):
        self.events.append(event(self.orig, etype, reason, message, COMPONENT))

    # ------------------------------------------------------------------ ReplicaSets
    def find_new(self):
        for rs in du.by_creation(self.rss):
            if du.equal_ignore_hash(rs["spec"].get("template"), self.d["spec"].get("template")):
                return rs
        return None

    def get_all(self, create_new: bool):
        new = self.find_new()
        olds = [rs for rs in self.rss if rs is not new]
        return self.get_new(olds, new, create_new), olds

    def get_new(self, olds, existing, create_new):
        d = self.d
        new_revision = du.max_revision(olds) + 1
        deadline = du.progress_deadline(d) is not None
        if existing is not None:
            changed = du.set_new_rs_annotations(d, existing, new_revision, True)
            mrs = du.min_ready_seconds(d)
            if changed or du.min_ready_seconds(existing) != mrs:
                existing["spec"]["minReadySeconds"] = mrs
                return existing
            self.set_revision(existing["metadata"]["annotations"].get(du.REVISION, "0"))
            if deadline and du.get_cond(d["status"], "Progressing") is None:
                du.set_cond(d["status"], du.condition("Progressing", "True", du.FOUND_NEW_RS,
                                                      f'Found new replica set "{existing["metadata"]["name"]}"', self.now))
            return existing
        if not create_new:
            return None
        collisions = d["status"].get("collisionCount")
        h = du.compute_hash(d["spec"].get("template"), collisions)
        template = clone(d["spec"].get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[du.HASH_LABEL] = h
        selector = clone(d["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})[du.HASH_LABEL] = h
        name = f"{d['metadata']['name']}-{h}"
        new = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": d["metadata"].get("namespace", "default"),
                         "labels": dict(template["metadata"]["labels"]),
                         "ownerReferences": [owner_reference(self.orig)],
                         "creationTimestamp": fmt_time(self.now)},
            "spec": {"replicas": 0, "minReadySeconds": du.min_ready_seconds(d), "selector": selector,
                     "template": template},
        }
        new["spec"]["replicas"] = du.new_rs_new_replicas(d, olds + [new], new)
        du.set_new_rs_annotations(d, new, new_revision, False)
        clash = self.snap.get("ReplicaSet", d["metadata"].get("namespace"), name)
        if clash is not None:
            # The hash collides with a ReplicaSet of another template: bump collisionCount and
            # retry with the next hash on the next sync, as Kubernetes does.
            d["status"]["collisionCount"] = (collisions or 0) + 1
            raise _Abort()
        self.created.append(new)
        self.rss.append(new)
        if new["spec"]["replicas"] > 0:
            self.event("Normal", "ScalingReplicaSet",
                       f"Scaled up replica set {name} from 0 to {new['spec']['replicas']}")
        self.set_revision(str(new_revision))
        if deadline:
            du.set_cond(d["status"], du.condition("Progressing", "True", du.NEW_RS_CREATED,
                                                  f'Created new replica set "{name}"', self.now))
        return new

    def set_revision(self, rev: str):
        ann = self.d["metadata"].setdefault("annotations", {})
        if ann.get(du.REVISION) != rev:
            ann[du.REVISION] = rev

    def is_scaling_event(self) -> bool:
        new, olds = self.get_all(False)
        for rs in du.active(olds + [new]):
            desired = rs["metadata"].get("annotations", {}).get(du.DESIRED_REPLICAS)
            if desired is not None and desired != str(du.replicas(self.d)):
                return True
        return False

    def scale_rs(self, rs, new_scale: int, operation: str) -> None:
        d = self.d
        size_changed = du.replicas(rs) != new_scale
        max_total = du.replicas(d) + du.max_surge(d)
        if size_changed or du.replicas_annotations_need_update(rs, du.replicas(d), max_total):
            old = du.replicas(rs)
            rs["spec"]["replicas"] = new_scale
            du.set_replicas_annotations(rs, du.replicas(d), max_total)
            if size_changed:
                self.event("Normal", "ScalingReplicaSet",
                           f"Scaled {operation} replica set {rs['metadata']['name']} from {old} to {new_scale}")

    def scale_and_record(self, rs, new_scale: int) -> bool:
        if du.replicas(rs) == new_scale:
            return False
        self.scale_rs(rs, new_scale, "up" if du.replicas(rs) < new_scale else "down")
        return True

    # ------------------------------------------------------------------ scaling (paused / scale events)
    def sync(self):
        new, olds = self.get_all(False)
        self.scale(new, olds)
        if self.d["spec"].get("paused"):
            self.cleanup(olds)
        return self.sync_status(olds + [new], new)

    def scale(self, new, olds):
        d = self.d
        target = du.find_active_or_latest(new, olds)
        if target is not None:
            if du.replicas(target) != du.replicas(d):
                self.scale_and_record(target, du.replicas(d))
            return
        if du.is_saturated(d, new):
            for old in du.active(olds):
                self.scale_and_record(old, 0)
            return
        if not du.is_rolling(d):
            return
        alive = du.active(olds + [new])
        allowed = du.replicas(d) + du.max_surge(d) if du.replicas(d) > 0 else 0
        to_add = allowed - sum(du.replicas(rs) for rs in alive)
        # Bigger first; on a tie the newer first when scaling up, the older first when scaling down.
        order = du.by_creation(alive)
        if to_add > 0:
            order = sorted(reversed(order), key=lambda r: -du.replicas(r))
            operation = "up"
        elif to_add < 0:
            order = sorted(order, key=lambda r: -du.replicas(r))
            operation = "down"
        else:
            operation = ""
        sizes, added = {}, 0
        for rs in order:
            if to_add != 0:
                p = du.get_proportion(rs, d, to_add, added)
                sizes[rs["metadata"]["name"]] = du.replicas(rs) + p
                added += p
            else:
                sizes[rs["metadata"]["name"]] = du.replicas(rs)
        if to_add != 0 and order:
            first = order[0]["metadata"]["name"]
            sizes[first] = max(0, sizes[first] + to_add - added)
        for rs in order:
            self.scale_rs(rs, sizes[rs["metadata"]["name"]], operation)

    # ------------------------------------------------------------------ RollingUpdate
    def rollout_rolling(self):
        new, olds = self.get_all(True)
        all_rss = olds + [new]
        if self.reconcile_new(all_rss, new):
            return self.sync_rollout_status(all_rss, new)
        if self.reconcile_old(all_rss, du.active(olds), new):
            return self.sync_rollout_status(all_rss, new)
        if du.deployment_complete(self.d, self.d["status"]):
            self.cleanup(olds)
        return self.sync_rollout_status(all_rss, new)

    def reconcile_new(self, all_rss, new) -> bool:
        want = du.replicas(self.d)
        if du.replicas(new) == want:
            return False
        if du.replicas(new) > want:
            return self.scale_and_record(new, want)
        return self.scale_and_record(new, du.new_rs_new_replicas(self.d, all_rss, new))

    def reconcile_old(self, all_rss, olds, new) -> bool:
        if sum(du.replicas(rs) for rs in olds) == 0:
            return False
        all_pods = sum(du.replicas(rs) for rs in all_rss)
        min_available = du.replicas(self.d) - du.max_unavailable(self.d)
        new_unavailable = du.replicas(new) - du.rs_status(new, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = self.cleanup_unhealthy(olds, max_scaled_down)
        if cleaned is None:
            return False
        scaled = self.scale_down_old_for_rolling(olds + [new], olds)
        return cleaned + scaled > 0

    def cleanup_unhealthy(self, olds, max_cleanup: int) -> int | None:
        """Scale old ReplicaSets down by their unavailable replicas first (they cannot make the
        Deployment less available); None when a ReplicaSet's status is ahead of its spec."""
        total = 0
        for rs in du.by_creation(olds):
            if total >= max_cleanup:
                break
            n, avail = du.replicas(rs), du.rs_status(rs, "availableReplicas")
            if n == 0 or n == avail:
                continue
            count = min(max_cleanup - total, n - avail)
            if count < 0:
                return None
            self.scale_and_record(rs, n - count)
            total += count
        return total

    def scale_down_old_for_rolling(self, all_rss, olds) -> int:
        min_available = du.replicas(self.d) - du.max_unavailable(self.d)
        available = sum(du.rs_status(rs, "availableReplicas") for rs in all_rss)
        if available <= min_available:
            return 0
        total, budget = 0, available - min_available
        for rs in du.by_creation(olds):
            if total >= budget:
                break
            if du.replicas(rs) == 0:
                continue
            count = min(du.replicas(rs), budget - total)
            self.scale_and_record(rs, du.replicas(rs) - count)
            total += count
        return total

    # ------------------------------------------------------------------ Recreate
    def rollout_recreate(self):
        new, olds = self.get_all(False)
        all_rss = olds + [new]
        scaled_down = False
        for rs in du.active(olds):
            scaled_down |= self.scale_and_record(rs, 0)
        if scaled_down:
            return self.sync_rollout_status(all_rss, new)
        if self.old_pods_running(olds):
            return self.sync_rollout_status(all_rss, new)
        if new is None:
            new, olds = self.get_all(True)
            all_rss = olds + [new]
        self.scale_and_record(new, du.replicas(self.d))
        if du.deployment_complete(self.d, self.d["status"]):
            self.cleanup(olds)
        return self.sync_rollout_status(all_rss, new)

    def old_pods_running(self, olds) -> bool:
        if sum(du.rs_status(rs, "replicas") for rs in olds) > 0:
            return True
        for rs in olds:
            if "uid" not in rs["metadata"]:
                continue
            for pod in self.snap.owned_by("Pod", rs):
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    # ------------------------------------------------------------------ history and status
    def cleanup(self, olds):
        limit = du.history_limit(self.d)
        if limit is None:
            return
        alive = [rs for rs in olds if not is_deleting(rs)]
        diff = len(alive) - limit
        if diff <= 0:
            return
        ordered = sorted(alive, key=lambda r: (du.revision(r), r["metadata"].get("creationTimestamp", ""),
                                               r["metadata"]["name"]))
        for rs in ordered[:diff]:
            st = rs.get("status") or {}
            if (du.rs_status(rs, "replicas") != 0 or du.replicas(rs) != 0
                    or rs["metadata"].get("generation", 1) > st.get("observedGeneration", 0)):
                continue
            self.deleted.append(rs)

    def sync_status(self, all_rss, new):
        self.d["status"] = du.calculate_status(all_rss, new, self.d, self.now)

    def sync_rollout_status(self, all_rss, new):
        d, now = self.d, self.now
        status = du.calculate_status(all_rss, new, d, now)
        deadline = du.progress_deadline(d) is not None
        if not deadline:
            du.remove_cond(status, "Progressing")
        current = du.get_cond(d["status"], "Progressing")
        complete = (status["replicas"] == status["updatedReplicas"] and current is not None
                    and current.get("reason") == du.NEW_RS_AVAILABLE)
        subject = (f'ReplicaSet "{new["metadata"]["name"]}"' if new is not None
                   else f'Deployment "{d["metadata"]["name"]}"')
        if deadline and not complete:
            if du.deployment_complete(d, status):
                du.set_cond(status, du.condition("Progressing", "True", du.NEW_RS_AVAILABLE,
                                                 f"{subject} has successfully progressed.", now))
            elif du.deployment_progressing(d, status):
                cond = du.condition("Progressing", "True", du.RS_UPDATED, f"{subject} is progressing.", now)
                if current is not None:
                    if current["status"] == "True":
                        cond["lastTransitionTime"] = current["lastTransitionTime"]
                    du.remove_cond(status, "Progressing")
                du.set_cond(status, cond)
            elif du.deployment_timed_out(d, status, now):
                du.set_cond(status, du.condition("Progressing", "False", du.TIMED_OUT,
                                                 f"{subject} has timed out progressing.", now))
        d["status"] = status

    def check_paused_conditions(self):
        d = self.d
        if du.progress_deadline(d) is None:
            return
        cond = du.get_cond(d["status"], "Progressing")
        if cond is not None and cond.get("reason") == du.TIMED_OUT:
            return
        paused_cond = cond is not None and cond.get("reason") == du.PAUSED
        if d["spec"].get("paused") and not paused_cond:
            du.set_cond(d["status"], du.condition("Progressing", "Unknown", du.PAUSED, "Deployment is paused", self.now))
        elif not d["spec"].get("paused") and paused_cond:
            du.set_cond(d["status"], du.condition("Progressing", "Unknown", du.RESUMED, "Deployment is resumed",
                                                  self.now))
