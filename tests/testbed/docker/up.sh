#!/usr/bin/env bash
# Starts Debian's real dockerd in swarm mode, listening on a unix socket and on 127.0.0.1 with mutual TLS (CA,
# server and client certificates generated here), plus a second dockerd that never joins a swarm, for the
# "not a swarm manager" (503) case. Writes .testbed/env.d/docker.env. Idempotent.
source "$(dirname "$0")/../lib.sh"
bash "$ROOT/tests/testbed/docker/install.sh"

dir="$TB/docker"
envfile="$TB/env.d/docker.env"
dockerd=/usr/sbin/dockerd
# /usr/local/bin/docker may be a newer client; the daemon's own client is the one that surely speaks its API.
docker=/usr/bin/docker
certs=$dir/certs
# The server certificate names the node's address too (node/common.sh): pods on the test bed's node reach the
# TLS port at $NODE_IP:<port>, which the node DNATs to 127.0.0.1:<port> (node/README.md); dockerd still listens
# on loopback only. A certificate made before it named that address is made again.
source "$ROOT/tests/testbed/node/common.sh"
names_node() { openssl x509 -in "$certs/server.crt" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:$NODE_IP\b"; }
if alive dockerd && alive dockerd-noswarm && [ -f "$envfile" ] && names_node; then
  log "dockerd already running"
  exit 0
fi
for name in dockerd dockerd-noswarm containerd-docker containerd-noswarm; do
  [ -f "$TB/pids/$name.pid" ] && stop_pid "$TB/pids/$name.pid"
done
mkdir -p "$certs"

# Unix socket paths are limited to 108 bytes; keep every socket under a short directory.
sock=$dir/docker.sock
plain_sock=$dir/noswarm.sock
if [ ${#sock} -ge 100 ] || [ ${#plain_sock} -ge 100 ]; then
  log "socket path $sock is too long for a unix socket; move the checkout to a shorter path"
  exit 1
fi

# Kept between runs; made afresh when any is within a day of expiring.
tls_expire "$certs"
if [ -f "$certs/server.crt" ] && ! names_node; then rm -f "$certs/server.crt" "$certs/server.key"; fi
tls_ca "$certs" ca secretsync-docker-ca
tls_server "$certs" ca server "IP:127.0.0.1,IP:$NODE_IP,DNS:localhost"
tls_client "$certs" ca client

common=(--iptables=false --ip6tables=false --bridge=none --storage-driver=vfs)
tls_port=$(free_port)
start_bg dockerd "$dockerd" "${common[@]}" \
  --data-root "$dir/data" --exec-root "$dir/run" --pidfile "$dir/dockerd.pid" \
  -H "unix://$sock" -H "tcp://127.0.0.1:$tls_port" \
  --tlsverify --tlscacert "$certs/ca.crt" --tlscert "$certs/server.crt" --tlskey "$certs/server.key"
start_bg dockerd-noswarm "$dockerd" "${common[@]}" \
  --data-root "$dir/noswarm-data" --exec-root "$dir/noswarm-run" --pidfile "$dir/noswarm.pid" \
  -H "unix://$plain_sock"
wait_until 60 "dockerd" "$docker" -H "unix://$sock" version
wait_until 60 "dockerd-noswarm" "$docker" -H "unix://$plain_sock" version
# Each dockerd runs its own containerd in a process group of its own. A dockerd stopped gracefully stops it; the
# recorded PID lets down.sh stop it too if dockerd had to be killed. The dockerd PID files are touched last:
# down.sh stops the newest first, so dockerd goes before its containerd and cannot restart it.
for pair in "containerd-docker:$dir/run" "containerd-noswarm:$dir/noswarm-run"; do
  wait_until 30 "${pair%%:*}" test -s "${pair#*:}/containerd/containerd.pid"
  cp "${pair#*:}/containerd/containerd.pid" "$TB/pids/${pair%%:*}.pid"
done
sleep 1
touch "$TB/pids/dockerd.pid" "$TB/pids/dockerd-noswarm.pid"

# Swarm state survives restarts in the data root. A restarted manager comes back on its old swarm port; if that
# port is gone it reports an error, and the swarm is made afresh (on loopback only).
swarm_init() {
  local swarm_port
  swarm_port=$(free_port)
  "$docker" -H "unix://$sock" swarm init --advertise-addr "127.0.0.1:$swarm_port" \
    --listen-addr "127.0.0.1:$swarm_port" --data-path-addr 127.0.0.1 >/dev/null
}
end=$((SECONDS + 60))
while :; do
  state=$("$docker" -H "unix://$sock" info --format '{{.Swarm.LocalNodeState}}')
  case "$state" in
    active) break ;;
    inactive) swarm_init ;;
    pending) sleep 0.5 ;;
    *) log "swarm state '$state': leaving and initialising again"
       "$docker" -H "unix://$sock" swarm leave --force >/dev/null || true
       swarm_init ;;
  esac
  if [ $SECONDS -ge $end ]; then log "swarm did not become active (state '$state')"; exit 1; fi
done
wait_until 60 "swarm manager" "$docker" -H "unix://$sock" node ls

cat > "$envfile" <<ENV
export DOCKER_SWARM_SOCKET=$sock
export DOCKER_SWARM_TLS_ENDPOINT=tcp://127.0.0.1:$tls_port
export DOCKER_SWARM_CA_CERT=$certs/ca.crt
export DOCKER_SWARM_CLIENT_CERT=$certs/client.crt
export DOCKER_SWARM_CLIENT_KEY=$certs/client.key
export DOCKER_NOSWARM_SOCKET=$plain_sock
ENV
log "dockerd (swarm manager) on unix://$sock and tcp://127.0.0.1:$tls_port (mutual TLS); dockerd without swarm on unix://$plain_sock"
