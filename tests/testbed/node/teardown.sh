#!/usr/bin/env bash
# Removes what the node left on the machine: pod containers and their network namespaces, mounts under
# $TB/node, kube-proxy's and our iptables rules, the policy route and the bridge. Touches only the node's own
# objects (its containerd socket, netns holding a pod address of NODE_POD_CIDR, mounts under $TB/node).
#   teardown.sh --pods   only the pods (needs the node's containerd running; used by runtime.sh on stop)
#   teardown.sh          everything (containerd and kubelet should be stopped already)
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/testbed/node/common.sh"
# Best effort: every step runs whatever failed before it, and a failure is not news here.
set +eE
trap - ERR

remove_pods() {
  [ -S "$CTR_SOCK" ] && timeout 3 ctr -a "$CTR_SOCK" version >/dev/null 2>&1 || return 0
  local c ids
  ids=$(ctr_ containers ls -q 2>/dev/null)
  [ -n "$ids" ] || return 0
  for c in $ids; do ctr_ tasks kill -a -s SIGKILL "$c" >/dev/null 2>&1 & done
  wait
  for _ in $(seq 1 20); do
    ctr_ tasks ls 2>/dev/null | awk '$3 == "RUNNING" {found=1} END {exit !found}' || break
    sleep 0.2
  done
  for c in $ids; do
    { ctr_ tasks delete -f "$c" >/dev/null 2>&1; ctr_ containers delete "$c" >/dev/null 2>&1; } &
  done
  wait
}

# The pods' network namespaces (CRI bind-mounts them at /var/run/netns/cni-*): only those holding an address
# of our pod network. Removing one destroys its veth.
remove_pod_netns() {
  local prefix=${NODE_POD_CIDR%.*}. ns
  for ns in /var/run/netns/cni-*; do
    [ -e "$ns" ] || continue
    if ip netns exec "$(basename "$ns")" ip -4 -o addr 2>/dev/null | grep -q " inet $prefix"; then
      umount "$ns" 2>/dev/null; rm -f "$ns"
    fi
  done
}

remove_pods
remove_pod_netns
[ "${1:-}" = --pods ] && exit 0

# Mounts under the node's state (kubelet volumes, overlay rootfs, shm), innermost first.
awk -v d="$NODE_DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
  umount "$m" 2>/dev/null || umount -l "$m"
done
# The kubelet's cgroups (cgroupRoot /, cgroupfs driver): /kubepods in every hierarchy, once empty.
for h in /sys/fs/cgroup/*/kubepods; do
  [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null
done
[ -x "$TB/bin/kube-proxy" ] && "$TB/bin/kube-proxy" --cleanup >/dev/null 2>&1
# What kubelet and kube-proxy leave behind: KUBE-* chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, ...) and the
# built-in chains' jumps to them. Nothing else on these machines names a chain KUBE-*.
for cmd in iptables ip6tables; do
  for table in filter nat mangle raw; do
    "$cmd-save" -t "$table" 2>/dev/null | awk '/^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-/' |
      while read -r rule; do eval "$cmd -t $table -D ${rule#-A }" 2>/dev/null; done
    chains=$("$cmd-save" -t "$table" 2>/dev/null | awk -F'[: ]' '/^:KUBE-/ {print $2}')
    for c in $chains; do "$cmd" -t "$table" -F "$c" 2>/dev/null; done
    for c in $chains; do "$cmd" -t "$table" -X "$c" 2>/dev/null; done
  done
done
while iptables -t nat -D PREROUTING -i "$NODE_BRIDGE" -j "$NAT_CHAIN" 2>/dev/null; do :; done
iptables -t nat -F "$NAT_CHAIN" 2>/dev/null && iptables -t nat -X "$NAT_CHAIN"
while iptables -D INPUT -i "$NODE_BRIDGE" -j "$INPUT_CHAIN" 2>/dev/null; do :; done
iptables -F "$INPUT_CHAIN" 2>/dev/null && iptables -X "$INPUT_CHAIN"
# Paths the kubelet, containerd and libcni hard-code outside the node's state: the kubelet's device-plugin
# socket and /var/log/containers links (only those into $TB/node), libcni's result cache for our network
# (named "<network>-<container>-<ifname>", with containerd's own loopback network), containerd's shim sockets dir. Directories go only when empty.
for f in /var/lib/cni/results/testbed-*; do
  [ -e "$f" ] || continue
  id=${f#/var/lib/cni/results/testbed-}; id=${id%-*}
  rm -f "$f" "/var/lib/cni/results/cni-loopback-$id-lo"
done
rm -f /var/lib/kubelet/device-plugins/kubelet.sock
for l in /var/log/containers/*.log; do
  [ -L "$l" ] && case "$(readlink "$l")" in "$NODE_DIR"/*) rm -f "$l" ;; esac
done
rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet /var/lib/cni/results /var/lib/cni /var/log/containers \
  /run/containerd/s /run/containerd /run/netns 2>/dev/null
while ip rule del iif "$NODE_BRIDGE" lookup "$NODE_RT_TABLE" 2>/dev/null; do :; done
ip route flush table "$NODE_RT_TABLE" 2>/dev/null
ip link del "$NODE_BRIDGE" 2>/dev/null
exit 0
