#!/usr/bin/env bash
# Runs inside the VM (scripts/vm-run), called by benchmarks/ipvs_vm.py:  ipvs_vm_guest.sh DIR REPEAT N...
# For each repeat and size, in a fresh network namespace (unshare --net) each: times (bash's
# EPOCHREALTIME, no fork) ipset restore, the VIPs on kube-ipvs0 (ip -batch), ipvsadm -R of all virtual and
# real servers, ipvsadm -R of a one-endpoint change (after one warm-up sample, not reported); then, in another fresh namespace, iptables-legacy-restore
# of iptables mode's payload for the same Services. Prints one JSON line per sample.
set -euo pipefail
dir=$1; repeat=$2; shift 2
modprobe ip_vs; modprobe ip_vs_rr; modprobe ip_set; modprobe ip_set_hash_ip; modprobe ip_set_hash_ipport
modprobe ip_set_hash_ipportip; modprobe ip_set_hash_ipportnet; modprobe ip_set_hash_net; modprobe ip_set_bitmap_port
modprobe dummy; modprobe xt_set 2>/dev/null || true
echo "{\"kernel\": \"$(uname -r)\", \"ipvsadm\": \"$(ipvsadm --version 2>&1 | head -1)\", \"ipset\": \"$(ipset --version | head -1)\"}"

dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a - b }'; }
one() {  # N: the IPVS-mode sample, printed as JSON
  local d=$dir/$1 t0 t1 t2 t3 t4
  t0=$EPOCHREALTIME
  ipset restore < "$d/ipset"
  t1=$EPOCHREALTIME
  ip link add kube-ipvs0 type dummy
  ip -batch "$d/vips"
  t2=$EPOCHREALTIME
  ipvsadm -R < "$d/ipvs_full"
  t3=$EPOCHREALTIME
  ipvsadm -R < "$d/ipvs_delta"
  t4=$EPOCHREALTIME
  local vs
  vs=$(ipvsadm -Sn | grep -c '^-A')
  echo "{\"services\": $1, \"ipset_s\": $(dt $t1 $t0), \"vips_s\": $(dt $t2 $t1), \"ipvsadm_full_s\": $(dt $t3 $t2), \"ipvsadm_delta_s\": $(dt $t4 $t3), \"virtual_servers_loaded\": $vs"
}
ipt() {
  local d=$dir/$1 t0 t1
  t0=$EPOCHREALTIME
  iptables-legacy-restore --noflush < "$d/iptables_full"
  t1=$EPOCHREALTIME
  echo ", \"iptables_legacy_full_s\": $(dt $t1 $t0)}"
}
export -f dt one ipt
export dir
# warm-up, not reported: the first use of each module and tool in the fresh VM
unshare --net bash -c "one $1" >/dev/null; unshare --net bash -c "ipt $1" >/dev/null
for r in $(seq 1 "$repeat"); do
  for n in "$@"; do
    a=$(unshare --net bash -c "one $n")
    b=$(unshare --net bash -c "ipt $n")
    echo "$a, \"repeat\": $r$b"
  done
done
