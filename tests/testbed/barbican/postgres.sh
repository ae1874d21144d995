#!/usr/bin/env bash
# Runs the test bed's PostgreSQL server in the foreground; up.sh starts it with start_bg, so this script's PID is
# what .testbed/pids/postgres.pid records. Usage: postgres.sh DATA_DIR PORT SOCKET_DIR
#
# - PostgreSQL refuses to run as root: the server runs as the `postgres` user of Debian's package (setpriv, no PAM).
# - stop_pid sends TERM to this script's process group. The postmaster reads TERM as a "smart" shutdown, which waits
#   for every client to disconnect (Keystone's connection pools never do), and its children are in
#   sessions of their own, out of the group's reach. So TERM (or INT) here becomes a "fast" shutdown (INT): clients
#   are disconnected, a checkpoint is written, the postmaster exits, and so does this script.
# - Listens on 127.0.0.1:PORT (password authentication) and on a unix socket in SOCKET_DIR (peer authentication, for
#   the administration up.sh does as `postgres`).
# - synchronous_commit=off: a commit does not wait for its WAL to reach the disk. Keystone's setup is hundreds of
#   small transactions, and on a disk busy with a cargo build each fsync can take seconds. A crash loses at most the
#   last moments of test data, never the cluster's consistency (fsync stays on).
set -uo pipefail
data=$1 port=$2 sockets=$3
pg=
trap '[ -n "$pg" ] && kill -INT "$pg" 2>/dev/null' TERM INT
setpriv --reuid=postgres --regid=postgres --init-groups --reset-env -- \
  /usr/lib/postgresql/15/bin/postgres -D "$data" \
  -c listen_addresses=127.0.0.1 -c port="$port" -c unix_socket_directories="$sockets" -c max_connections=200 -c synchronous_commit=off &
pg=$!
status=0
while kill -0 "$pg" 2>/dev/null; do
  wait "$pg"; status=$?
done
exit "$status"
