#!/usr/bin/env bash
# Starts a real node for the test bed's kube-apiserver (opt-in: TESTBED_NODE=1): Debian's containerd (CRI) with
# runc and the CNI bridge plugin, kube-controller-manager, kube-scheduler, kubelet and kube-proxy (iptables), all
# at the kube-apiserver's version. Pods live in network namespaces on the bridge $NODE_BRIDGE ($NODE_POD_CIDR),
# which can reach nothing but the bridge and this machine: policy routing sends whatever enters from the bridge
# to a table with only the bridge's subnet. The loopback-only kube-apiserver is reached through the kubernetes
# Service (KUBERNETES_SERVICE_HOST=$KUBERNETES_SVC_IP:443), DNATed to 127.0.0.1 (route_localnet on the bridge).
# Writes .testbed/env.d/node.env. Idempotent: does nothing if its processes are alive.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/testbed/node/common.sh"
node_enabled || exit 0
here="$ROOT/tests/testbed/node"
bash "$here/install.sh"

# shellcheck disable=SC1091
source "$TB/env.d/kube.env"   # TESTBED_APISERVER, written by kube/up.sh
procs="node-runtime kube-controller-manager kube-scheduler kubelet kube-proxy"
all_alive=1
for n in $procs; do alive "$n" || all_alive=0; done
# A restarted kube-apiserver has a new port, CA and tokens: the node is then restarted too.
if [ $all_alive = 1 ] && [ -f "$TB/env.d/node.env" ] && [ "$(cat "$NODE_DIR/apiserver" 2>/dev/null)" = "$TESTBED_APISERVER" ]; then
  log "node already running"
  exit 0
fi
# A half-started node is restarted from scratch.
rm -f "$TB/env.d/node.env"
for n in kube-proxy kubelet kube-scheduler kube-controller-manager node-runtime; do
  [ -f "$TB/pids/$n.pid" ] && stop_pid "$TB/pids/$n.pid"
done
bash "$here/teardown.sh"
rm -rf "$NODE_DIR/containerd" "$NODE_DIR/kubelet" "$NODE_DIR/cni" "$NODE_DIR/etc"
mkdir -p "$NODE_DIR/containerd" "$NODE_DIR/cni/net.d" "$NODE_DIR/etc" "$NODE_DIR/kubelet"

