#!/bin/bash
# What PID 1 spends while processes sit in network namespaces (docs/design.md, "Processes"): a 10,000-pod
# lab built by the C floor, then PID 1's CPU time over 10 s with nothing running in it, with 100 `sleep`s
# one per node namespace, with 100 `sleep`s in one empty namespace and with 100 in 100 empty namespaces.
# Root; needs benchmarks/results/floor (gcc -O2 -pthread -o benchmarks/results/floor benchmarks/floor.c).
# Run it where nothing else runs (scripts/bench's private mount namespace is not needed: it cleans up).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
F=${FLOOR:-$here/benchmarks/results/floor}
P=ipoll
cpu1() { awk '{print $14+$15}' /proc/1/stat; }
hz=$(getconf CLK_TCK)
meas() { local a b; a=$(cpu1); sleep 10; b=$(cpu1); echo "$1: PID 1 used $(( (b-a) * 100 / hz ))/100 CPU-s in 10 s"; }
sleeps=()
stop() { kill "${sleeps[@]}" 2>/dev/null || true; wait 2>/dev/null || true; sleeps=(); sleep 2; }
cleanup() {
  stop
  for k in $(seq 1 100); do ip netns del "$P-e$k" 2>/dev/null || true; done
  ip netns del "$P-one" 2>/dev/null || true
  "$F" down "$P" >/dev/null 2>&1 || true
}
trap cleanup EXIT
echo "PID 1: $(cat /proc/1/comm)"
"$F" up "$P" 10000 100 24 >/dev/null
meas "floor lab, no process in it"
for k in $(seq 1 100); do ip netns exec "$P.node.n$k" sleep 1000 & sleeps+=($!); done; sleep 1
meas "100 sleeps, one in each node namespace"
stop
ip netns add "$P-one"
for k in $(seq 1 100); do ip netns exec "$P-one" sleep 1000 & sleeps+=($!); done; sleep 1
meas "100 sleeps in one empty namespace"
stop
for k in $(seq 1 100); do ip netns add "$P-e$k"; ip netns exec "$P-e$k" sleep 1000 & sleeps+=($!); done; sleep 1
meas "100 sleeps in 100 empty namespaces"
