#!/usr/bin/env bash
# The "plain ip commands" baseline for benchmarks/bringup.py: what a person would write in a shell script
# to build the same namespaces, veths and bridges as a netlab lab of 3 nodes and PODS pods. No servers,
# no UTS namespace per pod (ip netns has none), no netfilter rules: only the fabric. One `ip` (or
# `bridge`, `sysctl`) process per step, as such a script is usually written.
#
#   benchmarks/shell_bringup.sh up PREFIX PODS     # builds PREFIX.underlay, PREFIX.node.n1..3, PREFIX.pod.pI
#   benchmarks/shell_bringup.sh down PREFIX        # ip netns del of each of them
#
# Layout (as benchmarks/floor.c): underlay bridge 172.18.0.1/16; node K: eth0 172.18.0.(K+1)/16 on the
# underlay, cni0 10.244.(4(K-1)).1/22, ip_forward=1, host-gw routes to the other nodes' podCIDRs;
# pods round-robin over the nodes: veth on cni0 (hairpin on), eth0 10.244.x.y/22, default via cni0.
set -euo pipefail
cmd=${1:?usage: up PREFIX PODS | down PREFIX}
P=${2:?prefix}
NODES=3

if [ "$cmd" = down ]; then
  for ns in $(ip netns list | awk -v p="$P." 'index($1, p) == 1 {print $1}'); do
    ip netns del "$ns"
  done
  exit 0
fi

PODS=${3:?pods}
U=$P.underlay
ip netns add "$U"
ip -n "$U" link set lo up
ip -n "$U" link add underlay0 type bridge
ip -n "$U" addr add 172.18.0.1/16 dev underlay0
ip -n "$U" link set underlay0 up
for k in $(seq 1 $NODES); do
  N=$P.node.n$k
  ip netns add "$N"
  ip -n "$U" link add "n$k" type veth peer name eth0 netns "$N"
  ip -n "$U" link set "n$k" master underlay0 up
  ip netns exec "$N" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$N" link set lo up
  ip -n "$N" addr add "172.18.0.$((k + 1))/16" dev eth0
  ip -n "$N" link set eth0 up
  ip -n "$N" link add cni0 type bridge
  ip -n "$N" addr add "10.244.$((4 * (k - 1))).1/22" dev cni0
  ip -n "$N" link set cni0 up
done
for k in $(seq 1 $NODES); do
  for j in $(seq 1 $NODES); do
    [ "$j" = "$k" ] || ip -n "$P.node.n$k" route add "10.244.$((4 * (j - 1))).0/22" via "172.18.0.$((j + 1))"
  done
done
declare -a count=(0 0 0 0)
for i in $(seq 0 $((PODS - 1))); do
  k=$((i % NODES + 1))
  n=$((count[k] + 2)); count[k]=$((count[k] + 1))
  N=$P.node.n$k
  POD=$P.pod.p$i
  VETH=$(printf 'veth%08x' "$i")
  ip netns add "$POD"
  ip -n "$N" link add "$VETH" type veth peer name eth0 netns "$POD"
  ip -n "$N" link set "$VETH" master cni0 up
  bridge -n "$N" link set dev "$VETH" hairpin on
  ip netns exec "$POD" sysctl -qw net.ipv4.icmp_ratelimit=0
  ip -n "$POD" link set lo up
  ip -n "$POD" addr add "10.244.$((4 * (k - 1) + n / 256)).$((n % 256))/22" dev eth0
  ip -n "$POD" link set eth0 up
  ip -n "$POD" route add default via "10.244.$((4 * (k - 1))).1"
done