echo "$TESTBED_APISERVER" > "$NODE_DIR/apiserver"
api_port=${TESTBED_APISERVER##*:}
ca="$TB/kube/certs/apiserver.crt"

# --- network: the bridge (made here so the kubelet can use its address as the node IP), isolation, DNAT
ip link add "$NODE_BRIDGE" type bridge
ip addr add "$NODE_IP/${NODE_POD_CIDR#*/}" dev "$NODE_BRIDGE"
ip link set "$NODE_BRIDGE" up
ip route add "$NODE_POD_CIDR" dev "$NODE_BRIDGE" table "$NODE_RT_TABLE"
ip route add unreachable default table "$NODE_RT_TABLE"
ip rule add iif "$NODE_BRIDGE" lookup "$NODE_RT_TABLE" priority "$NODE_RT_TABLE"
sysctl -qw "net.ipv4.conf.$NODE_BRIDGE.route_localnet=1" net.ipv4.ip_forward=1
modprobe br_netfilter 2>/dev/null || true
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1
# Pods reach the loopback-only kube-apiserver at the kubernetes Service, and any other test-bed server (all on
# 127.0.0.1) at $NODE_IP:<its port>; nothing else on this machine (the kubelet listens on $NODE_IP itself).
iptables -t nat -N "$NAT_CHAIN"
iptables -t nat -A "$NAT_CHAIN" -d "$KUBERNETES_SVC_IP/32" -p tcp --dport 443 -j DNAT --to-destination "127.0.0.1:$api_port"
iptables -t nat -A "$NAT_CHAIN" -d "$NODE_IP/32" -p tcp -j DNAT --to-destination 127.0.0.1
iptables -t nat -I PREROUTING -i "$NODE_BRIDGE" -j "$NAT_CHAIN"
iptables -N "$INPUT_CHAIN"
iptables -A "$INPUT_CHAIN" -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j RETURN
iptables -A "$INPUT_CHAIN" -j REJECT
iptables -I INPUT -i "$NODE_BRIDGE" -j "$INPUT_CHAIN"

cat > "$NODE_DIR/cni/net.d/10-testbed.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "testbed",
  "plugins": [
    {
      "type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON

# --- containerd (Debian's 1.6, CRI v1) with runc, overlayfs and the CNI plugins in /usr/lib/cni
cat > "$NODE_DIR/containerd/config.toml" <<TOML
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = "$CTR_SOCK.ttrpc"
[debug]
  level = "warn"
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$NODE_DIR/containerd/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$PAUSE_IMAGE"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    disable_apparmor = true
    # No CAP_SYS_RESOURCE here: runc cannot lower oom_score_adj (the sandbox's -998 fails with EACCES), so
    # containerd clamps every container's oom_score_adj to its own.
    restrict_oom_score_adj = true
    tolerate_missing_hugetlb_controller = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$NODE_DIR/cni/net.d"
      max_conf_num = 1
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          Root = "$NODE_DIR/containerd/runc"
          SystemdCgroup = false
TOML
start_bg node-runtime bash "$here/runtime.sh"
wait_until 30 "containerd" ctr -a "$CTR_SOCK" version
for t in "$NODE_DIR"/images/*.tar; do ctr_ images import "$t" >/dev/null; done

# --- control-plane controllers; they use the admin identity (the test bed's token file is kube/up.sh's)
start_bg kube-controller-manager "$TB/bin/kube-controller-manager" --kubeconfig "$TB/kubeconfig" \
  --authentication-kubeconfig "$TB/kubeconfig" --authorization-kubeconfig "$TB/kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$(free_port)" --cert-dir "$NODE_DIR/etc/kcm" \
  --leader-elect=false --use-service-account-credentials=false \
  --service-account-private-key-file "$TB/kube/sa.key" --root-ca-file "$ca" \
  --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false \
  --flex-volume-plugin-dir "$NODE_DIR/etc/kcm/volume-plugins" --authentication-skip-lookup --v=1
start_bg kube-scheduler "$TB/bin/kube-scheduler" --kubeconfig "$TB/kubeconfig" \
  --authentication-kubeconfig "$TB/kubeconfig" --authorization-kubeconfig "$TB/kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$(free_port)" --cert-dir "$NODE_DIR/etc/scheduler" \
  --leader-elect=false --authentication-skip-lookup --v=1

# --- kubelet
kubelet_port=$(free_port); kubelet_healthz=$(free_port)
cat > "$NODE_DIR/etc/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false                 # this machine has only cgroup v1 controllers (cgroup2 is mounted but empty)
cgroupDriver: cgroupfs              # containerd 1.6 does not answer the RuntimeConfig CRI call
containerRuntimeEndpoint: unix://$CTR_SOCK
address: $NODE_IP
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz
authentication:
  anonymous: {enabled: true}        # only kube-apiserver (logs, exec) and pods on the bridge can reach it
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
podLogsDir: $NODE_DIR/kubelet/pod-logs
volumePluginDir: $NODE_DIR/kubelet/volume-plugins
resolvConf: ""                      # pods get an empty resolv.conf: they have no DNS (nothing to ask)
failSwapOn: false
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100    # images are imported, never pulled: never garbage-collect them
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 50
YAML
start_bg kubelet "$TB/bin/kubelet" --config "$NODE_DIR/etc/kubelet.yaml" --kubeconfig "$TB/kubeconfig" \
  --root-dir "$NODE_DIR/kubelet" --cert-dir "$NODE_DIR/kubelet/pki" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1

# --- kube-proxy (iptables mode): Services' ClusterIPs to pod endpoints on the bridge
cat > "$NODE_DIR/etc/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$TB/kubeconfig"}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $NODE_POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$(free_port)
metricsBindAddress: 127.0.0.1:$(free_port)
nodePortAddresses: ["$NODE_IP/32"]
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0}          # leave the machine's conntrack table size alone
YAML
start_bg kube-proxy "$TB/bin/kube-proxy" --config "$NODE_DIR/etc/kube-proxy.yaml" --v=1

admin_token=$(awk '$1 == "token:" {print $2; exit}' "$TB/kubeconfig")
node_ready() {
  curl -sf --max-time 5 --cacert "$ca" -H "Authorization: Bearer $admin_token" "$TESTBED_APISERVER/api/v1/nodes/$NODE_NAME" |
    python3 -c 'import json, sys; c = json.load(sys.stdin)["status"]["conditions"]
sys.exit(not any(x["type"] == "Ready" and x["status"] == "True" for x in c))'
}
wait_until 120 "node $NODE_NAME Ready" node_ready
cat > "$TB/env.d/node.env" <<ENV
export TESTBED_NODE=1
export TESTBED_NODE_IP=$NODE_IP
export TESTBED_NODE_NAME=$NODE_NAME
export TESTBED_NODE_CONTAINERD=$CTR_SOCK
export TESTBED_NODE_APICHECK_IMAGE=testbed.invalid/apicheck:1
export TESTBED_NODE_LOGS=$TB/logs
ENV
log "node $NODE_NAME Ready (containerd at $CTR_SOCK)"
