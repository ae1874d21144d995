# Shared settings of the test bed's node (sourced by node/*.sh after lib.sh).
# The node is opt-in: TESTBED_NODE=1 makes install.sh/up.sh build and start it.
NODE_DIR=$TB/node
NODE_BRIDGE=ssbr0                 # the CNI bridge; its address is the node's InternalIP
NODE_POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1
# The node is named by its IP: kube-apiserver reaches kubelets (logs, exec) at their Hostname address first,
# and kube/up.sh does not set --kubelet-preferred-address-types; an IP literal needs no DNS.
NODE_NAME=$NODE_IP
NODE_RT_TABLE=244                 # policy routing: what enters from the bridge can reach only the bridge
SERVICE_CIDR=10.0.0.0/24          # kube/up.sh --service-cluster-ip-range
KUBERNETES_SVC_IP=10.0.0.1
NAT_CHAIN=TESTBED-NODE-DNAT       # pods -> loopback: the kubernetes Service and $NODE_IP:PORT to 127.0.0.1
INPUT_CHAIN=TESTBED-NODE-INPUT    # pods may reach this machine only through those DNATs
CTR_SOCK=$NODE_DIR/containerd/containerd.sock
PAUSE_IMAGE=testbed.invalid/pause:1
ctr_() { ctr -a "$CTR_SOCK" -n k8s.io "$@"; }
node_enabled() { [ "${TESTBED_NODE:-0}" = 1 ]; }
