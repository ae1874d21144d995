# Shared helpers for the test-bed scripts. Source it; do not run it.
#
# Conventions every backend follows (see tests/testbed/README.md):
#   - processes listen on 127.0.0.1 only, on ports from free_port;
#   - each started process is recorded in $TB/pids/<name>.pid by start_bg, and only those PIDs are ever stopped;
#   - each backend writes its endpoints as `export VAR=value` lines to $TB/env.d/<backend>.env.
set -eEuo pipefail

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TB=${TB:-$ROOT/.testbed}
mkdir -p "$TB/pids" "$TB/logs" "$TB/env.d" "$TB/bin"

log() { printf '[testbed] %s\n' "$*" >&2; }
# Under set -e a failing step ends the script, and many steps write only to a log file: say which command failed,
# where, and through which functions (set -E carries the trap into them). BASH_COMMAND is the command's text before
# expansion, so no password read with $(cat ...) shows.
on_error() {
  local rc=$1 cmd=$2 i where="${BASH_SOURCE[1]:-$0}"
  where="${where##*/}:${BASH_LINENO[0]}"
  for ((i = 1; i < ${#FUNCNAME[@]} - 1; i++)); do
    where+=", in ${FUNCNAME[i]} called at ${BASH_SOURCE[i + 1]##*/}:${BASH_LINENO[i]}"
  done
  log "failed (exit $rc): $cmd at $where"
}
trap 'on_error $? "$BASH_COMMAND"' ERR

# run_logged SCRIPT: runs a test-bed script; when it fails, prints the end of every log it wrote, since CI keeps
# only the console and a failure that happens once must be explainable from it.
run_logged() {
  local mark f
  mark=$(mktemp "$TB/logs/.since.XXXXXX")
  if bash "$1"; then rm -f "$mark"; return 0; fi
  while IFS= read -r f; do
    log "--- the end of ${f#"$ROOT"/}"
    tail -n 25 "$f" >&2
  done < <(find "$TB/logs" -type f -newer "$mark" ! -name '.since.*' | sort)
  rm -f "$mark"
  # These machines have been seen with almost no disk left; say how much there was.
  log "free disk: $(df -h --output=avail "$TB" | tail -n 1 | tr -d ' ') on $(df --output=target "$TB" | tail -n 1)"
  return 1
}

# A TCP port that is free on 127.0.0.1 right now, for a server about to start. Taken below the kernel's ephemeral
# range (and below Kubernetes' node ports): a port from bind(0) lies inside it, where any outgoing connection (a
# connection pool filling up between choosing a port and binding it) can take it first. Ports handed out are
# remembered in $TB/ports.given, so two servers started together never get the same one. Falls back to bind(0)
# when the ephemeral range leaves nothing below it.
free_port() {
  python3 - "$TB/ports.given" <<'PY'
import random, socket, sys
given_file = sys.argv[1]
try:
    given = set(open(given_file).read().split())
except FileNotFoundError:
    given = set()
with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
    ephemeral_low = int(f.read().split()[0])
candidates = [p for p in range(20000, min(30000, ephemeral_low)) if str(p) not in given]
random.shuffle(candidates)
def bind(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return s.getsockname()[1]
    except OSError:
        return None
    finally:
        s.close()
for port in map(bind, candidates[:200] or [0]):
    if port is None:
        continue
    if len(given) > 2000:
        open(given_file, "w").close()
    with open(given_file, "a") as f:
        f.write(f"{port}\n")
    print(port)
    sys.exit(0)
sys.exit("no free port on 127.0.0.1")
PY
}

# alive NAME: true when the recorded process NAME is running.
alive() {
  local f="$TB/pids/$1.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# start_bg NAME CMD...: starts CMD in the background in its own session, logging to $TB/logs/NAME.log, and
# records its PID. setsid makes the PID a process-group leader, so stop_pid can stop its children too.
start_bg() {
  local name=$1; shift
  setsid "$@" >"$TB/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$TB/pids/$name.pid"
}

# stop_pid FILE: TERM the recorded process group, wait up to 15 s, then KILL. Never looks processes up by name.
stop_pid() {
  local f=$1 pid
  pid=$(cat "$f" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# Servers that run as another user (PostgreSQL runs as `postgres`) cannot use $TB when a directory above it is
# private (0700: `mktemp -d`, /root, Debian's home directories). Their directories live instead, while the test bed
# is up, in a directory of its own outside the checkout that every user can traverse:
# /var/tmp/secretsync-testbed-<the first 12 hex digits of sha256 of $TB's physical path>, so that no two checkouts
# (or two TBs of one checkout) share one; $TB/outside links to it and its file `testbed` names $TB. down.sh moves
# each of them back to $TB/<name> (kept for the next start, as all of $TB) and removes the outside directory.
#
# outside_take NAME USER: the outside directory's NAME (moved there from $TB/NAME, if that is where it is), owned
# by USER with mode 0700; prints its path.
outside_take() {
  local name=$1 user=$2 base tb
  tb=$(cd "$TB" && pwd -P)
  if [ -L "$TB/outside" ]; then
    base=$(readlink "$TB/outside")   # recorded when it was made (this checkout may have moved since)
  else
    base=/var/tmp/secretsync-testbed-$(printf '%s' "$tb" | sha256sum | cut -c1-12)
    if mkdir -m 0711 "$base" 2>/dev/null; then printf '%s\n' "$tb" > "$base/testbed"; fi
    if [ "$(cat "$base/testbed" 2>/dev/null)" != "$tb" ]; then
      log "$base is not this test bed's (its file 'testbed' should read $tb); remove it if it is stale"
      return 1
    fi
  fi
  # Another user could have made it first: only a real directory of ours, that only we may write to, will do.
  if [ -L "$base" ] || [ ! -d "$base" ] || [ "$(stat -c %u:%a "$base")" != "$(id -u):711" ]; then
    log "$base must be a directory owned by $(id -un) with mode 0711; remove it if it is stale"
    return 1
  fi
  ln -sfn "$base" "$TB/outside"
  if [ ! -e "$base/$name" ] && [ -e "$TB/$name" ]; then mv "$TB/$name" "$base/$name"; fi
  mkdir -p "$base/$name"
  chown "$user:" "$base/$name"
  chmod 700 "$base/$name"
  echo "$base/$name"
}
# outside_park: moves every directory in the outside directory back to $TB/<name> and removes it; for down.sh,
# once the servers are stopped.
outside_park() {
  local base d
  [ -L "$TB/outside" ] || return 0
  base=$(readlink "$TB/outside")
  if [ -d "$base" ] && [ ! -L "$base" ] && [ "$(stat -c %u "$base")" = "$(id -u)" ]; then
    for d in "$base"/*/; do
      [ -d "$d" ] || continue
      d=$(basename "$d")
      rm -rf "${TB:?}/$d"
      mv "$base/$d" "$TB/$d"
    done
    rm -rf "$base"
  fi
  rm -f "$TB/outside"
}

# wait_until SECONDS DESCRIPTION CMD...: retries CMD every 0.5 s until it succeeds.
wait_until() {
  local limit=$1 what=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then log "timed out after ${limit}s waiting for $what"; return 1; fi
    sleep 0.5
  done
}

# python_venv NAME REQUIREMENTS_FILE: a venv at $TB/venv-NAME with the requirements installed; reinstalls only
# when the requirements file changes.
python_venv() {
  local name=$1 req=$2 venv="$TB/venv-$1"
  local stamp="$venv/.requirements.sha256" want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "installing Python packages for $name (once)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
}

# apt_install PKG...: installs Debian packages that are missing.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Test certificates (openssl, P-256 keys, with the v3 extensions webpki insists on), kept between runs.
# tls_expire DIR [FILE...]: when any certificate in DIR is within a day of expiring, removes DIR's certificates,
# keys and serials, and the FILEs made with them.
tls_expire() {
  local dir=$1 c
  shift
  for c in "$dir"/*.crt; do
    [ -f "$c" ] || continue
    openssl x509 -checkend 86400 -noout -in "$c" >/dev/null 2>&1 || { rm -f "$dir"/*.crt "$dir"/*.key "$dir"/*.srl "$@"; return 0; }
  done
}
# tls_ca DIR NAME CN: a self-signed CA, DIR/NAME.crt and DIR/NAME.key, unless there is one.
tls_ca() {
  local dir=$1 name=$2 cn=$3
  [ -f "$dir/$name.crt" ] && return 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=$cn" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/$name.key" -out "$dir/$name.crt" 2>/dev/null
  chmod 600 "$dir/$name.key"
}
# tls_leaf DIR CA NAME EXTENSIONS: DIR/NAME.crt and DIR/NAME.key, signed by the CA DIR/CA.crt, with the v3
# EXTENSIONS (one a line), unless there is one that CA signed (a CA made afresh makes its leaves afresh).
tls_leaf() {
  local dir=$1 ca=$2 name=$3 ext=$4
  [ -f "$dir/$name.crt" ] && openssl verify -CAfile "$dir/$ca.crt" "$dir/$name.crt" >/dev/null 2>&1 && return 0
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" > "$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" -CAcreateserial -days 30 \
    -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
  chmod 600 "$dir/$name.key"
}
# tls_server DIR CA NAME SANS: a server certificate for SANS (such as IP:127.0.0.1,DNS:localhost).
tls_server() {
  tls_leaf "$1" "$2" "$3" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$4"
}
# tls_client DIR CA NAME: a client certificate.
tls_client() {
  tls_leaf "$1" "$2" "$3" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
}
